"""Sequences of frames: the shape check, the per-frame application of an encoder, and
:class:`FrameEncoding`, the ``encode`` every sequence model has.

Sequence models (:class:`~ldm_keras.models.PredictiveLDM`, :class:`~ldm_keras.models.CPCLDM`,
:class:`~ldm_keras.models.JEPALDM`) take batches ``(batch, time, *frame)`` and apply a
per-frame encoder to every frame.
"""

from keras import ops


def check_sequences(model, shape, min_steps=2):
    """Check ``shape`` is ``(batch, time ≥ min_steps, *frame)`` with frames that fit
    ``model.encoder``; return it as a tuple. Raises ``ValueError`` otherwise.

    Example:
        >>> check_sequences(model, (32, 100, 100))
    """
    shape = tuple(shape)
    if len(shape) < 3:
        raise ValueError(
            f"{type(model).__name__} takes sequences of shape (batch, time, *frame_shape); "
            f"received shape {shape}."
        )
    if isinstance(shape[1], int) and shape[1] < min_steps:
        raise ValueError(f"{type(model).__name__} needs sequences of at least {min_steps} "
                         f"time steps; received T={shape[1]} (shape {shape}).")
    expected = getattr(model.encoder, "input_shape", None)
    if isinstance(expected, tuple) and expected and not isinstance(expected[0], tuple):
        frame = tuple(shape[2:])
        if len(frame) != len(expected) - 1 or any(
                e is not None and f is not None and e != f
                for e, f in zip(expected[1:], frame)):
            raise ValueError(
                f"The frames do not match the encoder: the encoder expects frames of "
                f"shape {expected[1:]}, the sequences have frames of shape {frame}."
            )
    return shape


def per_frame(model, x, training, apply=None):
    """Apply a per-frame ``model`` to ``x`` of shape ``(B, T, *frame)`` → ``(B, T, L)``.

    ``apply(model, frames, training)`` calls the model (default ``model(frames,
    training=training)``; an EMA target network passes
    :func:`~ldm_keras.models.ema.call_target`).

    Example:
        >>> z = per_frame(encoder, frames, training=False)     # (B, T, L)
    """
    shape = tuple(x.shape)
    t = shape[1] if shape[1] is not None else ops.shape(x)[1]
    flat = ops.reshape(x, (-1,) + tuple(shape[2:]))
    out = apply(model, flat, training) if apply else model(flat, training=training)
    if len(out.shape) != 2:  # reshaping (B·T, L, 1) to (B, T, L) would mix batch and axes
        raise ValueError(
            f"The encoder (`{getattr(model, 'name', model)}`) must return one latent vector "
            f"per frame, of shape (frames, latents); for frames of shape {tuple(shape[2:])} it returned shape "
            f"{tuple(out.shape)} (rank {len(out.shape)}). End it with a `Flatten()` (or "
            "`Reshape((latents,))`) layer; ldm_keras squeezes no axis itself.")
    return ops.reshape(out, (-1, t, out.shape[-1]))


class FrameEncoding:
    """Mixin for sequence models with an ``encoder`` attribute: :meth:`encode`."""

    def encode(self, x, training=False):
        """Latents ``z_t = f(x_t)`` of the (online) encoder for every frame: ``(B, T, L)``."""
        check_sequences(self, tuple(x.shape))
        return per_frame(self.encoder, x, training)
