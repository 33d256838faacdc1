"""Deprecated: the contents of ``ldm_keras.training`` moved (kept for one release).

* the training jobs → :mod:`ldm_keras.jobs` (``train_multiview``, ``train_sequence``,
  ``evaluate_run``, ``DATASETS``, ``SEQUENCE_DEFAULTS``);
* the datasets by name → :mod:`ldm_keras.data.datasets` (``load_image_dataset``,
  ``load_sequence_dataset``);
* the evaluation of encoders → :mod:`ldm_keras.evaluation.encoders`
  (``evaluate_encoder``, ``evaluate_sequence_model``; ``evaluate_arrays`` is
  ``evaluate_encoder`` with the old argument order).
"""

import warnings

from .data.datasets import load_image_dataset, load_sequence_dataset
from .evaluation.encoders import evaluate_encoder, evaluate_sequence_model
from .jobs import DATASETS, SEQUENCE_DEFAULTS, evaluate_run, train_multiview, train_sequence

warnings.warn("ldm_keras.training is deprecated and will be removed in the next release; "
              "use ldm_keras.jobs, ldm_keras.data.datasets and ldm_keras.evaluation.encoders.",
              DeprecationWarning, stacklevel=2)


def evaluate_arrays(encoder, head, train, test, recipe=None):
    """Deprecated: :func:`ldm_keras.evaluation.encoders.evaluate_encoder`."""
    return evaluate_encoder(encoder, train, test, head=head, clustering=recipe == "categorical")


__all__ = ["DATASETS", "SEQUENCE_DEFAULTS", "evaluate_arrays", "evaluate_encoder",
           "evaluate_run", "evaluate_sequence_model", "load_image_dataset",
           "load_sequence_dataset", "train_multiview", "train_sequence"]
