"""Sampling-free Bayesian filtering of latents: the Kalman predictor of LDM (LDM_SPEC §4).

An encoder gives one pseudo-observation ``z_t = f(x_t) ∈ R^L`` per frame. A
linear-Gaussian state-space model with state ``h ∈ R^S`` filters them::

    predict:  h⁻ = A (h - b) + b              P⁻ = A P Aᵀ + Σ_A
              ẑ  = D h⁻                       S_t = D P⁻ Dᵀ + Σ_D
    update:   e  = z_t - ẑ                    K = P⁻ Dᵀ S_t⁻¹
              h  = h⁻ + K e                   P = (I - K D) P⁻ (I - K D)ᵀ + K Σ_D Kᵀ   (Joseph form)
    start:    h₀ = 0, P₀ = I                  (the posterior "at t = 0")

and the alignment term of LDM is the innovation log-likelihood,
``-Σ_t mean_batch nll_t`` with ``nll_t = ½ eᵀ S_t⁻¹ e + ½ log det S_t``.

:class:`KalmanCell` is one step of that recursion, written as a Keras RNN cell;
:class:`KalmanFilter` runs it over a sequence with ``keras.layers.RNN`` and returns named
outputs. All matrix work uses Cholesky factorisations and triangular solves (never a
matrix inverse) and runs in float32 whatever the dtype policy.
"""

import math
import random as python_random

import keras
from keras import ops

from .._serialization import register
from .._validation import (
    check_choice,
    check_finite,
    check_int,
    check_positive,
    check_rank,
    static_shape,
)

__all__ = ["KalmanCell", "KalmanFilter", "TransitionInitializer", "spectral_radius"]

_LOG_2PI = math.log(2.0 * math.pi)


def spectral_radius(matrix, iterations=20):
    """Spectral radius ``ρ(A) = max_i |λ_i(A)|`` of a square matrix, with ``keras.ops`` only.

    Uses Gelfand's formula ``ρ(A) = lim_n ‖A^n‖^(1/n)`` with ``n = 2^iterations``,
    computed by repeated squaring with renormalisation (the logarithm of the scale is
    carried separately, so nothing overflows)::

        M₀ = A / ‖A‖,  log c₀ = log ‖A‖
        M_{k+1} = M_k² / ‖M_k²‖,  log c_{k+1} = 2 log c_k + log ‖M_k²‖
        log ρ ≈ log c_K / 2^K

    Unlike power iteration this converges for complex-conjugate eigenvalue pairs
    (rotations) and needs no eigendecomposition, so it runs on every backend and
    device (``jnp.linalg.eig`` is CPU-only). The relative error is about
    ``log(cond) / 2^iterations`` (≈ 1e-5 for ``iterations=20``). Not differentiated:
    the result is wrapped in ``stop_gradient``.

    Args:
        matrix: a ``(S, S)`` tensor.
        iterations: number of squarings ``K``.

    Returns:
        A float32 scalar tensor.

    Example:
        >>> spectral_radius(keras.ops.array([[0.0, -2.0], [2.0, 0.0]]))  # ≈ 2.0
    """
    tiny = 1e-30
    a = ops.stop_gradient(ops.cast(matrix, "float32"))
    norm = ops.sqrt(ops.sum(ops.square(a)))
    log_c = ops.log(norm + tiny)
    m = a / (norm + tiny)
    for _ in range(int(iterations)):
        m = ops.matmul(m, m)
        norm = ops.sqrt(ops.sum(ops.square(m)))
        log_c = 2.0 * log_c + ops.log(norm + tiny)
        m = m / (norm + tiny)
    return ops.exp(log_c / float(2 ** int(iterations)))


