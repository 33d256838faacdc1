"""The trainer for a Keras backend that ldm_keras does not train on: a clear error."""

import keras

from .base import LDMTrainer


def _refuse():
    raise ValueError(
        f"ldm_keras supports the tensorflow, jax and torch backends; "
        f"KERAS_BACKEND is {keras.backend.backend()!r}."
    )


class UnsupportedTrainer(LDMTrainer):
    """Refuses ``train_step`` and ``test_step`` with a ``ValueError`` naming the backend."""

    def train_step(self, *args):
        _refuse()

    def test_step(self, *args):
        _refuse()
