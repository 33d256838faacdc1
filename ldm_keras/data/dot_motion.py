"""DotMotion: videos of a Gaussian dot moving on a known trajectory (docs/spec.md §5).

Each frame is an ``image_size × image_size`` image (10×10 by default, flattened to 100
values) of an isotropic Gaussian blob of width ``sigma`` = 1 pixel, centred where the dot's
world position ``s = (x, y) ∈ [-3, 3]²`` maps onto the pixel grid. The ground-truth
positions come with the frames, so a linear read-out of a learned latent can be scored by
its R² (docs/spec.md §6).

Frames are drawn by :mod:`ldm_keras.data.render` (the world → pixel map, the Gaussian
dot and the distortions).

**Trajectories** (``t = 0 … T-1``; ``φ₀`` is a per-sequence start phase, uniform on
[0, 2π) when ``random_phase=True`` — the default, so that every sequence covers a different
stretch of the orbit — and 0 otherwise, which reproduces the reference's fixed start):

* ``"circular"`` — start ``s₀ = (cos φ₀, sin φ₀)`` (``(1, 0)`` without a random phase) and
  ``s_t = R(ω + J_t · jump_angle) s_{t-1} + process_noise · ε_t`` with ``ω = 2π·dt/period``
  (:func:`angular_step`), ``J_t ~ Bernoulli(jump_rate)`` and ``ε_t ~ N(0, I₂)``.
  A jump rotates the dot by an extra ``jump_angle`` = 135° (3π/4) in the direction of motion.
* ``"square"`` — the perimeter of [-1, 1]², walked counter-clockwise at constant speed,
  ``period/4`` per side (arc length ``8·dt/period`` per step); phase 0 is the point (1, 0).
* ``"figure-eight"`` — ``x = cos θ_t``, ``y = sin θ_t cos θ_t`` with
  ``θ_t = φ₀ + t·dt·π/period`` (the lemniscate of Gerono, ``y² = x²(1 - x²)``).
* ``"wobbly"`` — the swirl ODE ``ds/dt = f(s)`` integrated with classical RK4
  (``rk4_substeps`` = 4 sub-steps per frame), from ``s₀ = (cos φ₀, sin φ₀)``, with

      f(x, y) = ω(1 + b·tanh y) · (-y, x) + λ(1 + a·tanh(x³ - 3xy²) - x² - y²) · (x, y),

  ``ω = 2π/period``, ``λ = 5``, ``a = 0.8`` (``wobble``), ``b = 0.4``: a rotation whose speed
  varies along the orbit plus a strong pull onto the closed curve
  ``r² = 1 + a·tanh(r³ cos 3φ)`` — a smooth, three-lobed ("wobbly") limit cycle with
  0.8 ≲ r ≲ 1.3. The cubic ``-λ r²·s`` term dominates far from the origin, so every
  trajectory stays bounded. ``process_noise`` adds ``N(0, process_noise²·I₂)`` after each frame.

For the square and the figure-eight (deterministic functions of a phase) a jump advances the
phase by ``jump_angle`` out of a 2π cycle (3/8 of a lap for 135°); process noise is only
defined for the two state-space trajectories, ``"circular"`` and ``"wobbly"``.

**Observation noise** (added after any distortion; ``noise_levels[n, t]`` is the standard
deviation used for frame ``(n, t)``, i.i.d. over its pixels):

* ``"constant"`` — ``σ_nt = obs_noise``;
* ``"random"`` — ``σ_nt ~ Uniform(0, 2·obs_noise)``, drawn per frame (mean ``obs_noise``);
* ``"state-dependent"`` — ``σ_nt = obs_noise · (1 + tanh x_nt)``: noisier on the right of the
  world, cleaner on the left, in ``(0, 2·obs_noise)``.

**Distortions** (applied to the clean frame, before noise; see :mod:`ldm_keras.data.render`):
``"swirl"`` (a swirl of the image coordinates, strength ``swirl_strength``),
``"half-flip"`` (the right half of the image flipped upside down) and ``"mlp"`` (a frozen
random MLP renderer drawn from ``distortion_seed`` only, shared by train and test).

**Seeds.** ``seed`` draws the start phases, jumps, process noise and observation noise from
independent streams (``numpy.random.SeedSequence(seed).spawn``), so changing ``obs_noise``
does not change the trajectories. The reference generator used the same seed for train and
test; the presets here (:func:`load`) use distinct ones (see ``PRESETS``).

Example:
    >>> from ldm_keras.data import dot_motion
    >>> data = dot_motion.generate("circular", num_sequences=4, dt=0.1, period=2.0, seed=0)
    >>> data.frames.shape, data.positions.shape
    ((4, 100, 100), (4, 100, 2))
    >>> train = dot_motion.load("square", split="train", num_sequences=8)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._deprecation import deprecated_alias
from .._validation import check_choice, check_int, check_positive, check_probability
from ._presets import FieldAccess, load_preset
from .render import WORLD_HALF_WIDTH, random_mlp_renderer, render, render_swirled, world_to_pixel

__all__ = [
    "DISTORTIONS",
    "NOISE_TYPES",
    "PRESETS",
    "TRAJECTORIES",
    "WORLD_HALF_WIDTH",
    "DotMotionData",
    "generate",
    "load",
    "random_mlp_renderer",
    "render",
    "angular_step",
    "rotation_per_step",
    "square_perimeter",
    "swirl_field",
    "world_to_pixel",
]

TRAJECTORIES = ("circular", "square", "figure-eight", "wobbly")
NOISE_TYPES = ("constant", "random", "state-dependent")
DISTORTIONS = (None, "swirl", "half-flip", "mlp")
_STATE_TRAJECTORIES = ("circular", "wobbly")

# Swirl-field constants of the "wobbly" trajectory (documented in the module docstring).
_WOBBLY_PULL = 5.0
_WOBBLY_SPEED_MODULATION = 0.4


def angular_step(dt, period):
    """Angle (radians) the circular trajectory turns per frame: ``ω = 2π · dt / period``.

    Example:
        >>> round(angular_step(0.1, 2.0), 5)   # the reference circular setting
        0.31416
    """
    dt = check_positive(dt, "dt")
    period = check_positive(period, "period")
    return 2.0 * math.pi * dt / period


rotation_per_step = deprecated_alias(angular_step, "rotation_per_step", "ldm_keras.data.dot_motion")


def swirl_field(s, period=2.0, wobble=0.8):
    """The velocity field of the ``"wobbly"`` trajectory at points ``s`` of shape ``(..., 2)``.

    ``f(x, y) = ω(1 + 0.4 tanh y)(-y, x) + 5(1 + a tanh(x³ - 3xy²) - x² - y²)(x, y)``
    with ``ω = 2π/period`` and ``a = wobble``.

    Example:
        >>> swirl_field(np.array([1.0, 0.0]), period=2.0, wobble=0.0)
        array([0.        , 3.14159265])
    """
    s = np.asarray(s, dtype=np.float64)
    x, y = s[..., 0], s[..., 1]
    omega = 2.0 * math.pi / period * (1.0 + _WOBBLY_SPEED_MODULATION * np.tanh(y))
    radial = _WOBBLY_PULL * (1.0 + wobble * np.tanh(x**3 - 3.0 * x * y * y) - x * x - y * y)
    return np.stack([-omega * y + radial * x, omega * x + radial * y], axis=-1)


def square_perimeter(phase):
    """Point on the perimeter of ``[-1, 1]²`` at ``phase`` laps (counter-clockwise from (1, 0)).

    The perimeter (length 8) is walked at constant speed; ``phase`` is taken modulo 1.

    Example:
        >>> square_perimeter(np.array([0.0, 0.125, 0.25]))
        array([[1., 0.],
               [1., 1.],
               [0., 1.]])
    """
    corners = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    # arc length from the corner (1, -1); phase 0 is the midpoint (1, 0) of the right side
    u = np.mod(8.0 * np.mod(np.asarray(phase, dtype=np.float64), 1.0) + 1.0, 8.0)
    side = np.minimum(np.floor(u / 2.0).astype(int), 3)
    frac = (u - 2.0 * side)[..., None] / 2.0
    return corners[side] + frac * (corners[side + 1] - corners[side])


@dataclasses.dataclass
class DotMotionData(FieldAccess):
    """A DotMotion dataset: frames and the ground truth that generated them.

    Attributes:
        frames: float32, ``(N, T, S*S)`` (or ``(N, T, S, S, 1)`` when not flattened).
        positions: float32 ``(N, T, 2)``, world coordinates ``(x, y)`` of the dot.
        noise_levels: float32 ``(N, T)``, observation-noise std of each frame.
        jumps: bool ``(N, T)``, True where a 135° jump happened between ``t-1`` and ``t``.
        config: the arguments that produced the data (trajectory, dt, period, seed, ...).

    Items can also be read dict-style: ``data["frames"]``.
    """

    frames: np.ndarray
    positions: np.ndarray
    noise_levels: np.ndarray
    jumps: np.ndarray
    config: dict


    def as_dict(self):
        """The arrays and the config as a plain dict."""
        return dataclasses.asdict(self)


def _rotate(s, angle):
    c, sn = np.cos(angle), np.sin(angle)
    return np.stack([c * s[..., 0] - sn * s[..., 1], sn * s[..., 0] + c * s[..., 1]], axis=-1)


def _rk4_step(s, h, period, wobble):
    k1 = swirl_field(s, period, wobble)
    k2 = swirl_field(s + 0.5 * h * k1, period, wobble)
    k3 = swirl_field(s + 0.5 * h * k2, period, wobble)
    k4 = swirl_field(s + h * k3, period, wobble)
    return s + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def generate(
    trajectory="circular",
    num_sequences=32,
    length=100,
    dt=0.1,
    period=2.0,
    process_noise=0.0,
    jump_rate=0.0,
    obs_noise=0.0,
    noise_type="constant",
    distortion=None,
    image_size=10,
    flatten=True,
    seed=0,
    *,
    random_phase=True,
    jump_angle=3.0 * math.pi / 4.0,
    sigma=1.0,
    wobble=0.8,
    rk4_substeps=4,
    swirl_strength=2.0,
    distortion_seed=0,
):
    """Generate DotMotion videos (see the module docstring for every formula).

    Args:
        trajectory: one of ``TRAJECTORIES``.
        num_sequences, length: ``N`` sequences of ``T`` frames.
        dt, period: time step and period; the circle turns ``2π·dt/period`` per frame.
        process_noise: std of the Gaussian noise added to the 2-D state per frame
            (``"circular"`` and ``"wobbly"`` only).
        jump_rate: probability per frame of a ``jump_angle`` (135°) jump.
        obs_noise, noise_type: observation-noise level and type (``NOISE_TYPES``).
        distortion: ``None`` or one of ``"swirl"``, ``"half-flip"``, ``"mlp"``.
        image_size, flatten: frame side ``S``; frames are ``(N, T, S*S)`` if ``flatten``
            else ``(N, T, S, S, 1)``.
        seed: seed of the phases, jumps and noises.
        random_phase: start each sequence at a uniform random phase (else phase 0).
        jump_angle: size of a jump in radians (default 3π/4 = 135°).
        sigma: blob width in pixels.
        wobble, rk4_substeps: the ``"wobbly"`` swirl field's lobe amplitude and the number
            of RK4 sub-steps per frame.
        swirl_strength: peak angle (radians) of the ``"swirl"`` distortion.
        distortion_seed: seed of the ``"mlp"`` renderer (independent of ``seed``).

    Returns:
        :class:`DotMotionData` with ``frames``, ``positions``, ``noise_levels``, ``jumps``.

    Example:
        >>> d = generate("figure-eight", num_sequences=2, length=50, obs_noise=0.1, seed=3)
        >>> d.frames.dtype, d.jumps.shape
        (dtype('float32'), (2, 50))
    """
    check_choice(trajectory, "trajectory", TRAJECTORIES)
    check_choice(noise_type, "noise_type", NOISE_TYPES)
    if distortion not in DISTORTIONS:
        known = ["None"] + sorted(d for d in DISTORTIONS if d is not None)
        raise ValueError(f"`distortion` must be one of {known}; received {distortion!r}.")
    n = check_int(num_sequences, "num_sequences", minimum=1)
    t_len = check_int(length, "length", minimum=1)
    dt = check_positive(dt, "dt")
    period = check_positive(period, "period")
    process_noise = check_positive(process_noise, "process_noise", allow_zero=True)
    jump_rate = check_probability(jump_rate, "jump_rate")
    obs_noise = check_positive(obs_noise, "obs_noise", allow_zero=True)
    image_size = check_int(image_size, "image_size", minimum=2)
    sigma = check_positive(sigma, "sigma")
    rk4_substeps = check_int(rk4_substeps, "rk4_substeps", minimum=1)
    try:
        jump_angle = float(jump_angle)
        swirl_strength = float(swirl_strength)
        wobble = float(wobble)
    except (TypeError, ValueError):
        raise ValueError(
            "`jump_angle`, `swirl_strength` and `wobble` must be numbers; received "
            f"{jump_angle!r}, {swirl_strength!r}, {wobble!r}."
        ) from None
    if process_noise > 0 and trajectory not in _STATE_TRAJECTORIES:
        raise ValueError(
            f"`process_noise` is only defined for the trajectories {list(_STATE_TRAJECTORIES)}; "
            f"received process_noise={process_noise} with trajectory={trajectory!r}."
        )

    phase_rng, jump_rng, process_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    phase0 = (
        phase_rng.uniform(0.0, 2.0 * math.pi, size=n) if random_phase else np.zeros(n)
    )
    jumps = jump_rng.random((n, t_len)) < jump_rate
    jumps[:, 0] = False
    steps = np.arange(t_len, dtype=np.float64)

    if trajectory in _STATE_TRAJECTORIES:
        omega = angular_step(dt, period)
        positions = np.empty((n, t_len, 2))
        s = np.stack([np.cos(phase0), np.sin(phase0)], axis=-1)
        positions[:, 0] = s
        h = dt / rk4_substeps
        for t in range(1, t_len):
            if trajectory == "circular":
                s = _rotate(s, omega + jumps[:, t] * jump_angle)
            else:
                for _ in range(rk4_substeps):
                    s = _rk4_step(s, h, period, wobble)
                s = _rotate(s, jumps[:, t] * jump_angle)
            if process_noise > 0:
                s = s + process_noise * process_rng.standard_normal((n, 2))
            positions[:, t] = s
    else:
        jump_total = jump_angle * np.cumsum(jumps, axis=1)  # (N, T), radians of phase
        if trajectory == "square":
            laps = (phase0[:, None] + jump_total) / (2.0 * math.pi) + steps * dt / period
            positions = square_perimeter(laps)
        else:  # figure-eight
            theta = phase0[:, None] + jump_total + steps * dt * math.pi / period
            positions = np.stack([np.cos(theta), np.sin(theta) * np.cos(theta)], axis=-1)

    # Frames: clean render, then distortion.
    if distortion == "swirl":
        frames = render_swirled(positions, image_size, sigma, swirl_strength)
    else:
        frames = render(positions, image_size, sigma, flatten=True)
        if distortion == "half-flip":
            sq = frames.reshape(n, t_len, image_size, image_size)
            half = image_size // 2
            sq[:, :, :, half:] = sq[:, :, ::-1, half:].copy()
            frames = sq.reshape(n, t_len, image_size * image_size)
        elif distortion == "mlp":
            frames = random_mlp_renderer(image_size, distortion_seed)(frames)

    # Observation noise.
    if noise_type == "constant":
        levels = np.full((n, t_len), obs_noise)
    elif noise_type == "random":
        levels = noise_rng.uniform(0.0, 2.0 * obs_noise, size=(n, t_len))
    else:  # state-dependent
        levels = obs_noise * (1.0 + np.tanh(positions[..., 0]))
    levels = levels.astype(np.float32)
    if obs_noise > 0:
        noise = noise_rng.standard_normal(frames.shape, dtype=np.float32)
        frames = frames + noise * levels[..., None]
    frames = frames.astype(np.float32, copy=False)
    if not flatten:
        frames = frames.reshape(n, t_len, image_size, image_size, 1)

    config = dict(
        trajectory=trajectory,
        num_sequences=n,
        length=t_len,
        dt=dt,
        period=period,
        process_noise=process_noise,
        jump_rate=jump_rate,
        obs_noise=obs_noise,
        noise_type=noise_type,
        distortion=distortion,
        image_size=image_size,
        flatten=bool(flatten),
        seed=seed,
        random_phase=bool(random_phase),
        jump_angle=jump_angle,
        sigma=sigma,
        wobble=wobble,
        rk4_substeps=rk4_substeps,
        swirl_strength=swirl_strength,
        distortion_seed=distortion_seed,
    )
    return DotMotionData(
        frames=frames,
        positions=positions.astype(np.float32),
        noise_levels=levels,
        jumps=jumps,
        config=config,
    )


PRESETS = {
    # name: (generate() arguments, train sequences, test sequences, train seed, test seed)
    "circular": (dict(trajectory="circular", dt=0.1, period=2.0), 3200, 640, 1000, 1001),
    "circular-noisy": (
        dict(trajectory="circular", dt=0.1, period=2.0, obs_noise=0.2, jump_rate=0.05),
        3200,
        640,
        2000,
        2001,
    ),
    "square": (dict(trajectory="square", dt=0.2, period=4.0, obs_noise=0.1), 800, 160, 3000, 3001),
    "figure-eight": (dict(trajectory="figure-eight", dt=0.1, period=2.0), 3200, 640, 4000, 4001),
    "wobbly": (dict(trajectory="wobbly", dt=0.1, period=2.0), 3200, 640, 5000, 5001),
}
"""Named DotMotion datasets (all T = 100, 10×10 frames, random start phases).

