"""Sequence LDM models beyond the Kalman/recurrent :class:`PredictiveLDM`: CPC and JEPA.

* :func:`infonce_over_time` — the CPC objective as an LDM: vMF (or bilinear) latent model
  plus a kernel-density entropy over the other sequences of the batch at the same time.
* :class:`CPCLDM` — a context network over past latents predicts the latents ``k``
  steps ahead, scored by :func:`infonce_over_time` (explicit, contrastive entropy).
* :class:`JEPALDM` — a recurrent predictor of the next latent against stop-gradient
  (optionally EMA) targets: the implicit-entropy case (docs/spec.md §3.7).
"""

import keras
from keras import ops

from .._serialization import deserialize, register, serialize
from .._validation import check_choice, check_int, check_momentum, check_positive
from ..predictors.recurrent import RecurrentPredictor
from ..priors.base import Prior
from ..priors.gaussian import IsotropicGaussian
from .base import LDMModel
from .ema import EMATargets, call_target, frozen_copy
from .frames import FrameEncoding, check_sequences, per_frame

__all__ = ["CPCLDM", "JEPALDM", "infonce_over_time"]


def infonce_over_time(predictions, targets, precision=10.0, score="vmf", epsilon=1e-12):
    """The CPC / InfoNCE-over-time objective split into LDM alignment and entropy.

    For predictions ``p_{b,t}`` and targets ``z_{b,t}`` (both ``(B, T, L)``; the
    prediction of sequence ``b`` at time ``t`` is scored against the targets of every
    sequence ``c`` of the batch *at the same time step*)::

        s_{t,b,c} = κ · cos(p_{b,t}, z_{c,t})          (score="vmf": unit vectors)
        s_{t,b,c} = p_{b,t} · z_{c,t}                  (score="bilinear"; p = W_k c_t)
        alignment = mean_{b,t} s_{t,b,b}               (log p_θ(z | p), vMF up to a constant)
        entropy   = -mean_{b,t} logsumexp_c s_{t,b,c}  (kernel-density estimate, log B dropped)

    so ``-(alignment + entropy) = mean_{b,t} [-s_{t,b,b} + logsumexp_c s_{t,b,c}]`` is the
    usual InfoNCE (cross-entropy of the positive among the batch) averaged over time.
    The score tensor is ``(T, B, B)`` (one matrix product per step; never ``B×B×L``);
    computed in float32.

    Args:
        predictions, targets: ``(B, T, L)`` tensors.
        precision: ``κ`` (the inverse temperature) for ``score="vmf"``; ignored for
            ``"bilinear"``.
        score: ``"vmf"`` or ``"bilinear"``.
        epsilon: floor of the norms when normalising (default 1e-12).

    Returns:
        ``{"alignment": scalar, "entropy": scalar}`` (float32).

    Example:
        >>> terms = infonce_over_time(p, z, precision=10.0)
        >>> loss = -(terms["alignment"] + terms["entropy"])       # InfoNCE over time
    """
    check_choice(score, "score", {"vmf", "bilinear"})
    p = ops.cast(predictions, "float32")
    z = ops.cast(targets, "float32")
    for name, t in (("predictions", p), ("targets", z)):
        if len(t.shape) != 3:
            raise ValueError(f"`{name}` must have shape (batch, time, features); received "
                             f"shape {tuple(t.shape)}.")
    if tuple(p.shape[1:]) != tuple(z.shape[1:]) and None not in p.shape[1:] + z.shape[1:]:
        raise ValueError(f"`predictions` and `targets` must have the same (time, features) "
                         f"shape; received {tuple(p.shape)} and {tuple(z.shape)}.")
    if score == "vmf":
        p = p / ops.maximum(ops.sqrt(ops.sum(ops.square(p), -1, keepdims=True)), epsilon)
        z = z / ops.maximum(ops.sqrt(ops.sum(ops.square(z), -1, keepdims=True)), epsilon)
        scale = float(precision)
    else:
        scale = 1.0
    pt = ops.transpose(p, (1, 0, 2))                                   # (T, B, L)
    zt = ops.transpose(z, (1, 0, 2))
    scores = scale * ops.matmul(pt, ops.transpose(zt, (0, 2, 1)))     # (T, B, B)
    positive = scale * ops.sum(pt * zt, axis=-1)                       # (T, B)
    alignment = ops.mean(positive)
    entropy = -ops.mean(ops.logsumexp(scores, axis=-1))
    return {"alignment": alignment, "entropy": entropy}


