"""``KalmanFilter``: run a :class:`KalmanCell` over sequences, with masks, time gaps and smoothing.

Long module: the layer's one public surface (call, masks, time gaps, smoothing, the
covariance modes, the Keras RNN-mask protocol, serialisation) with its docstrings; the
recursions themselves are in ``_recursion`` and ``_linalg``.
"""

import warnings

import keras
from keras import ops

from .._math import eigen_angles
from .._serialization import register
from .._validation import check_choice, check_finite, check_int, check_rank, static_shape
from . import _linalg as la
from . import _recursion as rec
from .cell import KalmanCell
from .smoother import rts_smoother

_BACKEND = keras.backend.backend()

#: Outputs of ``call`` (the ``*_cov`` ones only with ``return_covariances``).
OUTPUT_KEYS = ("prediction", "prediction_cov", "nll", "state_mean", "state_cov")


@register
class KalmanFilter(keras.layers.Layer):
    """Run a :class:`KalmanCell` over sequences and return named outputs.

    Starts from ``h₀ = 0``, ``P₀ = I`` (or a given ``initial_mean`` / ``initial_cov``)
    and returns a dict::

        "prediction"      (B, T, L)     ẑ_t = D h⁻_t, the prediction of z_t from z_<t
        "prediction_cov"  (B, T, L, L)  S_t = D P⁻_t Dᵀ + Σ_D         (return_covariances)
        "nll"             (B, T)        ½ eᵀ S_t⁻¹ e + ½ log det S_t  (see KalmanCell)
        "state_mean"      (B, T, S)     filtered h_t
        "state_cov"       (B, T, S, S)  filtered P_t                  (return_covariances)

    The LDM alignment loss is ``sum_t mean_batch nll``. Everything is float32 under any
    dtype policy. Inputs are ``z`` of shape ``(B, T, L)``, or ``concatenate([z, log_var])``
    of shape ``(B, T, 2L)`` when the cell's ``observation_noise="input"``.

    **Missing frames and ragged batches.** ``mask`` (``(B, T)``, boolean, True =
    observed; or Keras' own mask from an upstream ``keras.layers.Masking``) marks the
    frames that exist: a masked step predicts but does not update (``h_t = h⁻_t``,
    ``P_t = P⁻_t``) and its ``nll`` is 0; a padded tail makes sequences of different
    lengths one batch. Masked frames may hold anything: their observations are never
    used (in ``"input"`` noise mode their ``log_var`` still gives the predicted ``S_t``
    where it is finite, 0 otherwise). With ``nan_as_missing=True`` a frame with a NaN in any feature is
    missing too. Every sequence needs at least one observed frame (checked eagerly).

    **Irregular sampling.** With a continuous-time cell (``dynamics="continuous"``) the
    time gaps ``dt`` (``(B, T)``, ``(T,)`` or a number; default 1) give per-step
    transitions ``A_t = e^{F Δt_t}`` and process noises (Van Loan); ``dt[:, t]`` is the
    time from frame ``t - 1`` (from the initial state for ``t = 0``) to frame ``t``.

    **Smoothing.** :meth:`smooth` adds Rauch–Tung–Striebel smoothed means, covariances
    and lag-one cross-covariances.

    **How it is computed.** When the noises are the same for every sequence (learned or
    fixed ``Σ_A``, ``Σ_D``; no per-frame noise, no innovation network, no mask, no
    per-sequence initial covariance or time gaps), the covariances ``P⁻, S_t, K_t, P``
    do not depend on the data: they are computed once per step without the batch axis
    (and only until they reach their fixed point, the steady state: eagerly at the first
    such step, compiled at the end of the first chunk of 8 steps that reaches it),
    and the batch enters only through the means, a linear recursion run by a sequential
    scan or a parallel (doubling) scan over time. Otherwise the general recursion with
    per-sequence covariances runs. ``covariance="batched"`` forces the general recursion
    (the plain algorithm; both give the same values to float32 rounding).

    Args:
        cell: a :class:`KalmanCell`, a dict of its constructor arguments, or its
            serialised config.
        return_covariances: also return ``prediction_cov`` and ``state_cov`` (this sets
            the cell's ``output_covariances``, so a cell belongs to one filter; ``False``
            saves ``T·(L² + S²)`` floats per sequence).
        check_finite: raise a ``ValueError`` on NaN/inf inputs (at observed frames)
            when they can be checked eagerly (costs one device-to-host copy per call);
            not in a training step (``training=True``): there a non-finite input makes
            the loss non-finite and the trainer's guard skips the step, on every backend.
        unroll: unroll the time loops (short sequences only).
        covariance: ``"auto"``: the shared recursion where it applies (sequential, with
            the steady-state shortcut); ``"parallel"``: the shared recursion in parallel
            over time, by the associative scan of Särkkä & García-Fernández (2021),
            ``⌈log₂ T⌉`` levels of ``T``-wide products instead of ``T`` steps (float32
            rounding of that order of composition: about 1e-6 relative in the outputs,
            1e-5 in gradients, against 1e-7 for the sequential form; its compilation on
            JAX and TensorFlow grows quickly with ``S``); ``"batched"``: always the
            per-sequence recursion (the plain algorithm).
        time_parallel: compute the means of the shared recursion (a linear recursion)
            by a doubling scan, ``⌈log₂ T⌉`` levels of ``T``-wide products, instead of a
            sequential scan; ``"auto"``: on PyTorch, where every sequential step costs
            Python-level operations (measured in ``benchmarks/``).
        steady_state: stop the shared covariance recursion at its fixed point and repeat
            it for the remaining steps (eagerly, under ``jax.jit`` and in a
            ``tf.function``, with or without XLA).
        nan_as_missing: treat frames holding NaN as missing.

    Example:
        >>> kf = KalmanFilter(KalmanCell(state_dim=2))
        >>> out = kf(z)                                   # z: (batch, time, 2)
        >>> loss = keras.ops.sum(keras.ops.mean(out["nll"], axis=0))
        >>> out = kf(z, mask=observed)                    # observed: (batch, time) bool
        >>> sm = kf.smooth(z)                             # + smoothed_mean, smoothed_cov
        >>> future = kf.rollout(out["state_mean"][:, -1], out["state_cov"][:, -1], steps=10)
    """

    def __init__(self, cell, return_covariances=True, check_finite=True, unroll=False,
                 covariance="auto", time_parallel="auto", steady_state=True,
                 nan_as_missing=False, **kwargs):
        # float32 whatever the policy: a layer whose compute dtype differs from its
        # variables' would read the cell's variables autocast (to float16).
        kwargs["dtype"] = "float32"
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        if isinstance(cell, dict):
            if "class_name" in cell:
                cell = keras.saving.deserialize_keras_object(cell)
            else:
                cell = KalmanCell(**cell)
        if not isinstance(cell, KalmanCell):
            raise ValueError(
                f"`cell` must be a KalmanCell or a dict of its arguments; received {cell!r}."
            )
        self.cell = cell
        self.return_covariances = bool(return_covariances)
        self.cell.output_covariances = self.return_covariances
        self.check_finite = bool(check_finite)
        self.unroll = bool(unroll)
        self.covariance = check_choice(covariance, "covariance", {"auto", "parallel", "batched"})
        if time_parallel not in ("auto", True, False):
            raise ValueError("`time_parallel` must be 'auto', True or False; received "
                             f"{time_parallel!r}.")
        self.time_parallel = time_parallel
        self.steady_state = bool(steady_state)
        self.nan_as_missing = bool(nan_as_missing)

    @property
    def state_dim(self):
        return self.cell.state_dim

    @property
    def observation_dim(self):
        return self.cell.observation_dim

    @property
    def transition_matrix(self):
        """The transition matrix ``A`` (an ``(S, S)`` tensor; ``e^F`` in continuous time)."""
        return self.cell.transition_value()

    def eigen_angles(self):
        """Angles (radians) of the eigenvalues of ``A``, sorted in descending order.

        For 2-d rotational dynamics ``A ≈ r·R(θ)`` this is ``[θ, -θ]``: the learned
        rotation per step (per unit of time in continuous time). Returns a NumPy array.
        """
        return eigen_angles(ops.convert_to_numpy(self.transition_matrix))

    def rotation_per_step(self):
        """Deprecated alias of :meth:`eigen_angles`."""
        warnings.warn("KalmanFilter.rotation_per_step() is deprecated; use eigen_angles().",
                      DeprecationWarning, stacklevel=2)
        return self.eigen_angles()

    def clamp_spectral_radius(self, max_radius=1.02):
        """See :meth:`KalmanCell.clamp_spectral_radius`."""
        return self.cell.clamp_spectral_radius(max_radius)

    def variable_groups(self):
        """See :meth:`KalmanCell.variable_groups`."""
        return self.cell.variable_groups()

    # ---- validation -----------------------------------------------------------------

    def _check_inputs(self, shape):
        if len(shape) != 3:
            raise ValueError(
                "KalmanFilter expects a rank-3 input of shape (batch, time, features); "
                f"received shape {tuple(shape)} (rank {len(shape)})."
            )
        if shape[1] is not None and int(shape[1]) < 2:
            raise ValueError(
                f"KalmanFilter needs sequences of at least 2 time steps; received shape "
                f"{tuple(shape)} (T={shape[1]})."
            )
        width = self.cell.observation_width
        if shape[2] is not None and int(shape[2]) != width:
            raise ValueError(
                f"KalmanFilter with observation_dim={self.cell.observation_dim} and "
                f"observation_noise={self.cell.observation_noise!r} expects "
                f"{width} features; received shape {tuple(shape)}."
            )

    def _check_initial(self, initial_mean, initial_cov):
        s = self.state_dim
        if initial_mean is not None:
            check_rank(initial_mean, 2, "initial_mean", f"(batch, {s})")
            if static_shape(initial_mean)[-1] not in (None, s):
                raise ValueError(f"`initial_mean` must have shape (batch, {s}); received "
                                 f"{static_shape(initial_mean)}.")
        if initial_cov is not None:
            check_rank(initial_cov, 3, "initial_cov", f"(batch, {s}, {s})")
            if tuple(static_shape(initial_cov)[1:]) not in ((s, s), (None, None)):
                raise ValueError(f"`initial_cov` must have shape (batch, {s}, {s}); received "
                                 f"{static_shape(initial_cov)}.")

    def _check_mask(self, mask, shape):
        mshape = static_shape(mask)
        dtype = keras.backend.standardize_dtype(getattr(mask, "dtype", None) or "float32")
        if dtype != "bool":
            raise ValueError(
                "`mask` must be a boolean tensor of shape (batch, time) (True = observed "
                f"frame); received dtype {dtype}.")
        if len(mshape) != 2 or any(
                m is not None and x is not None and int(m) != int(x)
                for m, x in zip(mshape, shape[:2])):
            raise ValueError(
                f"`mask` must have shape (batch, time) = {tuple(shape[:2])}; received shape "
                f"{mshape}.")

    def _check_dt(self, dt, shape):
        if not self.cell.continuous:
            raise ValueError(
                "Time gaps `dt` need a continuous-time cell (KalmanCell(dynamics="
                "'continuous')); this filter's cell is discrete.")
        dshape = static_shape(dt)
        ok = len(dshape) == 0 or (len(dshape) == 1 and dshape[0] in (None, shape[1])) or (
            len(dshape) == 2 and all(d is None or x is None or int(d) == int(x)
                                     for d, x in zip(dshape, shape[:2])))
        if not ok:
            raise ValueError(
                f"`dt` must be a number, a (time,) = ({shape[1]},) or a (batch, time) = "
                f"{tuple(shape[:2])} tensor of time gaps; received shape {dshape}.")

    @staticmethod
    def _eager_value_checks(mask, dt):
        """Value checks before any computation (skipped on symbolic / traced tensors)."""
        from keras.utils import is_keras_tensor

        if mask is not None and not is_keras_tensor(mask) and rec.is_eager(mask):
            observed = ops.convert_to_numpy(ops.any(mask, axis=1))
            if not observed.all():
                bad = [int(i) for i in (~observed).nonzero()[0][:5]]
                raise ValueError(
                    "Every sequence needs at least one observed frame; the mask marks every "
                    f"frame of sequence(s) {bad} as missing.")
        if dt is not None and not is_keras_tensor(dt) and rec.is_eager(dt):
            values = ops.convert_to_numpy(dt)
            import numpy as np

            if not np.all(np.isfinite(values)) or np.any(values < 0):
                finite = values[np.isfinite(values)]
                span = (f"[{finite.min():g}, {finite.max():g}]" if finite.size
                        else "none finite")
                raise ValueError(
                    f"`dt` (time gaps) must be finite and >= 0; received values in {span} "
                    f"with {int(np.sum(~np.isfinite(values)))} non-finite.")

    # ---- Keras plumbing -------------------------------------------------------------

    def build(self, input_shape):
        self._check_inputs(tuple(input_shape))
        if not self.cell.built:
            self.cell.build((None, self.cell.input_dim))
            self.cell.built = True

    def _output_shapes(self, input_shape):
        b, t = input_shape[0], input_shape[1]
        s, l_ = self.state_dim, self.observation_dim
        shapes = {"prediction": (b, t, l_), "nll": (b, t), "state_mean": (b, t, s)}
        if self.return_covariances:
            shapes["prediction_cov"] = (b, t, l_, l_)
            shapes["state_cov"] = (b, t, s, s)
        return shapes

    def compute_output_shape(self, input_shape, *args, **kwargs):
        self._check_inputs(tuple(input_shape))
        return self._output_shapes(tuple(input_shape))

    def compute_output_spec(self, inputs, initial_mean=None, initial_cov=None, mask=None,
                            dt=None, training=None):
        shape = tuple(inputs.shape)
        self._check_inputs(shape)
        self._check_initial(initial_mean, initial_cov)
        if mask is not None:
            self._check_mask(mask, shape)
        if dt is not None:
            self._check_dt(dt, shape)
        return {k: keras.KerasTensor(v, dtype="float32")
                for k, v in self._output_shapes(shape).items()}

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return {k: mask for k in self._output_shapes((None, None, None))}

    # ---- the recursion --------------------------------------------------------------

    def _use_parallel(self):
        if self.time_parallel == "auto":
            return _BACKEND == "torch"
        return bool(self.time_parallel)

    def _prepare(self, inputs, mask, dt, training=None):
        """Cast, validate and split the inputs; returns ``(z, log_var, mask, dt)``."""
        x = ops.cast(inputs, "float32")
        shape = static_shape(x)
        self._check_inputs(shape)
        if mask is not None:
            mask = ops.convert_to_tensor(mask) if not hasattr(mask, "shape") else mask
            self._check_mask(mask, shape)
        if dt is not None:
            if not hasattr(dt, "shape") or not hasattr(dt, "dtype"):
                dt = ops.convert_to_tensor(dt, "float32")
            self._check_dt(dt, shape)
        self._eager_value_checks(mask, dt)
        if self.nan_as_missing:
            finite = ops.all(ops.isfinite(x), axis=-1)
            mask = finite if mask is None else ops.logical_and(mask, finite)
            self._eager_value_checks(mask, None)
        l_ = self.observation_dim
        z = x[..., :l_]
        log_var = x[..., l_:] if self.cell.observation_noise == "input" else None
        if mask is not None:
            # A missing frame's observation is never used; its noise (a missing frame's
            # S_t is still a prediction) is kept where finite.
            z = ops.where(ops.expand_dims(mask, -1), z, ops.zeros_like(z))
            if log_var is not None:
                log_var = ops.where(ops.isfinite(log_var), log_var, ops.zeros_like(log_var))
        if self.check_finite and not training:
            check_finite(z, "inputs")
            if log_var is not None:
                check_finite(log_var, "inputs")
        if self.cell.continuous:
            if dt is None:
                dt = ops.ones((shape[1] if shape[1] is not None else ops.shape(x)[1],),
                              "float32")
            dt = ops.cast(dt, "float32")
            if len(dt.shape) == 0:
                dt = dt * ops.ones((shape[1] if shape[1] is not None else ops.shape(x)[1],),
                                   "float32")
        return z, log_var, mask, dt

    def _is_shared(self, log_var, mask, dt, initial_cov):
        cell = self.cell
        return (self.covariance != "batched" and mask is None and log_var is None
                and not cell.innovation_history
                and initial_cov is None
                and (dt is None or len(dt.shape) == 1))

    def _run(self, inputs, initial_mean=None, initial_cov=None, mask=None, dt=None,
             internals=False, training=None):
        """The filter; with ``internals`` also the predicted means/covariances and ``A``."""
        cell = self.cell
        if not cell.built:
            self.build(tuple(inputs.shape))
        self._check_initial(initial_mean, initial_cov)
        z, log_var, mask, dt = self._prepare(inputs, mask, dt, training)
        s, l_ = self.state_dim, self.observation_dim
        steps = z.shape[1]
        if steps is None:
            steps = ops.shape(z)[1]
        b = ops.convert_to_tensor(cell.offset)
        d = cell.observation_matrix_value()
        const = cell.nll_constant()
        h0 = ops.zeros_like(z[:, 0, :1]) + ops.zeros((s,), "float32")
        if initial_mean is not None:
            h0 = ops.cast(initial_mean, "float32")

        if cell.continuous:
            a, q = cell.discretize(dt)              # (T, S, S) or (B, T, S, S)
        else:
            a, q = cell.transition_value(), None
        unroll = self.unroll or 1

        if self._is_shared(log_var, mask, dt, initial_cov):
            if q is None:
                q = cell.process_cov()
            r = cell._observation_var()
            p0 = ops.eye(s, dtype="float32")
            joseph = cell.covariance_update == "joseph"
            parallel = self._use_parallel()
            if self.covariance == "parallel":
                cov = rec.parallel_covariances(a, q, d, r, p0, int(steps), jitter=cell.jitter,
                                               joseph=joseph)
            else:
                keep = (["prediction_cov", "state_cov"] if self.return_covariances else [])
                keep += ["prior_cov", "state_cov"] if internals else []
                cov, _ = rec.shared_covariances(
                    a, q, d, r, p0, int(steps), jitter=cell.jitter, joseph=joseph,
                    steady_state=self.steady_state, unroll=unroll, keep=keep)
            u0 = h0 - b
            zc = z - b @ la.transpose(d)
            u = rec.shared_means(zc, u0, a, d, cov["gain_t"], parallel=parallel,
                                 unroll=unroll)
            u_prev = ops.concatenate([ops.expand_dims(u0, 1), u[:, :-1]], axis=1)
            if len(a.shape) == 3:                   # A_t per step: (B, T, S) @ (T, S, S)
                prior_u = ops.transpose(ops.transpose(u_prev, (1, 0, 2)) @ la.transpose(a),
                                        (1, 0, 2))
            else:
                prior_u = u_prev @ la.transpose(a)
            prior_mean = prior_u + b
            pred = prior_mean @ la.transpose(d)
            target = ops.stop_gradient(z) if cell.stop_gradient_targets else z
            # Whitened innovations W_t e_t for all (b, t): (T, B, L) @ (T, L, L)ᵀ.
            e = ops.transpose(target - pred, (1, 0, 2))
            white = e @ la.transpose(cov["whitening"])
            nll = (0.5 * ops.transpose(ops.sum(white * white, axis=-1))
                   + 0.5 * cov["log_det"] + const)
            out = {"prediction": pred, "nll": nll, "state_mean": u + b}
            batch = ops.shape(z)[0]
            if self.return_covariances:
                out["prediction_cov"] = ops.broadcast_to(
                    cov["prediction_cov"], (batch,) + tuple(cov["prediction_cov"].shape))
                out["state_cov"] = ops.broadcast_to(
                    cov["state_cov"], (batch,) + tuple(cov["state_cov"].shape))
            if internals:
                out["_shared"] = True
                out["_state_cov"] = cov["state_cov"]
                out["_prior_mean"] = prior_mean
                out["_prior_cov"] = cov["prior_cov"]
                out["_transition"] = a
            return out

        # General recursion, per-sequence covariances (time-major scan).
        def tm(x):
            return ops.moveaxis(x, 1, 0)

        xs = {"z": tm(z)}
        if log_var is not None:
            xs["log_var"] = tm(log_var)
        if mask is not None:
            xs["mask"] = tm(mask)
        if cell.continuous:
            if len(a.shape) == 3:                   # shared gaps: (T, S, S) → (T, B, S, S)
                batch = ops.shape(z)[0]
                a = ops.broadcast_to(ops.expand_dims(a, 1), (a.shape[0], batch, s, s))
                q = ops.broadcast_to(ops.expand_dims(q, 1), (q.shape[0], batch, s, s))
                a_bt = ops.moveaxis(a, 1, 0)
            else:
                a_bt = a
                a, q = tm(a), tm(q)
            xs["a"], xs["q"] = a, q
        else:
            a_bt = a
        if initial_cov is None:
            p0 = ops.zeros_like(z[:, 0, :1, None]) + ops.eye(s, dtype="float32")
        else:
            p0 = ops.cast(initial_cov, "float32")
        hist0 = None
        if cell.innovation_history:
            hist0 = ops.zeros_like(z[:, 0, :1]) + ops.zeros(
                (cell.innovation_history * l_,), "float32")
        pred, nll, mean, pcov, scov, pmean, prcov = rec.batched_filter(
            xs, h0, p0, hist0, cell.step_params(), unroll=unroll)
        out = {"prediction": tm(pred), "nll": tm(nll) + const, "state_mean": tm(mean)}
        if mask is not None and const:
            out["nll"] = ops.where(mask, out["nll"], ops.zeros_like(out["nll"]))
        if self.return_covariances:
            out["prediction_cov"] = tm(pcov)
            out["state_cov"] = tm(scov)
        if internals:
            out["_shared"] = False
            out["_state_cov"] = tm(scov)
            out["_prior_mean"] = tm(pmean)
            out["_prior_cov"] = tm(prcov)
            out["_transition"] = a_bt
        return out

    def call(self, inputs, initial_mean=None, initial_cov=None, mask=None, dt=None,
             training=None):
        out = self._run(inputs, initial_mean, initial_cov, mask, dt, training=training)
        return {k: out[k] for k in OUTPUT_KEYS if k in out}

    # ---- smoothing ------------------------------------------------------------------

    def smooth(self, inputs, mask=None, initial_mean=None, initial_cov=None, dt=None):
        """Filter, then Rauch–Tung–Striebel smoothing (see :mod:`.smoother`).

        Returns the filter's outputs (as :meth:`call`, covariances included) plus::

            "smoothed_mean"  (B, T, S)        E[h_t | z_1..T]
            "smoothed_cov"   (B, T, S, S)     Cov[h_t | z_1..T]
            "lag_one_cov"    (B, T - 1, S, S) Cov[h_{t+1}, h_t | z_1..T]

        Example:
            >>> sm = kf.smooth(z, mask=observed)
            >>> band = 1.96 * keras.ops.sqrt(keras.ops.diagonal(sm["smoothed_cov"], 0, 2, 3))
        """
        if not self.cell.built:
            self.build(tuple(inputs.shape))
        out = self._run(inputs, initial_mean, initial_cov, mask, dt, internals=True)
        shared = out["_shared"]
        mean, cov, cross = rts_smoother(out["state_mean"], out["_state_cov"],
                                        out["_prior_mean"], out["_prior_cov"],
                                        out["_transition"], shared,
                                        unroll=self.unroll or 1)
        result = {k: out[k] for k in OUTPUT_KEYS if k in out}
        batch = ops.shape(mean)[0]
        if shared:
            cov = ops.broadcast_to(cov, (batch,) + tuple(cov.shape))
            cross = ops.broadcast_to(cross, (batch,) + tuple(cross.shape))
            if "state_cov" not in result:
                result["state_cov"] = ops.broadcast_to(
                    out["_state_cov"], (batch,) + tuple(out["_state_cov"].shape))
        elif "state_cov" not in result:
            result["state_cov"] = out["_state_cov"]
        result.update({"smoothed_mean": mean, "smoothed_cov": cov, "lag_one_cov": cross})
        return result

    # ---- open-loop prediction -------------------------------------------------------

    def rollout(self, initial_mean, initial_cov, steps, observation_log_var=None,
                innovation_history=None, dt=None):
        """Open-loop prediction: iterate the predict step ``steps`` times, no updates.

        From the posterior ``(h, P)`` (e.g. the last filtered state), for ``j = 1..steps``::

            h_j = A (h_{j-1} - b) + b,   P_j = A P_{j-1} Aᵀ + Σ_A
            ẑ_j = D h_j,                 S_j = D P_j Dᵀ + Σ_D

        With an innovation network the innovation history starts at
        ``innovation_history`` (default zeros; shape ``(B, k·L)``, oldest first) and is
        shifted with zeros, the expected innovation of an unobserved step. In
        ``"input"`` noise mode, ``observation_log_var`` (``(B, steps, L)``) is required.
        In continuous time ``dt`` gives the gaps (a number or ``(steps,)``; default 1).

        Args:
            initial_mean: ``(B, S)``.
            initial_cov: ``(B, S, S)``.
            steps: number of predicted steps (a Python int ≥ 1).

        Returns:
            A dict: ``"prediction"`` (B, steps, L), ``"prediction_cov"`` (B, steps, L, L),
            ``"state_mean"`` (B, steps, S), ``"state_cov"`` (B, steps, S, S).

        Example:
            >>> out = kf(z)
            >>> fut = kf.rollout(out["state_mean"][:, -1], out["state_cov"][:, -1], steps=20)
        """
        steps = check_int(steps, "steps", minimum=1)
        cell = self.cell
        l_ = self.observation_dim
        self._check_initial(initial_mean, initial_cov)
        if initial_mean is None or initial_cov is None:
            raise ValueError("`rollout` needs both `initial_mean` and `initial_cov`.")
        check_rank(initial_cov, 3, "initial_cov", f"(batch, {self.state_dim}, "
                                                  f"{self.state_dim})")
        if not cell.built:
            cell.build((None, cell.input_dim))
        mean = ops.cast(initial_mean, "float32")
        cov = ops.cast(initial_cov, "float32")
        if cell.observation_noise == "input":
            if observation_log_var is None:
                raise ValueError(
                    "This filter's observation noise is supplied per step "
                    "(observation_noise='input'): `rollout` needs `observation_log_var` of "
                    f"shape (batch, {steps}, {l_})."
                )
            check_rank(observation_log_var, 3, "observation_log_var", f"(batch, {steps}, {l_})")
            lv_shape = static_shape(observation_log_var)
            if lv_shape[1] not in (None, steps) or lv_shape[2] not in (None, l_):
                raise ValueError(
                    f"`observation_log_var` must have shape (batch, {steps}, {l_}); "
                    f"received {lv_shape}."
                )
            observation_log_var = ops.cast(observation_log_var, "float32")
        transitions = None
        if cell.continuous:
            if dt is None:
                dt = 1.0
            dt = ops.cast(dt, "float32")
            if len(dt.shape) == 0:
                dt = dt * ops.ones((steps,), "float32")
            self._eager_value_checks(None, dt)
            transitions = cell.discretize(dt)
        elif dt is not None:
            self._check_dt(dt, (None, steps))
        history = None
        if cell.innovation_history:
            width = cell.innovation_history * l_
            if innovation_history is None:
                history = ops.zeros_like(mean[:, :1]) + ops.zeros((width,), "float32")
            else:
                history = ops.cast(innovation_history, "float32")
                check_rank(history, 2, "innovation_history", f"(batch, {width})")
        preds, pcovs, means, covs = [], [], [], []
        for j in range(steps):
            if transitions is not None:
                mean, cov = cell.predict_step(mean, cov, transition=transitions[0][j],
                                              process_cov=transitions[1][j])
            else:
                mean, cov = cell.predict_step(mean, cov, history)
            log_var = observation_log_var[:, j] if observation_log_var is not None else None
            pred, s_mat, _ = cell.observe_step(mean, cov, cell._observation_var(log_var))
            preds.append(pred)
            pcovs.append(s_mat)
            means.append(mean)
            covs.append(cov)
            if history is not None:
                history = ops.concatenate([history[:, l_:], ops.zeros_like(pred)], axis=-1)
        return {
            "prediction": ops.stack(preds, axis=1),
            "prediction_cov": ops.stack(pcovs, axis=1),
            "state_mean": ops.stack(means, axis=1),
            "state_cov": ops.stack(covs, axis=1),
        }

    def get_config(self):
        config = super().get_config()
        config.update({
            "cell": keras.saving.serialize_keras_object(self.cell),
            "return_covariances": self.return_covariances,
            "check_finite": self.check_finite,
            "unroll": self.unroll,
            "covariance": self.covariance,
            "time_parallel": self.time_parallel,
            "steady_state": self.steady_state,
            "nan_as_missing": self.nan_as_missing,
        })
        return config