* ``circular``: dt 0.1, period 2 (0.31416 rad/frame), noiseless; 3200 train / 640 test
  sequences; seeds 1000 / 1001.
* ``circular-noisy``: as ``circular`` plus constant observation noise 0.2 and 135° jumps
  at rate 0.05 per frame (about 5 per sequence); 3200 / 640; seeds 2000 / 2001.
* ``square``: dt 0.2, period 4, constant observation noise 0.1; 800 / 160; seeds 3000 / 3001.
* ``figure-eight``: dt 0.1, period 2 (θ advances π/20 per frame); 3200 / 640; seeds 4000 / 4001.
* ``wobbly``: dt 0.1, period 2, the swirl ODE integrated with RK4; 3200 / 640; seeds 5000 / 5001.
"""

SPLITS = ("train", "test")


def load(name, split="train", num_sequences=None, **overrides):
    """A named DotMotion dataset (see ``PRESETS``) for ``split`` ``"train"`` or ``"test"``.

    Train and test use distinct seeds (unlike the reference generator, which reused one),
    so the test set holds different start phases, jumps and noise. ``num_sequences``
    overrides the preset's size; other keyword arguments (``flatten=False``,
    ``distortion="swirl"``, ...) are passed on to :func:`generate`.

    Example:
        >>> train = load("circular", "train", num_sequences=16)
        >>> test = load("circular", "test", num_sequences=16)
        >>> bool((train.positions != test.positions).any())
        True
    """
    return load_preset(generate, PRESETS, name, split, num_sequences, overrides)