@register
class CPCLDM(FrameEncoding, LDMModel):
    """Contrastive predictive coding as LDM (docs/spec.md §1 "Sequences", §3.2).

    ``z_t = f(x_t)`` per frame; a context network ``c_t = RNN(z_1..z_t)`` (GRU or
    LSTM); for each offset ``k = 1..K`` a linear head predicts ``p_{t,k} = W_k c_t`` of
    ``z_{t+k}``. The objective is :func:`infonce_over_time` averaged over ``k``:

    .. math::

        F = \\frac1K \\sum_k \\Big[\\underbrace{\\mathbb{E}\\,s(p_{t,k}, z_{t+k})}_{
            \\text{alignment: vMF } κ\\cos \\text{ or bilinear}}
            \\; - \\; λ\\,\\mathbb{E}\\log\\sum_{c} e^{s(p_{t,k}, z^{(c)}_{t+k})}\\Big]

    — the latent model is a von Mises–Fisher (``score="vmf"``, ``κ`` = inverse
    temperature) or an unnormalised bilinear density; the entropy is the kernel-density
    estimate with the batch's other sequences at the same time step as centres. With
    ``entropy_weight=1`` the loss is exactly CPC's InfoNCE.

    ``model(x)`` returns ``{"latents": (B, T, L), "context": (B, T, units)}``.

    Args:
        encoder: per-frame Keras model ``frame → R^L``.
        context_units: width of the context RNN.
        context_cell: ``"gru"`` or ``"lstm"``.
        prediction_steps: ``K`` (offsets ``1..K``); sequences need ``T > K``.
        score: ``"vmf"`` (cosine × precision) or ``"bilinear"``.
        precision: ``κ`` of the vMF score (default 10, temperature 0.1).
        entropy_weight: ``λ``.

    Example:
        >>> model = CPCLDM(mlp(100, [128], 16, batch_norm=False), prediction_steps=3)
        >>> model.compile(optimizer="adam")
        >>> model.fit(frames, epochs=10, batch_size=32)        # frames: (N, T, 100)
    """

    def __init__(self, encoder, context_units=64, context_cell="gru", prediction_steps=3,
                 score="vmf", precision=10.0, entropy_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = deserialize(encoder)
        self.context_units = check_int(context_units, "context_units", 1)
        self.context_cell = check_choice(context_cell, "context_cell", {"gru", "lstm"})
        self.prediction_steps = check_int(prediction_steps, "prediction_steps", 1)
        self.score = check_choice(score, "score", {"vmf", "bilinear"})
        self.precision = check_positive(precision, "precision")
        self.entropy_weight = check_positive(entropy_weight, "entropy_weight", allow_zero=True)
        rnn = keras.layers.GRU if self.context_cell == "gru" else keras.layers.LSTM
        self.context_network = rnn(self.context_units, return_sequences=True, name="context")
        self.heads = []

    @property
    def min_batch_size(self):
        return 2

    def build(self, input_shape):
        if self.built:
            return
        shape = check_sequences(self, input_shape, self.prediction_steps + 1)
        z = self.encoder(keras.KerasTensor((None,) + shape[2:]))
        dim = int(z.shape[-1])
        self.context_network.build((None, shape[1], dim))
        self.heads = [keras.layers.Dense(dim, use_bias=False, name=f"predict_{k + 1}")
                      for k in range(self.prediction_steps)]
        for head in self.heads:
            head.build((None, self.context_units))
        self.built = True

    def call(self, x, training=False):
        z = self.encode(x, training)
        c = self.context_network(z, training=training)
        return {"latents": ops.cast(z, "float32"), "context": ops.cast(c, "float32")}

    def compute_ldm_loss(self, x, training=False):
        shape = check_sequences(self, tuple(x.shape), self.prediction_steps + 1)
        z = self.gather_batch(per_frame(self.encoder, x, training))  # global batch
        c = self.context_network(z, training=training)
        t = shape[1] if shape[1] is not None else ops.shape(x)[1]
        alignment = entropy = 0.0
        for k, head in enumerate(self.heads, start=1):
            p = head(c[:, : t - k])
            terms = infonce_over_time(p, z[:, k:], self.precision, self.score)
            alignment = alignment + terms["alignment"]
            entropy = entropy + terms["entropy"]
        alignment = alignment / self.prediction_steps
        entropy = entropy / self.prediction_steps
        return {"loss": -(alignment + self.entropy_weight * entropy),
                "alignment": alignment, "entropy": entropy}

    #: the loss gathers every replica's latents (data parallelism)
    loss_gathers_batch = True

    def get_config(self):
        return {**super().get_config(), "encoder": serialize(self.encoder),
                "context_units": self.context_units, "context_cell": self.context_cell,
                "prediction_steps": self.prediction_steps, "score": self.score,
                "precision": self.precision, "entropy_weight": self.entropy_weight}


@register
class JEPALDM(EMATargets, FrameEncoding, LDMModel):
    """Joint-embedding predictive architecture over time: the implicit-entropy case.

    ``z_t = f(x_t)`` per frame; a :class:`~ldm_keras.predictors.RecurrentPredictor`
    ``g`` predicts ``ẑ_t`` from ``z_<t``; the targets are ``y_t = stop_gradient(f̄(x_t))``
    where ``f̄ = f`` (``ema_momentum=None``) or an EMA copy of the encoder updated after
    every optimizer step, ``θ̄ ← m θ̄ + (1 - m) θ``. The objective is the latent model
    alone (no explicit entropy; the stop-gradient stands in for it, docs/spec.md §3.7):

    .. math:: F = \\operatorname{mean}_{b,\\,t \\ge 2} \\log p_θ(y_t \\mid ẑ_t)

    with ``p_θ`` an :class:`~ldm_keras.priors.IsotropicGaussian` (``-κ · mean_d (y - ẑ)²``,
    the JEPA MSE; default) or any :class:`~ldm_keras.priors.Prior` that takes the
    prediction as context (e.g. ``VonMisesFisher``). The first step (predicted from
    nothing) is left out. The reported ``entropy`` is 0.

    Args:
        encoder: per-frame Keras model ``frame → R^L`` (functional/sequential for EMA).
        predictor: a ``RecurrentPredictor`` (only its ``prediction`` is used; default
            ``RecurrentPredictor(64, variance="constant")``).
        prior: the latent model (default ``IsotropicGaussian(precision=1)``).
        ema_momentum: ``m`` in ``[0, 1)`` for an EMA target encoder, or ``None`` for
            plain stop-gradient targets from the online encoder.

    Example:
        >>> model = JEPALDM(mlp(100, [128], 8, batch_norm=False), ema_momentum=0.99)
        >>> model.compile(optimizer="adam"); model.fit(frames, epochs=10, batch_size=32)
    """

    def __init__(self, encoder, predictor=None, prior=None, ema_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        self.encoder = deserialize(encoder)
        predictor = deserialize(predictor)
        if predictor is None:
            predictor = RecurrentPredictor(units=64, variance="constant")
        if not isinstance(predictor, RecurrentPredictor):
            raise ValueError(f"`predictor` must be a RecurrentPredictor; received {predictor!r}.")
        self.predictor = predictor
        prior = deserialize(prior)
        self.prior = IsotropicGaussian(precision=1.0) if prior is None else prior
        if not isinstance(self.prior, Prior):
            raise ValueError(f"`prior` must be an ldm_keras Prior; received {self.prior!r}.")
        self.ema_momentum = check_momentum(ema_momentum, "ema_momentum")
        self.target_encoder = None

    @property
    def min_batch_size(self):
        return 1

    def build(self, input_shape):
        if self.built:
            return
        shape = check_sequences(self, input_shape)
        frame = keras.KerasTensor((None,) + shape[2:])
        dim = int(self.encoder(frame).shape[-1])
        if not self.predictor.built:  # a deserialised predictor arrives built
            self.predictor.build((None, shape[1], dim))
        if self.ema_momentum is not None:
            self.target_encoder = frozen_copy(self.encoder, "EMA target encoder")
            self.target_encoder(frame)
            self.start_targets()
        self.built = True

    def call(self, x, training=False):
        z = self.encode(x, training)
        out = self.predictor(z, training=training)
        return {"latents": ops.cast(z, "float32"), "prediction": out["prediction"]}

    def compute_ldm_loss(self, x, training=False):
        check_sequences(self, tuple(x.shape))
        z = per_frame(self.encoder, x, training)
        if self.target_encoder is not None:
            target = per_frame(self.target_encoder, x, training, call_target)
        else:
            target = z
        # data parallel: the means run over the global batch
        z, target = self.gather_batch(z, target)
        pred = self.predictor(z, training=training)["prediction"]
        target = ops.stop_gradient(ops.cast(target, "float32"))
        dim = pred.shape[-1]
        logp = self.prior.log_prob(ops.reshape(target[:, 1:], (-1, dim)),
                                   context=ops.reshape(pred[:, 1:], (-1, dim)))
        alignment = ops.mean(logp)
        return {"loss": -alignment, "alignment": alignment,
                "entropy": ops.zeros((), "float32")}

    #: the loss gathers every replica's latents (data parallelism)
    loss_gathers_batch = True

    def target_weights(self):
        """The EMA target encoder's weights."""
        return self.target_encoder.weights

    def online_weights(self):
        """The encoder's weights, which the EMA target follows."""
        return self.encoder.weights

    def get_config(self):
        return {**super().get_config(), "encoder": serialize(self.encoder),
                "predictor": serialize(self.predictor), "prior": serialize(self.prior),
                "ema_momentum": self.ema_momentum}
