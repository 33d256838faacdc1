"""The training step of :class:`~ldm_keras.models.LDMModel`, written once per backend.

Like Keras' own per-backend ``Trainer`` classes, one mixin per backend owns the
gradient step and the non-finite guard; :data:`Trainer` is the one of the active Keras
backend, chosen once, at import, and ``LDMModel`` derives from it
(``class LDMModel(Trainer, keras.Model)``).

* :mod:`.base` — :class:`~.base.LDMTrainer`, the backend-agnostic half of the step that
  every backend shares: computing the logs from the model's ``compute_ldm_loss``, the
  finiteness check, what a skipped step must leave unchanged, applying the update
  (then the model's ``after_optimizer_step``) and the metrics;
* :mod:`.jax`, :mod:`.tensorflow`, :mod:`.torch` — ``train_step`` / ``test_step`` with
  the signature of Keras' trainer of that backend, and nothing else.

A trainer calls only the public methods of ``LDMTrainer`` and the model's public hooks
(``compute_ldm_loss``, ``after_optimizer_step``, ``variable_groups``); those are the
whole boundary between the backend files and the models.
"""

import keras

from .base import LDMTrainer

_backend = keras.backend.backend()
if _backend == "jax":
    from .jax import JAXTrainer as Trainer
elif _backend == "tensorflow":
    from .tensorflow import TensorFlowTrainer as Trainer
elif _backend == "torch":
    from .torch import TorchTrainer as Trainer
else:
    from .unsupported import UnsupportedTrainer as Trainer

__all__ = ["LDMTrainer", "Trainer"]
