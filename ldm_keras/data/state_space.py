"""Synthetic nonlinear state-space data for the identifiability study (docs/spec.md §7).

Latents follow a Markov process with Gaussian transition noise and are observed through a
random injective smooth mixing:

    s_t = μ(s_{t-1}) + ε_t,     ε_t ~ N(0, noise_std² · I_dim),     x_t = g(s_t).

A predictive LDM model trained on ``x`` should recover ``s`` up to an affine map
``z = M s + c``; score it with the R² of an affine read-out of ``s`` from ``z``.

**Dynamics μ** (``dt`` = 0.1; ``s = (q, v)`` = positions then velocities for the
oscillators; every system is stochastically bounded and stationary for any noise level —
the nonlinear forces grow at most linearly, so the symplectic-Euler step stays stable and
damping balances the injected noise; see :func:`make_system`):

* ``"oscillator"`` — damped Duffing-type oscillators (``dim = 2``: one; ``dim = 4``: two,
  natural frequencies ω = (1, 1.6), coupled by ``κ tanh(q₂ - q₁)``):
  ``q' = q + dt·v``, ``v' = v + dt·(-ω² q' - β q'³/(1 + q'²) - γ v + coupling)``,
  β = 2, γ = 0.3, κ = 0.5.
* ``"double-well"`` — damped particle(s) in the double well with minima at ±1:
  ``v' = v + dt·(q' - (1 + c) q'³/(1 + c q'²) - γ v + coupling)``, c = 0.25, γ = 0.5.
* ``"rotation"`` — a nonlinear rotation in each plane of 2 coordinates (``dim`` even):
  ``s_p' = exp(κ(1 - r_p²)) · R(ω_p + c · r_o²) s_p`` with ω = (0.3, 0.5), c = 0.05,
  κ = 0.1, ``r_p = |s_p|`` and ``r_o`` the radius of the other plane (of the same plane
  when ``dim = 2``): amplitude-dependent speeds and attraction to the unit circle. The
  radial map ``r ↦ r exp(κ(1 - r²))`` is bounded by ``1/√(2κ) · exp(κ - 1/2)``.

Initial states are ``N(0, I)`` followed by ``burn_in`` (default 200) discarded steps, so
sequences start near the stationary distribution.

**Mixing g** (:class:`RandomMixing`): ``mixing_layers`` square leaky-tanh layers in the
latent space, padded up to ``obs_dim`` by a random full-column-rank embedding, and one
last coordinate-wise leaky-tanh in the observation space,

    h₀ = s,   h_l = σ(W_l h_{l-1} + b_l)  (l = 1…L),   x = σ(E h_L + c),
    σ(u) = tanh(u) + α u,

with ``W_l = U_l diag(d_l) V_lᵀ`` (random orthogonal ``dim × dim`` ``U_l, V_l``, singular
values ``d_l ~ Uniform(1.5, 3)``: condition number ≤ 2), ``b_l, c ~ N(0, 0.5²)``,
``E = 1.5 √(obs_dim/dim) · Q`` (``Q`` the orthonormal ``obs_dim × dim`` factor of a
Gaussian matrix: all singular values equal) and α = 0.3. The warping happens in the
latent space (so a linear read-out of ``s`` from ``x`` is clearly imperfect: R² ≈ 0.91
for the ``nonlinear-2d`` preset, ≈ 0.80 for ``nonlinear-4d``), and the last σ bends the
image out of the linear span of ``E``. The constants keep g moderately conditioned on the
data (median Jacobian condition number ≈ 6 for ``nonlinear-2d``, ≈ 16 for ``nonlinear-4d``),
so a nonlinear encoder can undo it.

g is injective because each piece is: each ``W_l`` is invertible, ``E`` has full column
rank (``E h = E h'`` ⇒ ``h = h'``), and σ is strictly increasing (σ' = 1 - tanh² + α ≥ α
> 0), so it is a bijection of ℝ applied coordinate-wise. Quantitatively,
``|g(s) - g(s')| ≥ L · |s - s'|`` with ``L = α σ_min(E) · Π_l α σ_min(W_l) > 0``
(:meth:`RandomMixing.lower_lipschitz_bound`), and the Jacobian
``J = D_out E D_L W_L ⋯ D_1 W_1`` (``D`` diagonal, entries ≥ α) has full column rank
everywhere. g is smooth (C^∞) and drawn from ``mixing_seed`` alone.

**Seeds.** ``seed`` draws the initial states and the transition noise; ``mixing_seed``
draws g. g is part of the data-generating process, so the presets (:func:`load`) use the
same ``mixing_seed`` for the train and test splits and distinct ``seed`` s.

Example:
    >>> from ldm_keras.data import state_space
    >>> d = state_space.generate("oscillator", dim=2, num_sequences=4, length=50, seed=0)
    >>> d.latents.shape, d.observations.shape
    ((4, 50, 2), (4, 50, 20))
    >>> train, test = state_space.load("nonlinear-2d", "train"), state_space.load("nonlinear-2d", "test")
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._validation import check_choice, check_int, check_positive
from ._presets import FieldAccess, load_preset

__all__ = [
    "PRESETS",
    "SYSTEMS",
    "RandomMixing",
    "StateSpaceData",
    "StateSpaceSystem",
    "generate",
    "load",
    "make_system",
]

SYSTEMS = ("oscillator", "double-well", "rotation")
_SYSTEM_DIMS = {"oscillator": (2, 4), "double-well": (2, 4), "rotation": "even"}
MIN_OBS_DIM = 20


@dataclasses.dataclass(frozen=True)
class StateSpaceSystem:
    """The deterministic part ``μ`` of a latent transition ``s_t = μ(s_{t-1}) + ε_t``.

    Built by :func:`make_system`; ``step(s)`` maps an array ``(..., dim)`` to the next
    mean state (float64).

    Example:
        >>> make_system("rotation", dim=2).step(np.array([1.0, 0.0])).round(3)
        array([0.939, 0.343])
    """

    name: str
    dim: int
    dt: float = 0.1

    def step(self, s):
        """``μ(s)`` for states of shape ``(..., dim)``."""
        s = np.asarray(s, dtype=np.float64)
        if s.shape[-1:] != (self.dim,):
            raise ValueError(
                f"`s` must have a last axis of size dim={self.dim}; received shape {s.shape}."
            )
        if self.name == "rotation":
            return _rotation_step(s)
        return _oscillator_step(s, self.dt, double_well=self.name == "double-well")

    __call__ = step


def _oscillator_step(s, dt, double_well):
    d = s.shape[-1] // 2
    q, v = s[..., :d], s[..., d:]
    q_new = q + dt * v
    if double_well:
        c, damping = 0.25, 0.5
        force = q_new - (1.0 + c) * q_new**3 / (1.0 + c * q_new**2) - damping * v
    else:
        omega = np.array([1.0, 1.6])[:d]
        beta, damping = 2.0, 0.3
        force = -(omega**2) * q_new - beta * q_new**3 / (1.0 + q_new**2) - damping * v
    if d == 2:
        pull = 0.5 * np.tanh(q_new[..., 1] - q_new[..., 0])
        force = force + np.stack([pull, -pull], axis=-1)
    return np.concatenate([q_new, v + dt * force], axis=-1)


def _rotation_step(s):
    planes = s.reshape(s.shape[:-1] + (s.shape[-1] // 2, 2))
    r2 = np.sum(planes**2, axis=-1)  # (..., P)
    other = np.roll(r2, 1, axis=-1)  # radius of the neighbouring plane (itself if P = 1)
    base = 0.3 + 0.2 * np.arange(planes.shape[-2]) / max(planes.shape[-2] - 1, 1)
    angle = base + 0.05 * other
    c, sn = np.cos(angle), np.sin(angle)
    x, y = planes[..., 0], planes[..., 1]
    gain = np.exp(0.1 * (1.0 - r2))
    out = np.stack([gain * (c * x - sn * y), gain * (sn * x + c * y)], axis=-1)
    return out.reshape(s.shape)


def make_system(system="oscillator", dim=2, dt=0.1):
    """The transition mean ``μ`` of a named system (formulas in the module docstring).

    ``"oscillator"`` and ``"double-well"`` accept ``dim`` 2 or 4; ``"rotation"`` any even
    ``dim`` (plane ``p`` turns at ``0.3 + 0.2 p/(P-1)`` rad/step at zero radius).

    Example:
        >>> make_system("oscillator", dim=4).dim
        4
    """
    check_choice(system, "system", SYSTEMS)
    dim = check_int(dim, "dim", minimum=2)
    allowed = _SYSTEM_DIMS[system]
    if allowed == "even":
        if dim % 2:
            raise ValueError(f"`dim` must be even for system 'rotation'; received {dim}.")
    elif dim not in allowed:
        raise ValueError(f"`dim` must be one of {list(allowed)} for system {system!r}; received {dim}.")
    dt = check_positive(dt, "dt")
    return StateSpaceSystem(system, dim, dt)


def _random_orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class RandomMixing:
    """A random injective smooth MLP ``g: ℝ^dim → ℝ^obs_dim`` (module docstring: why injective).

    ``g(s) = σ(E σ(W_L ⋯ σ(W_1 s + b_1) ⋯ + b_L) + c)`` with ``σ(u) = tanh(u) + leak·u``,
    square well-conditioned ``W_l`` (dim × dim) and ``E`` (obs_dim × dim) of full column rank.

    Args:
        dim: latent dimension.
        obs_dim: observation dimension (≥ dim).
        layers: number of latent-space leaky-tanh layers (≥ 1).
        seed: seed of every weight.
        leak: slope α > 0 of the linear part of σ (the injectivity margin).

    Example:
        >>> g = RandomMixing(dim=2, obs_dim=20, layers=2, seed=0)
        >>> g(np.zeros((5, 2))).shape
        (5, 20)
        >>> g.lower_lipschitz_bound() > 0
        True
    """

    def __init__(self, dim, obs_dim=20, layers=2, seed=0, leak=0.3):
        self.dim = check_int(dim, "dim", minimum=1)
        self.obs_dim = check_int(obs_dim, "obs_dim", minimum=self.dim)
        self.layers = check_int(layers, "mixing_layers", minimum=1)
        self.leak = check_positive(leak, "leak")
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.weights, self.biases = [], []
        for _ in range(self.layers):
            u = _random_orthogonal(rng, self.dim)
            v = _random_orthogonal(rng, self.dim)
            d = rng.uniform(1.5, 3.0, size=self.dim)
            self.weights.append((u * d) @ v.T)
            self.biases.append(0.5 * rng.standard_normal(self.dim))
        q, _ = np.linalg.qr(rng.standard_normal((self.obs_dim, self.dim)))
        self.embedding = 1.5 * math.sqrt(self.obs_dim / self.dim) * q
        self.output_bias = 0.5 * rng.standard_normal(self.obs_dim)

    def _activation(self, u):
        return np.tanh(u) + self.leak * u

    def _slope(self, u):
        return 1.0 - np.tanh(u) ** 2 + self.leak

    def __call__(self, s):
        """``g(s)`` for ``s`` of shape ``(..., dim)``, float64."""
        s = np.asarray(s, dtype=np.float64)
        if s.shape[-1:] != (self.dim,):
            raise ValueError(
                f"`s` must have a last axis of size dim={self.dim}; received shape {s.shape}."
            )
        h = s
        for w, b in zip(self.weights, self.biases):
            h = self._activation(h @ w.T + b)
        return self._activation(h @ self.embedding.T + self.output_bias)

    def jacobian(self, s):
        """Analytic Jacobian ``∂g/∂s`` at one point ``s`` (shape ``(dim,)``) → ``(obs_dim, dim)``."""
        h = np.asarray(s, dtype=np.float64).reshape(self.dim)
        jac = np.eye(self.dim)
        for w, b in zip(self.weights, self.biases):
            u = w @ h + b
            jac = self._slope(u)[:, None] * (w @ jac)
            h = self._activation(u)
        u = self.embedding @ h + self.output_bias
        return self._slope(u)[:, None] * (self.embedding @ jac)

    def lower_lipschitz_bound(self):
        """``L = α σ_min(E) · Π_l α σ_min(W_l)``, so that ``|g(s) - g(s')| ≥ L |s - s'|``."""
        bound = self.leak * np.linalg.svd(self.embedding, compute_uv=False).min()
        for w in self.weights:
            bound *= self.leak * np.linalg.svd(w, compute_uv=False).min()
        return float(bound)


@dataclasses.dataclass
class StateSpaceData(FieldAccess):
    """Latents, observations and the process that made them.

    Attributes:
        latents: float32 ``(N, T, dim)``.
        observations: float32 ``(N, T, obs_dim)``, ``g(latents)``.
        system: the :class:`StateSpaceSystem` (``μ``).
        mixing: the :class:`RandomMixing` (``g``).
        config: the arguments that produced the data.

    Items can also be read dict-style: ``data["latents"]``.
    """

    latents: np.ndarray
    observations: np.ndarray
    system: StateSpaceSystem
    mixing: RandomMixing
    config: dict



def generate(
    system="oscillator",
    dim=2,
    num_sequences=64,
    length=200,
    obs_dim=20,
    noise_std=0.1,
    mixing_layers=2,
    seed=0,
    *,
    mixing_seed=0,
    dt=0.1,
    burn_in=200,
    leak=0.3,
):
    """Sample ``s_t = μ(s_{t-1}) + ε_t`` and observe ``x_t = g(s_t)`` (module docstring).

    Args:
        system: one of ``SYSTEMS``; dim: latent dimension (2 or 4; any even for rotation).
        num_sequences, length: ``N`` sequences of ``T`` steps.
        obs_dim: observation dimension (≥ 20 and ≥ dim).
        noise_std: std of the isotropic Gaussian transition noise ``ε_t`` (> 0).
        mixing_layers: latent-space leaky-tanh layers in g (one more follows the embedding).
        seed: seed of the initial states and the noise.
        mixing_seed: seed of g (keep it fixed across splits: g is the data-generating process).
        dt: integration step of the oscillators; burn_in: discarded initial steps;
        leak: slope α of g's activation ``tanh(u) + α u``.

    Returns:
        :class:`StateSpaceData`.

    Example:
        >>> d = generate("rotation", dim=4, num_sequences=2, length=10, obs_dim=32, seed=1)
        >>> d.observations.shape
        (2, 10, 32)
    """
    mu = make_system(system, dim, dt)
    n = check_int(num_sequences, "num_sequences", minimum=1)
    t_len = check_int(length, "length", minimum=1)
    obs_dim = check_int(obs_dim, "obs_dim", minimum=max(MIN_OBS_DIM, mu.dim))
    noise_std = check_positive(noise_std, "noise_std")
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    mixing = RandomMixing(mu.dim, obs_dim, mixing_layers, seed=mixing_seed, leak=leak)

    init_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    s = init_rng.standard_normal((n, mu.dim))
    for _ in range(burn_in):
        s = mu.step(s) + noise_std * noise_rng.standard_normal((n, mu.dim))
    latents = np.empty((n, t_len, mu.dim))
    for t in range(t_len):
        s = mu.step(s) + noise_std * noise_rng.standard_normal((n, mu.dim))
        latents[:, t] = s
    observations = mixing(latents)
    config = dict(
        system=system,
        dim=mu.dim,
        num_sequences=n,
        length=t_len,
        obs_dim=obs_dim,
        noise_std=noise_std,
        mixing_layers=mixing.layers,
        seed=seed,
        mixing_seed=mixing_seed,
        dt=mu.dt,
        burn_in=burn_in,
        leak=mixing.leak,
    )
    return StateSpaceData(
        latents=latents.astype(np.float32),
        observations=observations.astype(np.float32),
        system=mu,
        mixing=mixing,
        config=config,
    )


PRESETS = {
    # name: (generate() arguments, train sequences, test sequences, train seed, test seed)
    "nonlinear-2d": (
        dict(system="oscillator", dim=2, obs_dim=20, noise_std=0.1, mixing_layers=3,
             length=200, mixing_seed=7002),
        256, 64, 2100, 2101,
    ),
    "nonlinear-4d": (
        dict(system="oscillator", dim=4, obs_dim=20, noise_std=0.1, mixing_layers=3,
             length=200, mixing_seed=7004),
        256, 64, 4100, 4101,
    ),
}
"""Named identifiability datasets (T = 200, obs_dim 20, noise_std 0.1, 3 mixing layers).

* ``nonlinear-2d``: one damped Duffing-type oscillator; 256 train / 64 test sequences;
  seeds 2100 / 2101; mixing_seed 7002 for both splits.
* ``nonlinear-4d``: two coupled oscillators (ω = 1 and 1.6); 256 / 64; seeds 4100 / 4101;
  mixing_seed 7004 for both splits.
"""

SPLITS = ("train", "test")


def load(name, split="train", num_sequences=None, **overrides):
    """A named identifiability dataset (``PRESETS``) for ``split`` ``"train"`` or ``"test"``.

    The splits differ in ``seed`` (initial states and noise) and share ``mixing_seed``,
    hence the same g and μ. Extra keyword arguments (``length=1000``, ...) go to
    :func:`generate`; ``seed`` and ``mixing_seed`` are fixed by the preset.

    Example:
        >>> tr = load("nonlinear-2d", "train", num_sequences=4)
        >>> te = load("nonlinear-2d", "test", num_sequences=4)
        >>> bool(np.allclose(tr.mixing(tr.latents[0]), te.mixing(tr.latents[0])))
        True
    """
    return load_preset(generate, PRESETS, name, split, num_sequences, overrides,
                       fixed=("seed", "mixing_seed"))
