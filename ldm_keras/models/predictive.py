"""Predictive LDM for sequences: a per-frame encoder and a predictor of the next latent."""

import os

import keras
from keras import ops

from .._serialization import deserialize as _deserialize
from .._serialization import register
from .._serialization import serialize as _serialize
from .._validation import check_choice, check_int, check_positive
from ..entropy.base import EntropyEstimator
from ..predictors.kalman import KalmanFilter
from ..predictors.recurrent import RecurrentPredictor
from .base import LDMModel
from .frames import check_sequences, per_frame

#: Learning-rate multipliers of the reference KalmanSSL runs (docs/spec.md §4).
DEFAULT_LR_MULTIPLIERS = {"dynamics": 100.0, "noise_network": 10.0, "observation_noise": 0.03}


@register
class PredictiveLDM(LDMModel):
    """LDM on sequences (docs/spec.md §1 "Sequences", §4): fit latents to a predictive model.

    For frames ``x_{1..T}``, ``z_t = f(x_t)`` (the encoder applied to every frame) and

    .. math::

        F = \\frac1T \\sum_t \\mathbb{E}[\\log p_θ(z_t \\mid z_{<t})] + λ\\,\\hat H[z]

    with ``p_θ`` given by the predictor (a :class:`~ldm_keras.predictors.KalmanFilter` or a
    :class:`~ldm_keras.predictors.RecurrentPredictor`) and the entropy ``Ĥ[z]`` estimated
    on the latents pooled over batch × time (``entropy_pooling="pooled"``), or per time
    step, ``Ĥ = (1/T) Σ_t Ĥ[{z_t^(b)}_b]`` over the batch's windows at step ``t``
    (``"per-step"``: neighbours and kernels come from *other* windows only, never from
    the same window's nearby steps); ``entropy=None`` is the implicit entropy of
    stop-gradient targets. ``model(x)`` returns a dict with ``latents``, ``prediction``
    and the predictor's uncertainties. The uniformity options, the Kalman settings
    (spectral-radius clamp, learning-rate multipliers, noise encoder) and ``skip_first``
    are explained in docs/models.md, as are missing frames and ragged batches (a dict
    ``{"frames": x, "mask": m}`` or ``nan_as_missing=True``), time gaps (``"dt"``)
    and :meth:`smooth` (Rauch–Tung–Striebel smoothed states).

    Args:
        encoder: per-frame Keras model, ``frame → R^L``.
        predictor: a ``KalmanFilter`` or ``RecurrentPredictor``.
        entropy: ``None`` or an :class:`~ldm_keras.entropy.EntropyEstimator`.
        entropy_weight: ``λ``.
        noise_encoder: optional per-frame model ``frame → log σ²_D (R^L)``, for a Kalman
            cell with ``observation_noise="input"`` (heteroscedastic noise).
        clamp_radius: spectral-radius bound of the Kalman transition, or ``None``.
        lr_multipliers: per-group learning-rate multipliers (``"default"``: dynamics 100×,
            innovation network 10×, observation-noise network 0.03×; ``None``: none).
        lr_warmup_steps: ``{group: steps}``: the group's rate ramps linearly from 0 over
            its first ``steps`` optimizer steps (``None``: none). ``{"dynamics": 1000}``
            keeps ``A`` from fitting the untrained encoder's features (on DotMotion
            figure-eight it helps; on noisy data with jumps it hurts: see
            :mod:`ldm_keras.recipes`).
        skip_first: number of steps at the start of each window left out of the
            alignment NLL; an integer ``>= 0``, smaller than the number of time steps of
            the training sequences (``predict`` and ``encode`` take any length).
        nan_as_missing: frames holding a NaN are missing (Kalman predictor).
        entropy_pooling: ``"pooled"`` (default) or ``"per-step"`` (see above; an estimator
            with a ``grouped`` method, e.g. :class:`~ldm_keras.entropy.KNNEntropy`,
            receives all steps at once and pools its intrinsic dimension over them). Not
            with masks (a ragged number of observed windows per step).

    Example:
        >>> from ldm_keras.predictors import KalmanCell, KalmanFilter
        >>> model = PredictiveLDM(encoder=mlp(100, [128], 2),
        ...                       predictor=KalmanFilter(KalmanCell(state_dim=2)))
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> model.fit(frames, epochs=20, batch_size=32)       # frames: (N, T, 100)
        >>> out = model.predict(frames)                      # latents, predictions, S_t
    """

    def __init__(self, encoder, predictor, entropy=None, entropy_weight=1.0,
                 noise_encoder=None, clamp_radius=1.02, lr_multipliers="default",
                 skip_first=0, nan_as_missing=False, entropy_pooling="pooled", **kwargs):
        if lr_multipliers == "default":
            lr_multipliers = dict(DEFAULT_LR_MULTIPLIERS)
        super().__init__(lr_multipliers=lr_multipliers, **kwargs)
        self.encoder = _deserialize(encoder)
        self.predictor = _deserialize(predictor)
        self.entropy = _deserialize(entropy)
        self.noise_encoder = _deserialize(noise_encoder)
        self.entropy_weight = check_positive(entropy_weight, "entropy_weight", allow_zero=True)
        self.clamp_radius = None if clamp_radius is None else check_positive(
            clamp_radius, "clamp_radius")
        self.skip_first = check_int(skip_first, "skip_first", minimum=0)
        self.nan_as_missing = bool(nan_as_missing)
        self.entropy_pooling = check_choice(entropy_pooling, "entropy_pooling",
                                            ("pooled", "per-step"))
        if not isinstance(self.predictor, (KalmanFilter, RecurrentPredictor)):
            raise ValueError(
                "`predictor` must be a KalmanFilter or a RecurrentPredictor; received "
                f"{self.predictor!r}."
            )
        if self.entropy is not None and not isinstance(self.entropy, EntropyEstimator):
            raise ValueError(f"`entropy` must be an EntropyEstimator or None; "
                             f"received {self.entropy!r}.")
        sg = self._predictor_stop_gradient()
        if self.entropy is None and not sg:
            raise ValueError(
                "Without an explicit entropy the predictor must stop the gradient of its "
                "targets (stop_gradient_targets=True), or the latents collapse."
            )
        if self.entropy is not None and sg:
            raise ValueError(
                "With an explicit entropy estimator build the predictor with "
                "stop_gradient_targets=False (the targets are then differentiated)."
            )
        self._noise_input = self._is_kalman and self.predictor.cell.observation_noise == "input"
        if self._noise_input and self.noise_encoder is None:
            raise ValueError("The Kalman cell takes its observation noise as input "
                             "(observation_noise='input'): pass a `noise_encoder`.")
        if self.noise_encoder is not None and not self._noise_input:
            raise ValueError("A `noise_encoder` needs a KalmanCell with "
                             "observation_noise='input'.")

    @property
    def _is_kalman(self):
        return isinstance(self.predictor, KalmanFilter)

    #: Largest Kalman state size for which ``jit_compile="auto"`` picks XLA on TensorFlow.
    TF_XLA_MAX_STATE = 8

    def _resolve_auto_jit_compile(self):
        """``compile(jit_compile="auto")``: Keras' choice, except XLA for a Kalman model
        with a small state (``S ≤ TF_XLA_MAX_STATE``) on a CPU-only TensorFlow, where
        Keras turns XLA off.

        The filter's recursion is a loop over time steps of small matrix operations; in a
        plain ``tf.function`` graph every operation of every step pays TensorFlow's
        per-operation executor cost, which XLA compiles away. Measured on the benchmark's
        training step (``benchmarks/kalman_tf_xla.py``; benchmarks/results/kalman/README.md,
        "XLA on TensorFlow"), XLA against the plain graph at S ≤ 8: 1.4-2.8× faster at
        T = 100 (B ∈ {32, 128}), 1.2-1.3× at T = 1000-3000. With larger states it loses
        on long sequences (S = 32, T = 1000: 2.9× slower), so those keep the plain
        graph. The price of XLA is a longer first call for each new batch shape (about
        7-11 s instead of 5 s there).
        ``compile(jit_compile=False)``, or the environment variable
        ``LDM_KERAS_KALMAN_XLA=0`` (read at ``compile``), keeps Keras' choice.
        """
        if (keras.backend.backend() == "tensorflow" and self._is_kalman
                and self.predictor.state_dim <= self.TF_XLA_MAX_STATE
                and os.environ.get("LDM_KERAS_KALMAN_XLA", "1") != "0"
                and not getattr(self, "_distribute_strategy", None)):
            try:  # Keras' own test (layers with supports_jit=False, op determinism)
                from keras.src.trainers.trainer import model_supports_jit
            except ImportError:  # pragma: no cover - a Keras without it
                return all(layer.supports_jit for layer in self._flatten_layers())
            return bool(model_supports_jit(self))
        return super()._resolve_auto_jit_compile()

    def _predictor_stop_gradient(self):
        if self._is_kalman:
            return self.predictor.cell.stop_gradient_targets
        return self.predictor.stop_gradient_targets

    @property
    def min_batch_size(self):
        if self.entropy is not None and self.entropy_pooling == "per-step":
            return int(self.entropy.min_batch_size)  # each step's batch of windows
        return 1  # pooled over batch × time

    # -- building and shapes -------------------------------------------------------------
    def _check_sequences(self, shape):
        return check_sequences(self, shape)

    def build(self, input_shape):
        if self.built:
            return
        if isinstance(input_shape, dict):
            input_shape = input_shape["frames"]
        shape = self._check_sequences(input_shape)
        frame = keras.KerasTensor((None,) + shape[2:])
        z = self.encoder(frame)
        dim = z.shape[-1]
        width = dim
        if self.noise_encoder is not None:
            self.noise_encoder(frame)
            width = 2 * dim
        if not self.predictor.built:  # a deserialised predictor arrives built
            self.predictor.build((None, shape[1], width))
        if self.entropy is not None and not self.entropy.built:
            self.entropy.build((None, dim))
        self.built = True

    # -- inputs: frames, or {"frames", "mask", "dt"} ----------------------------------------
    def _split_inputs(self, x, mask=None, dt=None):
        """``(frames, mask, dt)`` from ``x`` (an array or a dict) and the arguments.

        With ``nan_as_missing`` a frame holding a NaN is missing and replaced by zeros
        before the encoder (so that no NaN reaches a gradient).
        """
        if isinstance(x, dict):
            unknown = sorted(set(x) - {"frames", "mask", "dt"})
            if "frames" not in x or unknown:
                raise ValueError(
                    "PredictiveLDM takes sequences as an array, or a dict with the key "
                    "'frames' and optionally 'mask' ((batch, time) bool, True = observed) "
                    f"and 'dt' (time gaps); received a dict with keys {sorted(x)}.")
            mask = x.get("mask", mask)
            dt = x.get("dt", dt)
            x = x["frames"]
        if (mask is not None or self.nan_as_missing or dt is not None) and not self._is_kalman:
            raise ValueError("Masks, NaN frames as missing and time gaps need a KalmanFilter "
                             "predictor; this model's predictor is a RecurrentPredictor.")
        if mask is not None:
            mask = ops.convert_to_tensor(mask)
            shape = tuple(x.shape)
            self.predictor._check_mask(mask, shape)
        if self.nan_as_missing:
            frames = ops.convert_to_tensor(x)
            flat = ops.reshape(frames, (ops.shape(frames)[0], ops.shape(frames)[1], -1))
            finite = ops.all(ops.isfinite(flat), axis=-1)
            mask = finite if mask is None else ops.logical_and(mask, finite)
            keep = ops.reshape(mask, tuple(ops.shape(mask)) + (1,) * (len(frames.shape) - 2))
            x = ops.where(keep, frames, ops.zeros_like(frames))
        return x, mask, dt

    # -- forward ---------------------------------------------------------------------------
    def _per_frame(self, model, x, training):
        return per_frame(model, x, training)

    def encode(self, x, training=False):
        """Latents ``z_t = f(x_t)`` for every frame: ``(B, T, L)`` (``x``: frames or a dict)."""
        x, _, _ = self._split_inputs(x)
        self._check_sequences(tuple(x.shape))
        return self._per_frame(self.encoder, x, training)

    def _predictor_inputs(self, x, training):
        self._check_sequences(tuple(x.shape))
        z = self._per_frame(self.encoder, x, training)
        inputs = z
        if self.noise_encoder is not None:
            log_var = self._per_frame(self.noise_encoder, x, training)
            inputs = ops.concatenate([z, ops.cast(log_var, z.dtype)], axis=-1)
        return z, inputs

    def _forward(self, x, training):
        """``(latents, predictor outputs)``."""
        z, out, _ = self._forward_masked(x, training)
        return z, out

    def _forward_masked(self, x, training, mask=None, dt=None):
        """``(latents, predictor outputs, mask or None)``."""
        x, mask, dt = self._split_inputs(x, mask, dt)
        z, inputs = self._predictor_inputs(x, training)
        if self._is_kalman:
            out = self.predictor(inputs, mask=mask, dt=dt, training=training)
        else:
            out = self.predictor(inputs, training=training)
        return z, out, mask

    def call(self, x, training=False):
        z, out = self._forward(x, training)
        return {"latents": ops.cast(z, "float32"), **out}

    def smooth(self, x, mask=None, dt=None):
        """Rauch–Tung–Striebel smoothing of the latent state (Kalman predictor only).

        ``x``: frames ``(B, T, *frame)`` or a dict with ``frames`` (and ``mask``,
        ``dt``). Returns ``latents`` and the filter's smoothing outputs
        (:meth:`~ldm_keras.predictors.KalmanFilter.smooth`): ``smoothed_mean``
        ``(B, T, S)``, ``smoothed_cov`` ``(B, T, S, S)``, ``lag_one_cov`` and the filtered
        outputs. A decoded band for a linear read-out ``W`` of the latents is
        ``W D Pˢ_t Dᵀ Wᵀ``.

        Example:
            >>> sm = model.smooth({"frames": frames, "mask": observed})
        """
        if not self._is_kalman:
            raise ValueError("`smooth` needs a KalmanFilter predictor; this model's predictor "
                             "is a RecurrentPredictor.")
        x, mask, dt = self._split_inputs(x, mask, dt)
        z, inputs = self._predictor_inputs(x, False)
        out = self.predictor.smooth(inputs, mask=mask, dt=dt)
        return {"latents": ops.cast(z, "float32"), **out}

    def _check_skip_first(self, steps):
        if isinstance(steps, int) and self.skip_first >= steps:
            raise ValueError(
                f"`skip_first` must be smaller than the number of time steps: received "
                f"skip_first={self.skip_first} for sequences of T={steps} steps, which "
                f"leaves no step for the alignment NLL.")

    def fit(self, x=None, *args, **kwargs):
        """``LDMModel.fit``; arrays whose windows are too short for ``skip_first`` are
        refused before training (other inputs: at the first step)."""
        frames = x["frames"] if isinstance(x, dict) and "frames" in x else x
        shape = getattr(frames, "shape", None)
        if shape is not None and len(shape) >= 2:
            self._check_skip_first(shape[1])
        return super().fit(x, *args, **kwargs)

    def mean_nll(self, nll, mask=None):
        """The per-step NLL ``(B, T)`` averaged over the batch and the steps
        ``t > skip_first`` of each window (the negative alignment term); with a ``mask``
        over the observed steps only."""
        self._check_skip_first(nll.shape[1])
        if self.skip_first:
            nll = nll[:, self.skip_first:]
            mask = None if mask is None else mask[:, self.skip_first:]
        if mask is None:
            return ops.mean(nll)
        weight = ops.cast(mask, "float32")
        return ops.sum(nll * weight) / ops.maximum(ops.sum(weight), 1.0)

    def _pooled_latents(self, z, mask):
        """Latents pooled over batch × time, the observed frames only with a mask."""
        pooled = ops.reshape(ops.cast(z, "float32"), (-1, z.shape[-1]))
        if mask is None:
            return pooled
        from ..predictors._recursion import is_eager

        if not is_eager(mask):
            raise ValueError(
                "An explicit entropy on masked sequences pools the observed frames only, "
                "a data-dependent number of rows, which a compiled step (jax.jit, "
                "tf.function) cannot hold: compile the model with run_eagerly=True, or "
                "use the implicit entropy (entropy=None).")
        keep = ops.convert_to_numpy(ops.reshape(mask, (-1,))).nonzero()[0]
        return ops.take(pooled, ops.convert_to_tensor(keep, "int32"), axis=0)

    def _per_step_entropy(self, z, mask):
        """The mean over steps ``t`` of the entropy of the batch's latents at ``t``."""
        if mask is not None:
            raise ValueError("entropy_pooling='per-step' takes sequences without a mask "
                             "(every window observed at every step); use "
                             "entropy_pooling='pooled' for masked sequences.")
        z = ops.cast(z, "float32")
        steps = z.shape[1]
        if steps is None:
            raise ValueError("entropy_pooling='per-step' needs a known number of time "
                             f"steps; received latents of shape {tuple(z.shape)}.")
        grouped = getattr(self.entropy, "grouped", None)
        if grouped is not None:
            return grouped(ops.transpose(z, (1, 0, 2)))
        return ops.mean(ops.stack([self.entropy(z[:, t]) for t in range(steps)]))

    def compute_ldm_loss(self, x, training=False):
        x, mask, dt = self._split_inputs(x)
        z, inputs = self._predictor_inputs(x, training)
        # data parallel: the filter, the NLL mean and the entropy see the global batch
        z, inputs, mask = self.gather_batch(z, inputs, mask)
        if dt is not None and len(dt.shape) == 2:
            dt = self.gather_batch(dt)
        if self._is_kalman:
            out = self.predictor(inputs, mask=mask, dt=dt, training=training)
        else:
            out = self.predictor(inputs, training=training)
        alignment = -self.mean_nll(out["nll"], mask)
        if self.entropy is None:
            ent = ops.zeros((), "float32")
        elif self.entropy_pooling == "per-step":
            ent = self._per_step_entropy(z, mask)
        else:
            ent = self.entropy(self._pooled_latents(z, mask))
        loss = -(alignment + self.entropy_weight * ent)
        return {"loss": loss, "alignment": alignment, "entropy": ent}

    #: the loss gathers every replica's latents (data parallelism)
    loss_gathers_batch = True

    def after_optimizer_step(self):
        if self._is_kalman and self.clamp_radius is not None:
            self.predictor.clamp_spectral_radius(self.clamp_radius)

    def variable_groups(self):
        groups = {"dynamics": [], "noise_network": [], "observation_noise": []}
        if self._is_kalman:
            groups.update(self.predictor.variable_groups())
        else:
            groups["dynamics"] = list(self.predictor.trainable_variables)
        if self.noise_encoder is not None:
            groups["observation_noise"] = list(self.noise_encoder.trainable_variables)
        return groups

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": _serialize(self.encoder),
            "predictor": _serialize(self.predictor),
            "entropy": _serialize(self.entropy),
            "entropy_weight": self.entropy_weight,
            "noise_encoder": _serialize(self.noise_encoder),
            "clamp_radius": self.clamp_radius,
            "skip_first": self.skip_first,
            "nan_as_missing": self.nan_as_missing,
            "entropy_pooling": self.entropy_pooling,
        }
