"""The gradient step, written once per backend (the only backend-specific code).

Each module exposes ``train_step(model, *args)`` and ``test_step(model, *args)`` with the
signature that Keras' trainer of that backend uses. The loss itself is computed once,
in backend-agnostic code, by ``model.compute_ldm_loss``.
"""

import importlib

import keras


def get():
    """The step module of the active Keras backend."""
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax", "torch"):
        raise ValueError(
            f"ldm_keras supports the tensorflow, jax and torch backends; "
            f"KERAS_BACKEND is {backend!r}."
        )
    return importlib.import_module(f"{__name__}.{backend}")
