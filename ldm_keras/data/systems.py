"""A zoo of latent dynamical systems seen through injective mixings (robustness suite).

Each dataset is a Markov process with additive isotropic Gaussian transition noise,
observed through an injective smooth map (the setting of the identifiability theorem,
docs/spec.md §7),

    s_t = μ(s_{t-1}) + σ ε_t,   ε_t ~ N(0, I_dim),   x_t = g(u_t),   u_t = (s_t - m) / v,

with ``m`` and ``v`` a fixed per-system standardisation (the mean and per-coordinate std
of a long reference run of the system, seed ``REFERENCE_SEED``; the same for every split
and every mixing, so ``g ∘ standardise`` is one fixed injective map). The ground truth
returned as ``latents`` is ``s`` itself; a learned representation identifies it when an
affine read-out of ``s`` from the representation has R² ≈ 1.

**Systems** (``dt`` = 0.1 unless stated; ODE flows are integrated with classical RK4):

* ``"van-der-pol"`` (2-d limit cycle): ``ẋ = y``, ``ẏ = μ(1 - x²) y - x``, μ = 1, state
  ``s = (x, y) / 2``; σ = 0.05.
* ``"damped-oscillator"`` (2-d, **linear**): ``q̈ = -ω² q - γ q̇``, ω = 1, γ = 0.2; the
  exact flow map ``s' = expm(dt · F) s`` of the linear ODE; σ = 0.1. A linear-Gaussian
  (Kalman) latent model contains it.
* ``"driven-duffing"`` (3-d): a damped Duffing-type oscillator driven by a slow random
  force, ``q' = q + dt v``, ``v' = v + dt(-q' - β q'³/(1 + q'²) - γ v + κ f)``,
  ``f' = ρ f`` (before the noise), β = 2, γ = 0.3, κ = 3, ρ = 0.97; σ = 0.1.
* ``"lorenz"`` (3-d, chaotic): Lorenz-63 (σ_L = 10, ρ_L = 28, β_L = 8/3) integrated for
  0.02 time units per frame (4 RK4 sub-steps), state ``s = (x, y, z - 25) / 8``;
  σ = 0.05 (the noise is added in the scaled coordinates after each frame).
* ``"random-3d"``, ``"random-4d"``: a random recurrent network, the Euler step
  ``μ(s) = s + dt (g U tanh(V s + b) - λ s)`` with ``U`` a random rotation (orthogonal,
  det 1), ``V`` random orthogonal, ``b ~ N(0, 0.5²)``, g = 1.5, λ = 0.5 — bounded
  (``|g U tanh(·)| ≤ g√dim``) and, for most draws, unstable at the origin, so the state
  circles a limit cycle or a strange attractor where ``tanh`` is far from linear. A draw
  is kept only if it is not degenerate (every coordinate's stationary std ≥ 0.3 × the
  largest, and a linear map explains at most 97 % of the variance of the 20-step-ahead
  mean, ``μ²⁰``): candidates come from ``SeedSequence([system_seed, k])``,
  ``k = 0, 1, …``, the first that passes is used. σ = 0.1.
* ``"pendulum"`` (2-d): a pendulum whose energy is regulated towards a swing of
  ``θ_max`` = 1.8 rad (an escapement), ``θ̇ = ω``,
  ``ω̇ = -ω₀² sin θ - γ ω (E/E₀ - 1)``, ``E = ω²/2 + ω₀²(1 - cos θ)``,
  ``E₀ = ω₀²(1 - cos θ_max)``, ω₀ = π, γ = 4; state ``s = (θ, ω/ω₀)``; σ = 0.05. A
  limit cycle of large, clearly non-harmonic swings that stays below the top
  (``|θ| < π``, checked by the tests on the presets).

Initial states are drawn around the reference mean and followed by ``burn_in`` (default
300) discarded steps, so sequences start near the stationary distribution.

**Mixings g** (all injective and smooth on the standardised state ``u``):

* ``"mlp"`` — :class:`ldm_keras.data.state_space.RandomMixing` (3 leaky-tanh layers in
  the latent space, a full-column-rank embedding to 20-d and one more leaky-tanh; injective
  because every piece is).
* ``"tuning"`` — a population code of ``40`` Gaussian tuning curves,
  ``x_i = exp(-‖u - c_i‖² / (2 w²))``, centres ``c_i ~ N(0, 1.2² I)``, width
  ``w = 1``. Injective: ``log x_i - log x_j = (c_i - c_j)ᵀ u / w² - (‖c_i‖² - ‖c_j‖²)/(2w²)``
  is affine in ``u``, and the differences ``c_i - c_1`` span ``ℝ^dim`` (almost surely).
* ``"frames"`` — rendered frames: each pair of coordinates ``(u_{2k}, u_{2k+1})`` is
  drawn as a Gaussian dot (σ = 1 px) at world position ``3 tanh(u/2.5)`` on its own
  ``12 × 12`` image (:func:`ldm_keras.data.dot_motion.render`); an odd last coordinate as
  a dot on a 12-pixel strip. Injective: ``tanh`` is, and a dot's pixel values determine
  its centre (the log-pixels are a quadratic in the pixel index whose linear coefficient
  is the centre).
* ``"bob"`` — the pendulum only: the frame a camera sees, the bob (σ = 1 px) at
  ``2 (sin θ, -cos θ)`` plus a dimmer, wider trail (½ amplitude, σ = 1.6 px) where it was
  ``τ`` = 0.1 time units earlier, ``θ - τ ω`` (a motion blur), on a ``12 × 12`` image.
  The trail makes the frame determine the velocity too, so the frame is an injective
  function of ``(θ, ω)`` (a single exposure is not: it shows the angle only); the trail's
  other width keeps the Jacobian full rank at the turning points ``ω = 0``, where the
  trail sits under the bob (with equal widths the two derivatives would be parallel).

**Seeds.** ``seed`` draws the initial states and the transition noise; ``mixing_seed``
draws g (and, for the random systems, ``system_seed`` draws μ). Both are part of the
data-generating process, so the presets (:func:`load`) share them between the train and
test splits and use distinct ``seed`` s.

Example:
    >>> from ldm_keras.data import systems
    >>> d = systems.generate("van-der-pol", "tuning", num_sequences=4, length=50, seed=0)
    >>> d.latents.shape, d.observations.shape
    ((4, 50, 2), (4, 50, 40))
    >>> train = systems.load("lorenz/mlp", "train", num_sequences=8)

Long module: seven systems and four mixings, each a few lines with its documented
formula, kept together so that the suite's cases are defined in one place.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from scipy.linalg import expm

from .._validation import check_choice, check_int, check_positive
from ._presets import load_preset
from .render import render
from .state_space import RandomMixing

__all__ = [
    "MIXINGS",
    "PRESETS",
    "SYSTEMS",
    "Dynamics",
    "PopulationCode",
    "RenderedFrames",
    "PendulumFrames",
    "SystemData",
    "generate",
    "load",
    "make_mixing",
    "make_system",
]

SYSTEMS = ("van-der-pol", "damped-oscillator", "driven-duffing", "lorenz", "random-3d",
           "random-4d", "pendulum")
MIXINGS = ("mlp", "tuning", "frames", "bob")
#: Seed of the reference run that fixes each system's standardisation.
REFERENCE_SEED = 12345

_DIMS = {"van-der-pol": 2, "damped-oscillator": 2, "driven-duffing": 3, "lorenz": 3,
         "random-3d": 3, "random-4d": 4, "pendulum": 2}
_NOISE = {"van-der-pol": 0.05, "damped-oscillator": 0.1, "driven-duffing": 0.1,
          "lorenz": 0.05, "random-3d": 0.1, "random-4d": 0.1, "pendulum": 0.05}
#: Systems whose transition mean is linear (a Kalman latent model contains them).
LINEAR = ("damped-oscillator",)


def _rk4(field, s, h, steps):
    for _ in range(steps):
        k1 = field(s)
        k2 = field(s + 0.5 * h * k1)
        k3 = field(s + 0.5 * h * k2)
        k4 = field(s + h * k3)
        s = s + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return s


def _van_der_pol(s):
    x, y = 2.0 * s[..., 0], 2.0 * s[..., 1]
    return np.stack([y, (1.0 - x * x) * y - x], axis=-1) / 2.0


def _lorenz(s):
    x, y, z = 8.0 * s[..., 0], 8.0 * s[..., 1], 8.0 * s[..., 2] + 25.0
    return np.stack([10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z], -1) / 8.0


_PENDULUM_W0 = math.pi
_PENDULUM_E0 = _PENDULUM_W0**2 * (1.0 - math.cos(1.8))


def _pendulum(s):
    theta, w = s[..., 0], _PENDULUM_W0 * s[..., 1]
    energy = 0.5 * w * w + _PENDULUM_W0**2 * (1.0 - np.cos(theta))
    dw = -(_PENDULUM_W0**2) * np.sin(theta) - 4.0 * w * (energy / _PENDULUM_E0 - 1.0)
    return np.stack([w, dw / _PENDULUM_W0], axis=-1)


def _random_orthogonal(rng, n, proper=False):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.sign(np.diag(r))
    if proper and np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _random_network_step(s, p, dt):
    return s + dt * (1.5 * np.tanh(s @ p["v"].T + p["b"]) @ p["u"].T - 0.5 * s)


def _random_network_ok(p, dim, dt):
    """The acceptance test of a random network draw (module docstring)."""
    rng = np.random.default_rng(0)
    s = rng.standard_normal((64, dim))
    states = []
    for t in range(500):
        s = _random_network_step(s, p, dt) + 0.1 * rng.standard_normal(s.shape)
        if t >= 300:
            states.append(s)
    flat = np.concatenate(states)
    std = flat.std(axis=0)
    ahead = flat
    for _ in range(20):
        ahead = _random_network_step(ahead, p, dt)
    design = np.c_[flat, np.ones(len(flat))]
    coef, *_ = np.linalg.lstsq(design, ahead, rcond=None)
    unexplained = np.sum((design @ coef - ahead) ** 2) / np.sum((ahead - ahead.mean(0)) ** 2)
    return std.min() >= 0.3 * std.max() and unexplained >= 0.03


@functools.cache
def _accepted_random_network(dim, system_seed, dt):
    for k in range(1000):
        rng = np.random.default_rng(np.random.SeedSequence([system_seed, k]))
        p = {"u": _random_orthogonal(rng, dim, proper=True), "v": _random_orthogonal(rng, dim),
             "b": 0.5 * rng.standard_normal(dim)}
        if _random_network_ok(p, dim, dt):
            return {**p, "draw": k}
    raise RuntimeError(f"no acceptable random network in 1000 draws (seed {system_seed})")


@dataclasses.dataclass(frozen=True)
class Dynamics:
    """The transition mean ``μ`` and noise std ``σ`` of a named system (module docstring).

    Built by :func:`make_system`. ``step(s)`` maps states ``(..., dim)`` to the next mean
    state (float64); ``noise_std`` is σ; ``linear`` says whether μ is linear.

    Example:
        >>> make_system("damped-oscillator").step(np.array([1.0, 0.0])).round(3)
        array([ 0.995, -0.099])
    """

    name: str
    dim: int
    noise_std: float
    dt: float = 0.1
    system_seed: int = 0

    @property
    def linear(self):
        return self.name in LINEAR

    @functools.cached_property
    def _params(self):
        if self.name == "damped-oscillator":
            return {"a": expm(self.dt * np.array([[0.0, 1.0], [-1.0, -0.2]]))}
        if self.name.startswith("random-"):
            return _accepted_random_network(self.dim, self.system_seed, self.dt)
        return {}

    def step(self, s):
        """``μ(s)`` for states of shape ``(..., dim)``."""
        s = np.asarray(s, dtype=np.float64)
        if s.shape[-1:] != (self.dim,):
            raise ValueError(f"`s` must have a last axis of size dim={self.dim}; received "
                             f"shape {s.shape}.")
        p = self._params
        if self.name == "van-der-pol":
            return _rk4(_van_der_pol, s, self.dt / 2, 2)
        if self.name == "damped-oscillator":
            return s @ p["a"].T
        if self.name == "driven-duffing":
            q, v, f = s[..., 0], s[..., 1], s[..., 2]
            q_new = q + self.dt * v
            force = -q_new - 2.0 * q_new**3 / (1.0 + q_new**2) - 0.3 * v + 3.0 * f
            return np.stack([q_new, v + self.dt * force, 0.97 * f], axis=-1)
        if self.name == "lorenz":
            return _rk4(_lorenz, s, 0.005, 4)
        if self.name == "pendulum":
            return _rk4(_pendulum, s, self.dt / 4, 4)
        return _random_network_step(s, p, self.dt)

    __call__ = step

    def simulate(self, num_sequences, length, seed, burn_in=300, noise_std=None):
        """States ``(N, T, dim)`` of ``s_t = μ(s_{t-1}) + σ ε_t`` (float64)."""
        sigma = self.noise_std if noise_std is None else noise_std
        init_rng, noise_rng = (np.random.default_rng(q)
                               for q in np.random.SeedSequence(seed).spawn(2))
        s = self._initial(init_rng, num_sequences)
        for _ in range(burn_in):
            s = self.step(s) + sigma * noise_rng.standard_normal(s.shape)
        out = np.empty((num_sequences, length, self.dim))
        for t in range(length):
            s = self.step(s) + sigma * noise_rng.standard_normal(s.shape)
            out[:, t] = s
        return out

    def _initial(self, rng, n):
        s = 0.5 * rng.standard_normal((n, self.dim))
        if self.name == "van-der-pol":
            s = s + np.array([1.0, 0.0])
        if self.name == "lorenz":
            s = s + np.array([1.0, 1.0, 0.0])
        if self.name == "pendulum":
            s = np.stack([rng.uniform(-2.0, 2.0, n), np.zeros(n)], axis=-1)
        return s

    @functools.cached_property
    def reference_stats(self):
        """``(mean, std)`` per coordinate of a reference run (64 × 500 steps, seed
        ``REFERENCE_SEED``): the standardisation every mixing applies first."""
        ref = self.simulate(64, 500, REFERENCE_SEED).reshape(-1, self.dim)
        return ref.mean(axis=0), ref.std(axis=0)

    def standardise(self, s):
        """``u = (s - m) / v`` with the reference statistics."""
        m, v = self.reference_stats
        return (np.asarray(s, dtype=np.float64) - m) / v


def make_system(name, system_seed=0, dt=0.1):
    """The :class:`Dynamics` of a named system (``SYSTEMS``; formulas in the module docstring).

    ``system_seed`` draws μ of the random systems (ignored by the others).

    Example:
        >>> make_system("random-4d", system_seed=3).dim
        4
    """
    check_choice(name, "system", SYSTEMS)
    dt = check_positive(dt, "dt")
    return Dynamics(name, _DIMS[name], _NOISE[name], dt, int(system_seed))


# -- mixings -------------------------------------------------------------------------------

class PopulationCode:
    """Gaussian tuning curves ``x_i = exp(-‖u - c_i‖² / (2 w²))`` (injective; module docstring).

    Args:
        dim: state dimension; units: number of neurons (≥ dim + 1); width: ``w``;
        spread: std of the centres ``c_i ~ N(0, spread² I)``; seed: seed of the centres.

    Example:
        >>> PopulationCode(2, units=40, seed=0)(np.zeros((3, 2))).shape
        (3, 40)
    """

    def __init__(self, dim, units=40, width=1.0, spread=1.2, seed=0):
        self.dim = check_int(dim, "dim", minimum=1)
        self.units = check_int(units, "units", minimum=self.dim + 1)
        self.width = check_positive(width, "width")
        self.centres = check_positive(spread, "spread") * np.random.default_rng(
            seed).standard_normal((self.units, self.dim))
        self.obs_dim = self.units

    def __call__(self, u):
        u = np.asarray(u, dtype=np.float64)
        d2 = (np.sum(u * u, -1, keepdims=True) - 2.0 * u @ self.centres.T
              + np.sum(self.centres**2, -1))
        return np.exp(-np.maximum(d2, 0.0) / (2.0 * self.width**2))


class RenderedFrames:
    """Dots on images, one per pair of coordinates (module docstring); flattened frames.

    Args:
        dim: state dimension; image_size: side of each image (pixels); squash: the world
            position is ``3 tanh(u / squash)``; sigma: dot width in pixels.

    Example:
        >>> RenderedFrames(3)(np.zeros((5, 3))).shape
        (5, 156)
    """

    def __init__(self, dim, image_size=12, squash=2.5, sigma=1.0):
        self.dim = check_int(dim, "dim", minimum=1)
        self.image_size = check_int(image_size, "image_size", minimum=4)
        self.squash = check_positive(squash, "squash")
        self.sigma = check_positive(sigma, "sigma")
        self.obs_dim = (self.dim // 2) * self.image_size**2 + (self.dim % 2) * self.image_size

    def __call__(self, u):
        u = np.asarray(u, dtype=np.float64)
        w = 3.0 * np.tanh(u / self.squash)
        parts = [render(w[..., 2 * k:2 * k + 2], self.image_size, self.sigma)
                 for k in range(self.dim // 2)]
        if self.dim % 2:
            col = (w[..., -1:] + 3.0) / 6.0 * (self.image_size - 1)
            grid = np.arange(self.image_size)
            parts.append(np.exp(-(grid - col) ** 2 / (2.0 * self.sigma**2)))
        return np.concatenate(parts, axis=-1)


class PendulumFrames:
    """The pendulum bob with a motion-blur trail on a ``12 × 12`` image (module docstring).

    Acts on the raw pendulum state ``s = (θ, ω/ω₀)`` (not the standardised one).

    Example:
        >>> PendulumFrames()(np.zeros((2, 2))).shape
        (2, 144)
    """

    def __init__(self, image_size=12, arm=2.0, lag=0.1, trail=0.5, sigma=1.0,
                 trail_sigma=1.6):
        self.image_size = check_int(image_size, "image_size", minimum=4)
        self.arm, self.lag, self.trail = arm, lag, trail
        self.sigma = check_positive(sigma, "sigma")
        self.trail_sigma = check_positive(trail_sigma, "trail_sigma")
        self.dim, self.obs_dim = 2, self.image_size**2

    def __call__(self, s):
        s = np.asarray(s, dtype=np.float64)
        theta, w = s[..., 0], _PENDULUM_W0 * s[..., 1]
        before = theta - self.lag * w
        bob = lambda a: np.stack([self.arm * np.sin(a), -self.arm * np.cos(a)], -1)  # noqa: E731
        return (render(bob(theta), self.image_size, self.sigma)
                + self.trail * render(bob(before), self.image_size, self.trail_sigma))


def make_mixing(kind, system, seed=0):
    """The injective mixing ``kind`` (``MIXINGS``) for a :class:`Dynamics` ``system``.

    Returns a callable ``s ↦ x`` on raw states (the standardisation is applied inside,
    except for ``"bob"``, which renders the pendulum's own angle) with an ``obs_dim``.

    Example:
        >>> g = make_mixing("frames", make_system("van-der-pol"))
        >>> g.obs_dim
        144
    """
    check_choice(kind, "mixing", MIXINGS)
    if kind == "bob":
        if system.name != "pendulum":
            raise ValueError(f"mixing 'bob' renders the pendulum only; received system "
                             f"{system.name!r}.")
        return PendulumFrames()
    if kind == "mlp":
        inner = RandomMixing(system.dim, obs_dim=20, layers=3, seed=seed)
        inner.obs_dim = 20
    elif kind == "tuning":
        inner = PopulationCode(system.dim, units=40, seed=seed)
    else:
        inner = RenderedFrames(system.dim)
    return _Standardised(system, inner)


class _Standardised:
    def __init__(self, system, inner):
        self.system, self.inner, self.obs_dim = system, inner, inner.obs_dim

    def __call__(self, s):
        return self.inner(self.system.standardise(s))


@dataclasses.dataclass
class SystemData:
    """Latents, observations and the process that made them.

    Attributes:
        latents: float32 ``(N, T, dim)``, the state ``s``.
        observations: float32 ``(N, T, obs_dim)``, ``g(s)``.
        system: the :class:`Dynamics`; mixing: the mixing callable; config: the arguments.
    """

    latents: np.ndarray
    observations: np.ndarray
    system: Dynamics
    mixing: object
    config: dict

    def __getitem__(self, key):
        if key not in ("latents", "observations", "system", "mixing", "config"):
            raise KeyError(key)
        return getattr(self, key)


def generate(system="van-der-pol", mixing="mlp", num_sequences=64, length=200, seed=0, *,
             mixing_seed=0, system_seed=0, noise_std=None, burn_in=300):
    """Sample a system (``SYSTEMS``) and observe it through a mixing (``MIXINGS``).

    Args:
        system, mixing: names (module docstring).
        num_sequences, length: ``N`` sequences of ``T`` steps.
        seed: seed of the initial states and the transition noise.
        mixing_seed: seed of g; system_seed: seed of μ (random systems). Keep both fixed
            across splits: they are part of the data-generating process.
        noise_std: σ (default: the system's own, see the module docstring).
        burn_in: discarded initial steps.

    Returns:
        :class:`SystemData`.

    Example:
        >>> d = generate("random-3d", "frames", num_sequences=2, length=10, seed=1)
        >>> d.observations.shape
        (2, 10, 156)
    """
    mu = make_system(system, system_seed=system_seed)
    g = make_mixing(mixing, mu, seed=mixing_seed)
    n = check_int(num_sequences, "num_sequences", minimum=1)
    t_len = check_int(length, "length", minimum=1)
    burn_in = check_int(burn_in, "burn_in", minimum=0)
    if noise_std is not None:
        noise_std = check_positive(noise_std, "noise_std")
    s = mu.simulate(n, t_len, seed, burn_in=burn_in, noise_std=noise_std)
    x = g(s)
    config = dict(system=system, mixing=mixing, num_sequences=n, length=t_len, seed=seed,
                  mixing_seed=mixing_seed, system_seed=system_seed,
                  noise_std=mu.noise_std if noise_std is None else noise_std,
                  burn_in=burn_in, obs_dim=int(g.obs_dim))
    return SystemData(latents=s.astype(np.float32), observations=x.astype(np.float32),
                      system=mu, mixing=g, config=config)


def _presets():
    presets = {}
    for i, name in enumerate(SYSTEMS):
        mixings = ("mlp", "tuning", "frames") + (("bob",) if name == "pendulum" else ())
        for j, kind in enumerate(mixings):
            base = 8000 + 100 * i + 10 * j
            presets[f"{name}/{kind}"] = (
                dict(system=name, mixing=kind, length=200, mixing_seed=base + 7,
                     system_seed=8000 + 100 * i + 9),
                256, 64, base + 1, base + 2)
    return presets


PRESETS = _presets()
"""Named datasets ``"<system>/<mixing>"`` (every system with ``mlp``, ``tuning`` and
``frames``; ``pendulum/bob`` besides): T = 200, 256 train / 64 test sequences, seeds
``8000 + 100 i + 10 j + 1`` / ``+ 2`` (``i``, ``j`` the positions in ``SYSTEMS`` and the
mixing list), ``mixing_seed`` ``… + 7``, and ``system_seed`` ``8000 + 100 i + 9`` (one μ
per system, whatever the mixing); seeds of g and μ are shared by both splits."""


def load(name, split="train", num_sequences=None, **overrides):
    """A named dataset (``PRESETS``, e.g. ``"lorenz/tuning"``) for ``split`` ``"train"``
    or ``"test"``: distinct noise seeds, the same μ and g.

    Example:
        >>> tr = load("van-der-pol/mlp", "train", num_sequences=4)
        >>> te = load("van-der-pol/mlp", "test", num_sequences=4)
        >>> bool(np.allclose(tr.mixing(tr.latents[0]), te.mixing(tr.latents[0]), atol=1e-6))
        True
    """
    return load_preset(generate, PRESETS, name, split, num_sequences, overrides,
                       fixed=("seed", "mixing_seed", "system_seed"))