@register
class TransitionInitializer(keras.initializers.Initializer):
    """Initial transition matrix ``A = I + σ·N(0, 1)``, rescaled to a given spectral radius.

    ``A ← A · radius / ρ(A)``, with ``ρ`` from :func:`spectral_radius`. The reference
    uses ``σ = 0.1`` and ``radius = 1/1.1``: a slightly contracting, nearly identity
    map.

    Example:
        >>> init = TransitionInitializer(spectral_radius=1 / 1.1, seed=0)
        >>> a = init((2, 2))
    """

    def __init__(self, spectral_radius=1.0 / 1.1, stddev=0.1, seed=None):
        self.spectral_radius = check_positive(spectral_radius, "spectral_radius")
        self.stddev = check_positive(stddev, "stddev", allow_zero=True)
        self.seed = seed
        # Like Keras' random initializers: an unseeded initializer draws its seed once,
        # from Python's generator (seeded by keras.utils.set_random_seed), so that it
        # never touches a global backend generator inside a traced function.
        self._draw_seed = seed if seed is not None else python_random.randint(1, int(1e9))

    def __call__(self, shape, dtype=None):
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"TransitionInitializer needs a square 2-d shape; received {shape}.")
        n = int(shape[0])
        noise = keras.random.normal((n, n), stddev=self.stddev, seed=self._draw_seed,
                               dtype="float32")
        a = ops.eye(n, dtype="float32") + noise
        a = a * (self.spectral_radius / spectral_radius(a))
        return ops.cast(a, dtype or "float32")

    def get_config(self):
        return {"spectral_radius": self.spectral_radius, "stddev": self.stddev, "seed": self.seed}


def _sym(m):
    return 0.5 * (m + ops.swapaxes(m, -1, -2))


