"""Optimizers for self-supervised training.

* :class:`LARS` — momentum SGD with a layer-wise trust ratio (You et al. 2017), with the
  usual exclusion of biases and normalisation parameters from weight decay and
  adaptation; the optimizer of the reference image recipes (lr 0.3, batch 256).

Example:
    >>> import ldm_keras as ldm
    >>> model.compile(optimizer=ldm.optimizers.LARS(0.3, weight_decay=1e-6))
"""

from .lars import LARS

__all__ = ["LARS"]
