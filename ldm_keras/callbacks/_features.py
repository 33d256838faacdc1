"""Detached NumPy features of a model's encoder, for callbacks that run between steps.

Every callback reads the encoder through the same helpers so that all model kinds are
treated alike:

* a :class:`~ldm_keras.models.MultiViewLDM` (or any model with ``encoder`` whose input
  rank matches the data): ``space="representation"`` is ``encoder(x)``,
  ``space="latents"`` is ``embed(x)`` — ``projector(encoder(x))``, the space the
  objective sees;
* sequence models (``PredictiveLDM``, ``CPCLDM``, ``JEPALDM``, …: a per-frame
  ``encoder`` and data ``(batch, time, *frame)``): the per-frame latents
  ``(batch, time, L)`` (both spaces are the same).

Keras models are run with ``predict_on_batch`` in chunks (the compiled inference step,
no gradient, BatchNormalization in inference mode); other layers are called with
``training=False``. Accessing ``callback.model`` first makes JAX write the training
state back into the variables (Keras does this in the ``Callback.model`` property).
"""

import keras
import numpy as np

SPACES = ("representation", "latents")


def check_space(space):
    if space not in SPACES:
        raise ValueError(f"`space` must be one of {list(SPACES)}; received {space!r}.")
    return space


def check_callable(features):
    """``features``: ``None`` or a callable ``(model, x) -> array``."""
    if features is not None and not callable(features):
        raise ValueError(f"`features` must be None or a callable (model, x) -> array; "
                         f"received {features!r}.")
    return features


def run(layer, x, batch_size):
    """``layer(x)`` in inference mode, in chunks of ``batch_size``, as float64 NumPy."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating) and x.dtype != np.float32:
        x = x.astype("float32")
    outs = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        if isinstance(layer, keras.Model):
            out = layer.predict_on_batch(chunk)
        else:
            out = layer(chunk, training=False)
        if isinstance(out, dict):
            raise ValueError(f"{type(layer).__name__} returns a dict; give the callback a "
                             "`features=` function that returns the embedding array.")
        outs.append(np.asarray(keras.ops.convert_to_numpy(out)))
    return np.concatenate(outs).astype("float64")


def _encoder(model):
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        raise ValueError(f"{type(model).__name__} has no `encoder` attribute; give the "
                         "callback a `features=` function (model, x) -> array.")
    return encoder


def _input_rank(encoder):
    shape = getattr(encoder, "input_shape", None)
    if isinstance(shape, tuple) and shape and not isinstance(shape[0], tuple):
        return len(shape)
    return None


def is_sequence_data(model, x):
    """True when ``x`` holds sequences of frames for the model's per-frame encoder."""
    rank = _input_rank(_encoder(model))
    return rank is not None and np.ndim(x) == rank + 1


def features(model, x, space="representation", batch_size=1024):
    """Features of ``x``: ``(n, d)`` for samples, ``(n, T, L)`` for sequences."""
    encoder = _encoder(model)
    x = np.asarray(x)
    if is_sequence_data(model, x):
        flat = x.reshape((-1,) + x.shape[2:])
        z = run(encoder, flat, batch_size)
        return z.reshape(x.shape[:2] + (z.shape[-1],))
    rank = _input_rank(encoder)
    if rank is not None and x.ndim != rank:
        raise ValueError(f"The encoder takes inputs of shape {encoder.input_shape}; the "
                         f"callback's data have shape {x.shape} (expected samples of "
                         f"that shape, or sequences with one more axis).")
    h = run(encoder, x, batch_size)
    projector = getattr(model, "projector", None)
    if space == "latents" and projector is not None:
        h = run(projector, h, batch_size)
    return h
