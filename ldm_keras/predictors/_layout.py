"""The flat per-step output of :class:`~ldm_keras.predictors.KalmanCell`, in one place.

Keras 3's RNN layer wants one tensor per step, so the cell packs its results as::

    [ ẑ (L) | nll (1) | h (S) | vec(S_t) (L·L) | vec(P) (S·S) ]

(the two covariance blocks only with ``output_covariances=True``). :func:`pack` writes
that vector, :func:`unpack` reads it back (for one step ``(B, width)`` or a sequence
``(B, T, width)``) into the named outputs of :class:`~ldm_keras.predictors.KalmanFilter`.
"""

from keras import ops


def width(state_dim, observation_dim, covariances):
    """Length of the flat vector."""
    s, l_ = state_dim, observation_dim
    return l_ + 1 + s + ((l_ * l_ + s * s) if covariances else 0)


def pack(prediction, nll, state_mean, prediction_cov=None, state_cov=None):
    """``(B, L), (B,), (B, S)[, (B, L, L), (B, S, S)]`` → ``(B, width)``."""
    pieces = [prediction, ops.expand_dims(nll, -1), state_mean]
    if prediction_cov is not None:
        l_, s = prediction.shape[-1], state_mean.shape[-1]
        pieces += [ops.reshape(prediction_cov, (-1, l_ * l_)),
                   ops.reshape(state_cov, (-1, s * s))]
    return ops.concatenate(pieces, axis=-1)


def unpack(flat, state_dim, observation_dim, covariances):
    """``(..., width)`` → dict ``prediction, nll, state_mean[, prediction_cov, state_cov]``."""
    s, l_ = state_dim, observation_dim
    lead = tuple(flat.shape[:-1])
    lead = tuple(d if d is not None else ops.shape(flat)[i] for i, d in enumerate(lead))
    out = {
        "prediction": flat[..., :l_],
        "nll": flat[..., l_],
        "state_mean": flat[..., l_ + 1:l_ + 1 + s],
    }
    if covariances:
        o = l_ + 1 + s
        out["prediction_cov"] = ops.reshape(flat[..., o:o + l_ * l_], lead + (l_, l_))
        o += l_ * l_
        out["state_cov"] = ops.reshape(flat[..., o:o + s * s], lead + (s, s))
    return out
