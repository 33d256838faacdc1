"""``KalmanCell``: the parameters of the linear-Gaussian latent model and one filter step.

Long module: one layer whose options (observation matrix and noise modes, innovation
network, discrete or continuous dynamics, covariance update) each need their weights,
their validation and their documented formula in one place.
"""

import math

import keras
import numpy as np
from keras import ops

from .._math import LOG_2PI
from .._serialization import register
from .._validation import check_angle, check_choice, check_int, check_positive
from . import _layout
from . import _linalg as la
from ._recursion import batched_step, is_eager
from .transition import TransitionInitializer, rotation_angles, spectral_radius


@register
class KalmanCell(keras.layers.Layer):
    """One step of a linear-Gaussian Kalman filter, as a Keras RNN cell.

    Model (state ``h ∈ R^S``, observation ``z ∈ R^L``; docs/spec.md §4)::

        h_t = A (h_{t-1} - b) + b + η,   η ~ N(0, Σ_A)
        z_t = D h_t + ε,                 ε ~ N(0, Σ_D)

    One call does the predict and update steps on a batch::

        predict:  h⁻ = A (h - b) + b            P⁻ = A P Aᵀ + Σ_A
                  ẑ  = D h⁻                     S_t = D P⁻ Dᵀ + Σ_D
        update:   e  = z_t - ẑ                  K = P⁻ Dᵀ S_t⁻¹
                  h  = h⁻ + K e                 P = (I - K D) P⁻ (I - K D)ᵀ + K Σ_D Kᵀ
        start:    h₀ = 0, P₀ = I                (the posterior "at t = 0")

    (``covariance_update="standard"``: ``P = P⁻ - K S_t Kᵀ`` instead of Joseph's form).
    The per-step negative log-likelihood of the innovation is::

        nll_t = ½ e_lossᵀ S_t⁻¹ e_loss + ½ log det S_t  (+ L/2 · log 2π if include_constant)

    with ``e_loss = stop_gradient(z_t) - ẑ_t`` when ``stop_gradient_targets=True`` (the
    stop-gradient version of LDM: gradients reach the encoder through the past, via
    ``ẑ``, and through a per-frame ``Σ_D``), or ``e_loss = z_t - ẑ_t`` otherwise. The
    state update always uses the real ``z_t``.

    Parameters:

    * ``A`` (``transition``, S×S): learnable, initialised by
      :class:`TransitionInitializer` (``I + 0.1·N(0,1)`` scaled to spectral radius
      ``initial_spectral_radius``, or with ``initial_rotation=φ`` rotations of the state
      pairs by spread angles up to ``φ`` per step at that radius). Call
      :meth:`clamp_spectral_radius` after each optimizer step to keep the dynamics
      stable.
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

    **Continuous time** (``dynamics="continuous"``), for irregularly sampled frames: the
    state follows ``dh = F (h - b) dt + dW`` with a learnable drift ``F`` (``drift``,
    S×S, initialised to ``A₀ - I`` with ``A₀`` from :class:`TransitionInitializer`) and
    diffusion ``Q_c = exp(s) · diag(exp(log σ²_A))``. Over a gap ``Δt_t`` between frames
    ``t-1`` and ``t``, ``A_t = e^{F Δt_t}`` and ``Σ_A,t = ∫₀^{Δt_t} e^{Fs} Q_c e^{Fᵀs} ds``
    (Van Loan's method, one ``2S × 2S`` matrix exponential; see
    :func:`~ldm_keras.predictors._linalg.van_loan`). The gaps are an input: the cell's
    input ends with one column ``Δt_t`` (``KalmanFilter(...)(z, dt=…)`` adds it). With
    every ``Δt = 1`` the model is the discrete one with ``A = e^F`` and that ``Σ_A``.
    The innovation network is not available in continuous time.

    States (all flat, as Keras' RNN wants them): ``[h (S), vec(P) (S·S)]`` plus
    ``[e_{t-k}, …, e_{t-1}] (k·L)`` when ``innovation_history = k > 0`` (oldest first).
    :meth:`get_initial_state` gives ``h₀ = 0``, ``P₀ = I`` and a zero history.

    Output per step: one flat float32 vector (Keras 3's RNN wants a single tensor),
    laid out as::

        [ ẑ (L) | nll (1) | h (S) | vec(S_t) (L·L) | vec(P) (S·S) ]

    where the two covariance blocks are present only with ``output_covariances=True``;
    :meth:`unpack_output` splits it into named outputs. ``h`` and ``P`` are the filtered
    (posterior) mean and covariance after seeing ``z_t``; ``ẑ`` and ``S_t`` the
    prediction of ``z_t`` from ``z_{<t}`` and its covariance.

    Numerics: float32 whatever the dtype policy (the ``dtype`` argument is ignored);
    one Cholesky factorisation of ``S_t`` per step and its triangular inverse, never a
    general inverse; ``P⁻`` and ``P`` are symmetrised; ``jitter`` (default 1e-6) is
    added to the diagonal of ``S_t`` before factorising it.

    Args:
        state_dim: ``S``.
        observation_dim: ``L`` (default ``S``).
        observation_matrix: ``"fixed"`` or ``"learned"``.
        observation_noise: ``"fixed"``, ``"learned"`` or ``"input"``.
        observation_noise_init: observation noise variance (fixed value or initial value).
        process_noise_init: initial process noise variance ``σ²_A`` (or diffusion rate).
        learn_noise_scale: learn the shared log-scale ``s``.
        innovation_history: ``k ≥ 0``; 0 disables the innovation network.
        innovation_units: hidden width of the innovation network.
        stop_gradient_targets: stop the gradient of the target in the NLL (see above).
        include_constant: add ``L/2 · log 2π`` to the NLL (exact Gaussian log density).
        output_covariances: emit ``S_t`` and ``P`` (set by :class:`KalmanFilter`).
        jitter: added to the diagonal of ``S_t``.
        log_variance_clip: clip of a supplied ``log_var_t`` (``"input"`` mode).
        initial_spectral_radius: spectral radius of the initial ``A`` (``A₀``).
        seed: seed of the initial ``A``.
        dynamics: ``"discrete"`` or ``"continuous"`` (see above).
        covariance_update: ``"joseph"`` (default, stays positive semi-definite under
            rounding) or ``"standard"``.
        initial_rotation: ``None`` (``A₀ = I + 0.1·N(0,1)`` rescaled) or the largest
            rotation angle ``φ`` (radians per step, in ``(0, π]``) of a block-diagonal
            ``A₀`` whose state pairs rotate by ``(k + 1)/⌊S/2⌋ · φ``
            (:func:`~ldm_keras.predictors.transition.rotation_blocks`, at radius
            ``initial_spectral_radius``); in continuous time the drift starts at its
            matrix logarithm (``log ρ₀ · I`` plus the blocks' generators).

    Example:
        >>> cell = KalmanCell(state_dim=2, observation_dim=2)
        >>> rnn = keras.layers.RNN(cell, return_sequences=True)
        >>> flat = rnn(z)                       # z: (batch, time, 2) -> (batch, time, 13)
        >>> out = cell.unpack_output(flat)      # dict: prediction, nll, state_mean, ...
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
        dynamics="discrete",
        covariance_update="joseph",
        initial_rotation=None,
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
        self.initial_rotation = check_angle(initial_rotation, "initial_rotation")
        self.dynamics = check_choice(dynamics, "dynamics", {"discrete", "continuous"})
        self.covariance_update = check_choice(covariance_update, "covariance_update",
                                              {"joseph", "standard"})
        if self.dynamics == "continuous" and self.innovation_history:
            raise ValueError(
                "dynamics='continuous' does not support the innovation network; received "
                f"innovation_history={self.innovation_history} (use 0).")
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
    def continuous(self):
        return self.dynamics == "continuous"

    @property
    def state_size(self):
        sizes = [self.state_dim, self.state_dim * self.state_dim]
        if self.innovation_history:
            sizes.append(self.innovation_history * self.observation_dim)
        return sizes

    @property
    def output_size(self):
        return _layout.width(self.state_dim, self.observation_dim, self.output_covariances)

    @property
    def observation_width(self):
        """Features of the observations: ``L``, or ``2L`` in ``"input"`` noise mode."""
        return self.observation_dim * (2 if self.observation_noise == "input" else 1)

    @property
    def input_dim(self):
        """Width of the cell's input: ``L`` (``2L`` in ``"input"`` noise mode), plus one
        column ``Δt`` in continuous time."""
        return self.observation_width + (1 if self.continuous else 0)

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
            if self.continuous:
                mode += ", then one column Δt"
            raise ValueError(
                f"KalmanCell(observation_dim={self.observation_dim}, "
                f"observation_noise={self.observation_noise!r}, dynamics={self.dynamics!r}) "
                f"expects inputs with {self.input_dim} features ({mode}); received input "
                f"shape {tuple(input_shape)}."
            )
        s, l_ = self.state_dim, self.observation_dim
        if self.continuous:
            self.drift = self.add_weight(
                shape=(s, s), name="drift", dtype="float32",
                initializer=_DriftInitializer(self.initial_spectral_radius, self.seed,
                                              self.initial_rotation),
            )
        else:
            self.transition = self.add_weight(
                shape=(s, s), name="transition", dtype="float32",
                initializer=TransitionInitializer(self.initial_spectral_radius, 0.1, self.seed,
                                                  self.initial_rotation),
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

    # ---- the parameters as tensors ------------------------------------------------------

    def observation_matrix_value(self):
        """``D`` as a float32 ``(L, S)`` tensor."""
        if self.observation_matrix == "learned":
            return ops.convert_to_tensor(self.observation)
        return ops.eye(self.observation_dim, self.state_dim, dtype="float32")

    def transition_value(self):
        """``A`` (``(S, S)``); in continuous time ``e^F``, the transition over ``Δt = 1``."""
        if self.continuous:
            return la.expm(ops.convert_to_tensor(self.drift))
        return ops.convert_to_tensor(self.transition)

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

    def process_cov(self, history=None):
        """``Σ_A`` as a full matrix: ``(S, S)``, or ``(B, S, S)`` with the innovation network."""
        q = self._process_var(history)
        return ops.expand_dims(q, -1) * ops.eye(self.state_dim, dtype="float32")

    def _observation_var(self, log_var=None):
        if self.observation_noise == "input":
            clip = self.log_variance_clip
            r = ops.exp(ops.clip(log_var, -clip, clip))
        elif self.observation_noise == "learned":
            r = ops.exp(self.log_observation_var)
        else:
            r = ops.full((self.observation_dim,), self.observation_noise_init, dtype="float32")
        return r * self._noise_scale()

    def discretize(self, dt):
        """Continuous time: ``(A_t, Σ_A,t)`` for gaps ``dt`` of any shape ``(...)``.

        ``A = e^{F Δt}``, ``Σ_A = ∫₀^{Δt} e^{Fs} Q_c e^{Fᵀs} ds`` (Van Loan); each
        ``(..., S, S)``.

        Example:
            >>> a, q = cell.discretize(keras.ops.array([0.5, 1.0, 2.0]))
        """
        if not self.continuous:
            raise ValueError("`discretize` needs a cell with dynamics='continuous'; this one "
                             "is discrete.")
        diffusion = ops.exp(self.log_process_var) * self._noise_scale()
        qc = ops.expand_dims(diffusion, -1) * ops.eye(self.state_dim, dtype="float32")
        return la.van_loan(ops.convert_to_tensor(self.drift), qc, dt)

    def step_params(self):
        """The parameters of :func:`~ldm_keras.predictors._recursion.batched_step`."""
        return {
            "a": self.transition_value(),
            "b": ops.convert_to_tensor(self.offset),
            "d": self.observation_matrix_value(),
            "q_fn": self.process_cov,
            "r_fn": self._observation_var,
            "jitter": self.jitter,
            "joseph": self.covariance_update == "joseph",
            "stop_gradient_targets": self.stop_gradient_targets,
        }

    # ---- pieces of the recursion (also used by KalmanFilter.rollout) --------------------

    def predict_step(self, mean, cov, history=None, transition=None, process_cov=None):
        """Predict: ``h⁻ = A (h - b) + b``, ``P⁻ = A P Aᵀ + Σ_A``. ``cov``: (B, S, S).

        ``transition`` / ``process_cov`` override ``A`` / ``Σ_A`` (continuous time).
        """
        a = self.transition_value() if transition is None else transition
        b = ops.convert_to_tensor(self.offset)
        q = self.process_cov(history) if process_cov is None else process_cov
        if len(a.shape) == 3:
            prior_mean = ops.einsum("bi,bji->bj", mean - b, a) + b
            prior_cov = la.sym(ops.einsum("bij,bjk,blk->bil", a, cov, a))
        else:
            prior_mean = ops.matmul(mean - b, ops.transpose(a)) + b
            prior_cov = la.sym(ops.einsum("ij,bjk,lk->bil", a, cov, a))
        return prior_mean, prior_cov + q

    def observe_step(self, prior_mean, prior_cov, obs_var):
        """``ẑ = D h⁻``, ``S = D P⁻ Dᵀ + Σ_D (+ jitter I)`` (and ``D P⁻``)."""
        d = self.observation_matrix_value()
        pred = ops.matmul(prior_mean, ops.transpose(d))
        dp = ops.einsum("ls,bsk->blk", d, prior_cov)
        s_mat = la.sym(ops.einsum("blk,mk->blm", dp, d))
        eye = ops.eye(self.observation_dim, dtype="float32")
        s_mat = s_mat + ops.expand_dims(obs_var + self.jitter, -1) * eye
        return pred, s_mat, dp

    def nll_constant(self):
        """``L/2 · log 2π`` with ``include_constant``, else 0."""
        return 0.5 * self.observation_dim * LOG_2PI if self.include_constant else 0.0

    def call(self, inputs, states, training=None):
        s, l_ = self.state_dim, self.observation_dim
        x = ops.cast(inputs, "float32")
        xs = {"z": x[:, :l_]}
        if self.observation_noise == "input":
            xs["log_var"] = x[:, l_:2 * l_]
        mean = ops.cast(states[0], "float32")
        cov = ops.reshape(ops.cast(states[1], "float32"), (-1, s, s))
        history = ops.cast(states[2], "float32") if self.innovation_history else None
        params = self.step_params()
        if self.continuous:
            a, q = self.discretize(x[:, -1])
            xs["a"], xs["q"] = a, q
        (post_mean, post_cov, new_hist), out = batched_step((mean, cov, history), xs, params)
        pred, nll, _, s_mat, _, _, _ = out
        nll = nll + self.nll_constant()
        output = _layout.pack(pred, nll, post_mean,
                              s_mat if self.output_covariances else None,
                              post_cov if self.output_covariances else None)
        new_states = [post_mean, ops.reshape(post_cov, (-1, s * s))]
        if self.innovation_history:
            new_states.append(new_hist)
        return output, new_states

    def unpack_output(self, flat):
        """Split the flat output ``(…, output_size)`` into a dict (see the class docstring)."""
        return _layout.unpack(flat, self.state_dim, self.observation_dim,
                              self.output_covariances)

    def variable_groups(self):
        """Trainable variables by learning-rate group (docs/spec.md §4).

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
        """Rescale the dynamics in place so that ``ρ(A) ≤ max_radius`` (no gradient).

        Discrete: ``A ← A · min(1, max_radius / ρ(A))`` with ``ρ`` from
        :func:`spectral_radius` (``iterations`` squarings) inside a compiled step, and
        from the eigenvalues of a host copy (float64) when ``A`` is concrete (eager
        PyTorch; TensorFlow outside ``tf.function``). Continuous: ``ρ(e^F) = e^{α(F)}``
        with ``α`` the largest real part of an eigenvalue of ``F``, so
        ``F ← F - max(0, log ρ(e^F) - log max_radius) I`` bounds the growth over a unit
        of time. The reference clamps at
        1.02 after every optimizer step. Returns the radius before clamping.

        Example:
            >>> optimizer.apply(grads, model.trainable_variables)
            >>> cell.clamp_spectral_radius(1.02)
        """
        max_radius = check_positive(max_radius, "max_radius")
        if self.continuous:
            f = ops.stop_gradient(ops.convert_to_tensor(self.drift))
            rho = spectral_radius(la.expm(f), iterations)
            shift = ops.maximum(0.0, ops.log(ops.maximum(rho, 1e-30)) - math.log(max_radius))
            self.drift.assign(f - shift * ops.eye(self.state_dim, dtype="float32"))
            return rho
        a = ops.stop_gradient(ops.convert_to_tensor(self.transition))
        rho = _eager_or_traced_radius(a, iterations)
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
            "dynamics": self.dynamics,
            "covariance_update": self.covariance_update,
            "initial_rotation": self.initial_rotation,
        })
        return config


