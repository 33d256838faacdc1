"""Optimizers for self-supervised training.

* :class:`LARS` — momentum SGD with a layer-wise trust ratio (You et al. 2017), with the
  usual exclusion of biases and normalisation parameters from weight decay and
  adaptation; the optimizer of the reference image recipes (lr 0.3, batch 256).
* :class:`GroupedOptimizer` and :class:`ScaledSchedule` — per-group learning rates
  (one clone of an optimizer per variable group), the classes of
  :mod:`ldm_keras.models.optimizers`, re-exported here so that every optimizer of the
  package is found in one place.

Example:
    >>> import ldm_keras as ldm
    >>> model.compile(optimizer=ldm.optimizers.LARS(0.3, weight_decay=1e-6))
"""

from ..models.optimizers import GroupedOptimizer, ScaledSchedule
from .lars import LARS

__all__ = ["LARS", "GroupedOptimizer", "ScaledSchedule"]