@register
class KalmanCell(keras.layers.Layer):
    """One step of a linear-Gaussian Kalman filter, as a Keras RNN cell.

    Model (state ``h ∈ R^S``, observation ``z ∈ R^L``)::

        h_t = A (h_{t-1} - b) + b + η,   η ~ N(0, Σ_A)
        z_t = D h_t + ε,                 ε ~ N(0, Σ_D)

    One call does the predict and update steps of the module docstring on a batch.
    The per-step negative log-likelihood of the innovation is::

        nll_t = ½ e_lossᵀ S_t⁻¹ e_loss + ½ log det S_t  (+ L/2 · log 2π if include_constant)

    with ``e_loss = stop_gradient(z_t) - ẑ_t`` when ``stop_gradient_targets=True`` (the
    stop-gradient version of LDM_SPEC §4: gradients reach the encoder through the past,
    via ``ẑ``, and through a per-frame ``Σ_D``), or ``e_loss = z_t - ẑ_t`` otherwise. The
    state update always uses the real ``z_t``.

    Parameters:

    * ``A`` (``transition``, S×S): learnable, initialised by
      :class:`TransitionInitializer` (``I + 0.1·N(0,1)`` scaled to spectral radius
      ``initial_spectral_radius``). Call :meth:`clamp_spectral_radius` after each
      optimizer step to keep the dynamics stable.
    * ``b`` (``offset``, S): learnable, zeros.
    * ``D`` (L×S): ``"fixed"`` = ``[I 0]`` (needs ``L ≤ S``) or ``"learned"``
      (initialised to ``[I 0]``).
    * ``Σ_A = exp(s) · diag(exp(log σ²_A) + g(e_{t-k..t-1}))``: a learned diagonal, plus,
      when ``innovation_history = k > 0``, a small network ``g`` (Dense(tanh) → Dense →
      softplus) of the last ``k`` innovations, for sudden jumps. The ``k`` innovations
      are part of the recurrent state.
    * ``Σ_D = exp(s) · diag(r)``: ``r`` fixed at ``observation_noise_init``
      (``"fixed"``), learned (``"learned"``, ``r = exp(log r)``), or supplied per step
      (``"input"``: the cell's input is ``concatenate([z_t, log_var_t])`` of width
      ``2L``, ``r = exp(clip(log_var_t, ±log_variance_clip))``), for heteroscedastic
      noise predicted by an encoder.
    * ``s`` (``log_noise_scale``): a shared learnable log-scale of ``Σ_A`` and ``Σ_D``
      (zero, and not trained, with ``learn_noise_scale=False``).

    States (all flat, as Keras' RNN wants them): ``[h (S), vec(P) (S·S)]`` plus
    ``[e_{t-k}, …, e_{t-1}] (k·L)`` when ``innovation_history = k > 0`` (oldest first).
    :meth:`get_initial_state` gives ``h₀ = 0``, ``P₀ = I`` and a zero history.

    Output per step: one flat float32 vector (Keras 3's RNN wants a single tensor),
    laid out as::

        [ ẑ (L) | nll (1) | h (S) | vec(S_t) (L·L) | vec(P) (S·S) ]

    where the two covariance blocks are present only with ``output_covariances=True``.
    :class:`KalmanFilter` splits it into named outputs. ``h`` and ``P`` are the filtered
    (posterior) mean and covariance after seeing ``z_t``; ``ẑ`` and ``S_t`` the
    prediction of ``z_t`` from ``z_{<t}`` and its covariance.

    Numerics: float32 whatever the dtype policy (the ``dtype`` argument is ignored);
    Cholesky factorisation of ``S_t`` and triangular solves, never an inverse; ``P⁻``
    and ``P`` are symmetrised; ``jitter`` (default 1e-6) is added to the diagonal of
    ``S_t`` before factorising it.

    Args:
        state_dim: ``S``.
        observation_dim: ``L`` (default ``S``).
        observation_matrix: ``"fixed"`` or ``"learned"``.
        observation_noise: ``"fixed"``, ``"learned"`` or ``"input"``.
        observation_noise_init: observation noise variance (fixed value or initial value).
        process_noise_init: initial process noise variance ``σ²_A``.
        learn_noise_scale: learn the shared log-scale ``s``.
        innovation_history: ``k ≥ 0``; 0 disables the innovation network.
        innovation_units: hidden width of the innovation network.
        stop_gradient_targets: stop the gradient of the target in the NLL (see above).
        include_constant: add ``L/2 · log 2π`` to the NLL (exact Gaussian log density).
        output_covariances: emit ``S_t`` and ``P`` (set by :class:`KalmanFilter`).
        jitter: added to the diagonal of ``S_t``.
        log_variance_clip: clip of a supplied ``log_var_t`` (``"input"`` mode).
        initial_spectral_radius: spectral radius of the initial ``A``.
        seed: seed of the initial ``A``.

    Example:
        >>> cell = KalmanCell(state_dim=2, observation_dim=2)
        >>> rnn = keras.layers.RNN(cell, return_sequences=True)
        >>> flat = rnn(z)                       # z: (batch, time, 2) -> (batch, time, 13)
    """

    def __init__(
        self,
        state_dim,
        observation_dim=None,
        observation_matrix="fixed",
        observation_noise="learned",
        observation_noise_init=0.1,
        process_noise_init=0.01,
        learn_noise_scale=True,
        innovation_history=0,
        innovation_units=16,
        stop_gradient_targets=True,
        include_constant=False,
        output_covariances=True,
        jitter=1e-6,
        log_variance_clip=20.0,
        initial_spectral_radius=1.0 / 1.1,
        seed=None,
        **kwargs,
    ):
        kwargs["dtype"] = "float32"
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        self.state_dim = check_int(state_dim, "state_dim", minimum=1)
        self.observation_dim = check_int(
            state_dim if observation_dim is None else observation_dim, "observation_dim", 1
        )
        self.observation_matrix = check_choice(
            observation_matrix, "observation_matrix", {"fixed", "learned"}
        )
        self.observation_noise = check_choice(
            observation_noise, "observation_noise", {"fixed", "learned", "input"}
        )
        if self.observation_matrix == "fixed" and self.observation_dim > self.state_dim:
            raise ValueError(
                "A fixed observation matrix D = [I 0] needs observation_dim <= state_dim; "
                f"received observation_dim={self.observation_dim}, state_dim={self.state_dim}. "
                "Use observation_matrix='learned' or a larger state."
            )
        self.observation_noise_init = check_positive(observation_noise_init, "observation_noise_init")
        self.process_noise_init = check_positive(process_noise_init, "process_noise_init")
        self.learn_noise_scale = bool(learn_noise_scale)
        self.innovation_history = check_int(innovation_history, "innovation_history", 0)
        self.innovation_units = check_int(innovation_units, "innovation_units", 1)
        self.stop_gradient_targets = bool(stop_gradient_targets)
        self.include_constant = bool(include_constant)
        self.output_covariances = bool(output_covariances)
        self.jitter = check_positive(jitter, "jitter", allow_zero=True)
        self.log_variance_clip = check_positive(log_variance_clip, "log_variance_clip")
        self.initial_spectral_radius = check_positive(
            initial_spectral_radius, "initial_spectral_radius"
        )
        self.seed = seed
        if self.innovation_history:
            self._innovation_hidden = keras.layers.Dense(
                self.innovation_units, activation="tanh", dtype="float32",
                name="innovation_hidden",
            )
            self._innovation_out = keras.layers.Dense(
                self.state_dim, dtype="float32", name="innovation_out",
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=seed),
                bias_initializer=keras.initializers.Constant(-4.0),
            )

    # ---- RNN-cell interface -------------------------------------------------------------

    @property
    def state_size(self):
        sizes = [self.state_dim, self.state_dim * self.state_dim]
        if self.innovation_history:
            sizes.append(self.innovation_history * self.observation_dim)
        return sizes

    @property
    def output_size(self):
        s, l_ = self.state_dim, self.observation_dim
        size = l_ + 1 + s
        if self.output_covariances:
            size += l_ * l_ + s * s
        return size

    @property
    def input_dim(self):
        """Width of the cell's input: ``L``, or ``2L`` in ``"input"`` noise mode."""
        return self.observation_dim * (2 if self.observation_noise == "input" else 1)

    def get_initial_state(self, batch_size=None):
        """``[h₀ = 0, vec(P₀) = vec(I), zero innovation history]``."""
        s = self.state_dim
        states = [
            ops.zeros((batch_size, s), dtype="float32"),
            ops.tile(ops.reshape(ops.eye(s, dtype="float32"), (1, s * s)), (batch_size, 1)),
        ]
        if self.innovation_history:
            states.append(
                ops.zeros((batch_size, self.innovation_history * self.observation_dim), "float32")
            )
        return states

    def build(self, input_shape):
        features = input_shape[-1]
        if features is not None and int(features) != self.input_dim:
            mode = ("concatenate([z, log_var]) of width 2L" if self.observation_noise == "input"
                    else "z of width L")
            raise ValueError(
                f"KalmanCell(observation_dim={self.observation_dim}, "
                f"observation_noise={self.observation_noise!r}) expects inputs with "
                f"{self.input_dim} features ({mode}); received input shape {tuple(input_shape)}."
            )
        s, l_ = self.state_dim, self.observation_dim
        self.transition = self.add_weight(
            shape=(s, s), name="transition", dtype="float32",
            initializer=TransitionInitializer(self.initial_spectral_radius, 0.1, self.seed),
        )
        self.offset = self.add_weight(shape=(s,), name="offset", dtype="float32",
                                      initializer="zeros")
        if self.observation_matrix == "learned":
            self.observation = self.add_weight(shape=(l_, s), name="observation", dtype="float32",
                                               initializer="identity")
        self.log_process_var = self.add_weight(
            shape=(s,), name="log_process_var", dtype="float32",
            initializer=keras.initializers.Constant(math.log(self.process_noise_init)),
        )
        if self.observation_noise == "learned":
            self.log_observation_var = self.add_weight(
                shape=(l_,), name="log_observation_var", dtype="float32",
                initializer=keras.initializers.Constant(math.log(self.observation_noise_init)),
            )
        if self.learn_noise_scale:
            self.log_noise_scale = self.add_weight(shape=(), name="log_noise_scale",
                                                   dtype="float32", initializer="zeros")
        if self.innovation_history:
            self._innovation_hidden.build((None, self.innovation_history * l_))
            self._innovation_out.build((None, self.innovation_units))

    # ---- pieces of the recursion (also used by KalmanFilter.rollout) --------------------

    def observation_matrix_value(self):
        """``D`` as a float32 ``(L, S)`` tensor."""
        if self.observation_matrix == "learned":
            return ops.convert_to_tensor(self.observation)
        return ops.eye(self.observation_dim, self.state_dim, dtype="float32")

    def _noise_scale(self):
        if self.learn_noise_scale:
            return ops.exp(self.log_noise_scale)
        return ops.convert_to_tensor(1.0, "float32")

    def _process_var(self, history):
        q = ops.exp(self.log_process_var)
        if self.innovation_history:
            hidden = self._innovation_hidden(history)
            q = q + ops.softplus(self._innovation_out(hidden))
        return q * self._noise_scale()

    def _observation_var(self, log_var=None):
        if self.observation_noise == "input":
            clip = self.log_variance_clip
            r = ops.exp(ops.clip(log_var, -clip, clip))
        elif self.observation_noise == "learned":
            r = ops.exp(self.log_observation_var)
        else:
            r = ops.full((self.observation_dim,), self.observation_noise_init, dtype="float32")
        return r * self._noise_scale()

    def predict_step(self, mean, cov, history=None):
        """Predict: ``h⁻ = A (h - b) + b``, ``P⁻ = A P Aᵀ + Σ_A``. ``cov``: (B, S, S)."""
        a = ops.convert_to_tensor(self.transition)
        b = ops.convert_to_tensor(self.offset)
        prior_mean = ops.matmul(mean - b, ops.transpose(a)) + b
        q = self._process_var(history)
        prior_cov = _sym(ops.einsum("ij,bjk,lk->bil", a, cov, a))
        prior_cov = prior_cov + ops.expand_dims(q, -1) * ops.eye(self.state_dim, dtype="float32")
        return prior_mean, prior_cov

    def observe_step(self, prior_mean, prior_cov, obs_var):
        """``ẑ = D h⁻``, ``S = D P⁻ Dᵀ + Σ_D (+ jitter I)`` and its Cholesky factor."""
        d = self.observation_matrix_value()
        pred = ops.matmul(prior_mean, ops.transpose(d))
        dp = ops.einsum("ls,bsk->blk", d, prior_cov)
        s_mat = _sym(ops.einsum("blk,mk->blm", dp, d))
        eye = ops.eye(self.observation_dim, dtype="float32")
        s_mat = s_mat + ops.expand_dims(obs_var + self.jitter, -1) * eye
        return pred, s_mat, dp

    def call(self, inputs, states, training=None):
        s, l_ = self.state_dim, self.observation_dim
        x = ops.cast(inputs, "float32")
        z = x[:, :l_]
        log_var = x[:, l_:] if self.observation_noise == "input" else None
        mean = ops.cast(states[0], "float32")
        cov = ops.reshape(ops.cast(states[1], "float32"), (-1, s, s))
        history = ops.cast(states[2], "float32") if self.innovation_history else None

        prior_mean, prior_cov = self.predict_step(mean, cov, history)
        r = self._observation_var(log_var)
        pred, s_mat, dp = self.observe_step(prior_mean, prior_cov, r)
        chol = ops.linalg.cholesky(s_mat)

        # K^T = S^{-1} D P⁻  (P⁻ symmetric), by two triangular solves.
        kt = ops.linalg.solve_triangular(
            ops.swapaxes(chol, -1, -2),
            ops.linalg.solve_triangular(chol, dp, lower=True),
            lower=False,
        )
        gain = ops.swapaxes(kt, -1, -2)  # (B, S, L)
        innovation = z - pred
        post_mean = prior_mean + ops.einsum("bls,bl->bs", kt, innovation)
        d = self.observation_matrix_value()
        ikd = ops.eye(s, dtype="float32") - ops.einsum("bsl,lk->bsk", gain, d)
        r_row = ops.expand_dims(r, -2)  # (1, L) or (B, 1, L)
        post_cov = ops.einsum("bij,bjk,blk->bil", ikd, prior_cov, ikd)
        post_cov = _sym(post_cov + ops.einsum("bil,bjl->bij", gain * r_row, gain))

        target = ops.stop_gradient(z) if self.stop_gradient_targets else z
        e_loss = target - pred
        white = ops.linalg.solve_triangular(chol, ops.expand_dims(e_loss, -1), lower=True)
        quad = ops.sum(ops.square(white[..., 0]), axis=-1)
        logdet = 2.0 * ops.sum(ops.log(ops.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        nll = 0.5 * quad + 0.5 * logdet
        if self.include_constant:
            nll = nll + 0.5 * l_ * _LOG_2PI

        pieces = [pred, ops.expand_dims(nll, -1), post_mean]
        if self.output_covariances:
            pieces += [ops.reshape(s_mat, (-1, l_ * l_)), ops.reshape(post_cov, (-1, s * s))]
        output = ops.concatenate(pieces, axis=-1)
        new_states = [post_mean, ops.reshape(post_cov, (-1, s * s))]
        if self.innovation_history:
            new_states.append(ops.concatenate([history[:, l_:], innovation], axis=-1))
        return output, new_states

    def variable_groups(self):
        """Trainable variables by learning-rate group (LDM_SPEC §4).

        ``{"dynamics": [A, b, D?, log σ²_A, log r?, s?], "noise_network": [innovation
        network weights]}``. The reference trains the dynamics at 100× and the noise
        networks at 10× the encoder's learning rate; a model can scale gradients per
        group.

        Example:
            >>> groups = cell.variable_groups()
            >>> multipliers = {id(v): 100.0 for v in groups["dynamics"]}
        """
        network = []
        if self.innovation_history:
            network = (list(self._innovation_hidden.trainable_variables)
                       + list(self._innovation_out.trainable_variables))
        ids = {id(v) for v in network}
        dynamics = [v for v in self.trainable_variables if id(v) not in ids]
        return {"dynamics": dynamics, "noise_network": network}

    # ---- stability ----------------------------------------------------------------------

    def clamp_spectral_radius(self, max_radius=1.02, iterations=20):
        """Rescale ``A`` in place so that ``ρ(A) ≤ max_radius`` (no gradient).

        ``A ← A · min(1, max_radius / ρ(A))`` with ``ρ`` from :func:`spectral_radius`.
        The reference clamps at 1.02 after every optimizer step. Returns the radius
        before clamping.

        Example:
            >>> optimizer.apply(grads, model.trainable_variables)
            >>> cell.clamp_spectral_radius(1.02)
        """
        max_radius = check_positive(max_radius, "max_radius")
        a = ops.stop_gradient(ops.convert_to_tensor(self.transition))
        rho = spectral_radius(a, iterations)
        factor = ops.minimum(1.0, max_radius / ops.maximum(rho, 1e-30))
        self.transition.assign(a * factor)
        return rho

    def get_config(self):
        config = super().get_config()
        config.update({
            "state_dim": self.state_dim,
            "observation_dim": self.observation_dim,
            "observation_matrix": self.observation_matrix,
            "observation_noise": self.observation_noise,
            "observation_noise_init": self.observation_noise_init,
            "process_noise_init": self.process_noise_init,
            "learn_noise_scale": self.learn_noise_scale,
            "innovation_history": self.innovation_history,
            "innovation_units": self.innovation_units,
            "stop_gradient_targets": self.stop_gradient_targets,
            "include_constant": self.include_constant,
            "output_covariances": self.output_covariances,
            "jitter": self.jitter,
            "log_variance_clip": self.log_variance_clip,
            "initial_spectral_radius": self.initial_spectral_radius,
            "seed": self.seed,
        })
        return config


@register
class KalmanFilter(keras.layers.Layer):
    """Run a :class:`KalmanCell` over sequences and return named outputs.

    Wraps the cell in ``keras.layers.RNN(return_sequences=True)``, starts from
    ``h₀ = 0``, ``P₀ = I`` (or a given ``initial_mean`` / ``initial_cov``), and splits the
    cell's flat per-step output into a dict::

        "prediction"      (B, T, L)     ẑ_t = D h⁻_t, the prediction of z_t from z_<t
        "prediction_cov"  (B, T, L, L)  S_t = D P⁻_t Dᵀ + Σ_D         (return_covariances)
        "nll"             (B, T)        ½ eᵀ S_t⁻¹ e + ½ log det S_t  (see KalmanCell)
        "state_mean"      (B, T, S)     filtered h_t
        "state_cov"       (B, T, S, S)  filtered P_t                  (return_covariances)

    The LDM alignment loss is ``sum_t mean_batch nll``. Everything is float32 under any
    dtype policy. Inputs are ``z`` of shape ``(B, T, L)``, or ``concatenate([z, log_var])``
    of shape ``(B, T, 2L)`` when the cell's ``observation_noise="input"``. Masking is
    not supported.

    Args:
        cell: a :class:`KalmanCell`, a dict of its constructor arguments, or its
            serialised config.
        return_covariances: also return ``prediction_cov`` and ``state_cov`` (this sets
            the cell's ``output_covariances``, so a cell belongs to one filter; ``False``
            saves ``T·(L² + S²)`` floats per sequence).
        check_finite: raise a ``ValueError`` on NaN/inf inputs when they can be checked
            eagerly (costs one device-to-host copy of a boolean per call).
        unroll: unroll the time loop (short sequences only).

    Example:
        >>> kf = KalmanFilter(KalmanCell(state_dim=2))
        >>> out = kf(z)                                   # z: (batch, time, 2)
        >>> loss = keras.ops.sum(keras.ops.mean(out["nll"], axis=0))
        >>> future = kf.rollout(out["state_mean"][:, -1], out["state_cov"][:, -1], steps=10)
    """

    def __init__(self, cell, return_covariances=True, check_finite=True, unroll=False, **kwargs):
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
        self._rnn = keras.layers.RNN(
            cell, return_sequences=True, unroll=self.unroll, dtype="float32", name="kalman_rnn"
        )

    @property
    def state_dim(self):
        return self.cell.state_dim

    @property
    def observation_dim(self):
        return self.cell.observation_dim

    @property
    def transition_matrix(self):
        """The learned transition matrix ``A`` (an ``(S, S)`` tensor)."""
        return ops.convert_to_tensor(self.cell.transition)

    def rotation_per_step(self):
        """Angles (radians) of the eigenvalues of ``A``, sorted in descending order.

        For 2-d rotational dynamics ``A ≈ r·R(θ)`` this is ``[θ, -θ]``: the learned
        rotation per step. Returns a NumPy array (see
        :func:`ldm_keras.evaluation.dynamics.rotation_per_step`).
        """
        from ..evaluation.dynamics import rotation_per_step

        return rotation_per_step(ops.convert_to_numpy(self.transition_matrix))

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
        if shape[2] is not None and int(shape[2]) != self.cell.input_dim:
            raise ValueError(
                f"KalmanFilter with observation_dim={self.cell.observation_dim} and "
                f"observation_noise={self.cell.observation_noise!r} expects "
                f"{self.cell.input_dim} features; received shape {tuple(shape)}."
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

    # ---- Keras plumbing -------------------------------------------------------------

    def build(self, input_shape):
        self._check_inputs(tuple(input_shape))
        if not self._rnn.built:
            self._rnn.build(tuple(input_shape))
            self._rnn.built = True

    def _output_shapes(self, input_shape):
        b, t = input_shape[0], input_shape[1]
        s, l_ = self.state_dim, self.observation_dim
        shapes = {"prediction": (b, t, l_), "nll": (b, t), "state_mean": (b, t, s)}
        if self.return_covariances:
            shapes["prediction_cov"] = (b, t, l_, l_)
            shapes["state_cov"] = (b, t, s, s)
        return shapes

    def compute_output_shape(self, input_shape, initial_mean_shape=None, initial_cov_shape=None):
        self._check_inputs(tuple(input_shape))
        return self._output_shapes(tuple(input_shape))

    def compute_output_spec(self, inputs, initial_mean=None, initial_cov=None, training=None):
        shape = tuple(inputs.shape)
        self._check_inputs(shape)
        self._check_initial(initial_mean, initial_cov)
        return {k: keras.KerasTensor(v, dtype="float32")
                for k, v in self._output_shapes(shape).items()}

    def _initial_states(self, x, initial_mean, initial_cov):
        s = self.state_dim
        zero = ops.zeros_like(x[:, 0, :1])  # (B, 1): follows a symbolic batch size
        if initial_mean is None:
            mean = zero + ops.zeros((s,), "float32")
        else:
            mean = ops.cast(initial_mean, "float32")
        if initial_cov is None:
            cov = zero + ops.reshape(ops.eye(s, dtype="float32"), (s * s,))
        else:
            cov = ops.reshape(ops.cast(initial_cov, "float32"), (-1, s * s))
        states = [mean, cov]
        if self.cell.innovation_history:
            states.append(zero + ops.zeros((self.cell.state_size[2],), "float32"))
        return states

    def _split(self, flat):
        s, l_ = self.state_dim, self.observation_dim
        t = flat.shape[1] if flat.shape[1] is not None else ops.shape(flat)[1]
        out = {
            "prediction": flat[..., :l_],
            "nll": flat[..., l_],
            "state_mean": flat[..., l_ + 1:l_ + 1 + s],
        }
        if self.return_covariances:
            o = l_ + 1 + s
            out["prediction_cov"] = ops.reshape(flat[..., o:o + l_ * l_], (-1, t, l_, l_))
            o += l_ * l_
            out["state_cov"] = ops.reshape(flat[..., o:o + s * s], (-1, t, s, s))
        return out

    def call(self, inputs, initial_mean=None, initial_cov=None, training=None):
        x = ops.cast(inputs, "float32")
        self._check_inputs(static_shape(x))
        self._check_initial(initial_mean, initial_cov)
        if self.check_finite:
            check_finite(x, "inputs")
        states = self._initial_states(x, initial_mean, initial_cov)
        flat = self._rnn(x, initial_state=states, training=training)
        return self._split(ops.cast(flat, "float32"))

    # ---- open-loop prediction -------------------------------------------------------

    def rollout(self, initial_mean, initial_cov, steps, observation_log_var=None,
                innovation_history=None):
        """Open-loop prediction: iterate the predict step ``steps`` times, no updates.

        From the posterior ``(h, P)`` (e.g. the last filtered state), for ``j = 1..steps``::

            h_j = A (h_{j-1} - b) + b,   P_j = A P_{j-1} Aᵀ + Σ_A
            ẑ_j = D h_j,                 S_j = D P_j Dᵀ + Σ_D

        With an innovation network the innovation history starts at
        ``innovation_history`` (default zeros; shape ``(B, k·L)``, oldest first) and is
        shifted with zeros, the expected innovation of an unobserved step. In
        ``"input"`` noise mode, ``observation_log_var`` (``(B, steps, L)``) is required.

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
        })
        return config