@register
class _DriftInitializer(keras.initializers.Initializer):
    """Initial drift ``F``: ``A₀ - I`` with ``A₀`` from :class:`TransitionInitializer`, or,
    with ``max_angle``, the matrix logarithm of the rotation blocks' ``A₀``.

    ``e^F ≈ A₀`` for a nearly identity ``A₀``; every eigenvalue of ``F`` has a negative
    real part when ``ρ(A₀) < 1``. For rotations ``e^F = A₀`` exactly:
    ``F = log ρ₀ · I + blockdiag(φ_k [[0, -1], [1, 0]])``.
    """

    def __init__(self, spectral_radius=1.0 / 1.1, seed=None, max_angle=None):
        self.spectral_radius = spectral_radius
        self.seed = seed
        self.max_angle = max_angle

    def __call__(self, shape, dtype=None):
        n = int(shape[0])
        if self.max_angle is not None:
            f = math.log(self.spectral_radius) * np.eye(n)
            for k, phi in enumerate(rotation_angles(n, self.max_angle)):
                f[2 * k + 1, 2 * k], f[2 * k, 2 * k + 1] = phi, -phi
            return ops.convert_to_tensor(f.astype(dtype or "float32"))
        a = TransitionInitializer(self.spectral_radius, 0.1, self.seed)(shape, "float32")
        return ops.cast(a - ops.eye(n, dtype="float32"), dtype or "float32")

    def get_config(self):
        return {"spectral_radius": self.spectral_radius, "seed": self.seed,
                "max_angle": self.max_angle}


def _eager_or_traced_radius(a, iterations):
    """``ρ(A)``: from the eigenvalues of a host copy (float64) when ``a`` is concrete
    (eager PyTorch, TensorFlow outside ``tf.function``: one copy instead of the ~60
    small operations of :func:`spectral_radius`, 1.9 ms of an eager PyTorch Kalman
    step at B = 32, S = 2), else by :func:`spectral_radius`. A non-finite ``a`` gives
    NaN (the clamped ``A`` is then non-finite, and a guarded step is skipped)."""
    if not is_eager(a):
        return spectral_radius(a, iterations)
    return ops.convert_to_tensor(np.float32(la.host_spectral_radius(la.to_host(a))))
