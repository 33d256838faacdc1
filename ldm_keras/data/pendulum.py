"""Pendulum videos: a DotMotion-style bob swinging on a nonlinear pendulum.

The angle ``θ`` (0 = hanging straight down) and angular velocity ``ω`` follow

    dθ/dt = ω,     dω/dt = -ω₀² sin θ - γ ω,      ω₀ = 2π / period,

integrated with classical RK4 (``rk4_substeps`` sub-steps per frame), plus optional
Gaussian noise ``N(0, process_noise²)`` on ``ω`` after each frame. ``period`` is the
small-angle period; large swings are slower (the period grows with the amplitude), which
makes this a genuinely nonlinear latent dynamics. The bob sits at the world position

    s = arm · (sin θ, -cos θ)      (arm = 2, inside the [-3, 3]² world),

and is rendered exactly like DotMotion (:func:`ldm_keras.data.dot_motion.render`: a
σ = 1 px Gaussian blob on a 10×10 grid; world ±3 are the border-pixel centres).
Observation noise is constant Gaussian with std ``obs_noise``.

Each sequence starts at rest at ``θ₀ ~ Uniform(-max_angle, max_angle)`` (default 2.5 rad,
so that some swings are far from the linear regime). ``seed`` draws the start angles and
both noises from independent streams; the presets (:func:`load`) use distinct train and
test seeds.

Example:
    >>> from ldm_keras.data import pendulum
    >>> d = pendulum.generate(num_sequences=4, length=50, seed=0)
    >>> d.frames.shape, d.angles.shape
    ((4, 50, 100), (4, 50))
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._validation import check_int, check_positive
from ._presets import FieldAccess, load_preset
from .render import render

__all__ = ["PRESETS", "PendulumData", "energy", "generate", "load"]


@dataclasses.dataclass
class PendulumData(FieldAccess):
    """Pendulum frames and the ground truth that generated them.

    Attributes:
        frames: float32 ``(N, T, S*S)`` (or ``(N, T, S, S, 1)`` when not flattened).
        positions: float32 ``(N, T, 2)``, world position of the bob.
        angles, angular_velocities: float32 ``(N, T)``, the latent state ``(θ, ω)``.
        config: the arguments that produced the data.
    """

    frames: np.ndarray
    positions: np.ndarray
    angles: np.ndarray
    angular_velocities: np.ndarray
    config: dict



def energy(angles, angular_velocities, period=2.0):
    """Mechanical energy per unit ``m·arm²``: ``E = ω²/2 + ω₀² (1 - cos θ)``.

    Conserved when ``damping = 0`` and ``process_noise = 0``.

    Example:
        >>> float(energy(0.0, 1.0))
        0.5
    """
    omega0 = 2.0 * math.pi / check_positive(period, "period")
    theta = np.asarray(angles, dtype=np.float64)
    vel = np.asarray(angular_velocities, dtype=np.float64)
    return 0.5 * vel**2 + omega0**2 * (1.0 - np.cos(theta))


def _field(theta, vel, omega0_sq, damping):
    return vel, -omega0_sq * np.sin(theta) - damping * vel


def generate(
    num_sequences=32,
    length=100,
    dt=0.1,
    period=2.0,
    damping=0.0,
    process_noise=0.0,
    obs_noise=0.0,
    max_angle=2.5,
    image_size=10,
    flatten=True,
    seed=0,
    *,
    arm=2.0,
    sigma=1.0,
    rk4_substeps=4,
):
    """Generate pendulum videos (formulas in the module docstring).

    Args:
        num_sequences, length: ``N`` sequences of ``T`` frames.
        dt: time between frames; period: small-angle period ``2π/ω₀``.
        damping: ``γ ≥ 0``; process_noise: std of the noise added to ``ω`` per frame.
        obs_noise: std of the Gaussian pixel noise.
        max_angle: start angles are uniform in ``[-max_angle, max_angle]`` (< π).
        image_size, flatten, sigma: as in :func:`ldm_keras.data.dot_motion.generate`.
        seed: seed of the start angles and noises.
        arm: pendulum length in world units (the bob stays inside [-3, 3]² for arm ≤ 3).
        rk4_substeps: RK4 sub-steps per frame.

    Returns:
        :class:`PendulumData`.

    Example:
        >>> d = generate(num_sequences=2, length=10, damping=0.1, seed=1)
        >>> d.positions.shape
        (2, 10, 2)
    """
    n = check_int(num_sequences, "num_sequences", minimum=1)
    t_len = check_int(length, "length", minimum=1)
    dt = check_positive(dt, "dt")
    period = check_positive(period, "period")
    damping = check_positive(damping, "damping", allow_zero=True)
    process_noise = check_positive(process_noise, "process_noise", allow_zero=True)
    obs_noise = check_positive(obs_noise, "obs_noise", allow_zero=True)
    max_angle = check_positive(max_angle, "max_angle", allow_zero=True)
    if max_angle >= math.pi:
        raise ValueError(f"`max_angle` must be < π (upside down); received {max_angle!r}.")
    arm = check_positive(arm, "arm")
    if arm > 3.0:
        raise ValueError(f"`arm` must be <= 3 so the bob stays in the world square; received {arm!r}.")
    image_size = check_int(image_size, "image_size", minimum=2)
    rk4_substeps = check_int(rk4_substeps, "rk4_substeps", minimum=1)

    init_rng, process_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    omega0_sq = (2.0 * math.pi / period) ** 2
    theta = init_rng.uniform(-max_angle, max_angle, size=n)
    vel = np.zeros(n)
    angles = np.empty((n, t_len))
    velocities = np.empty((n, t_len))
    angles[:, 0], velocities[:, 0] = theta, vel
    h = dt / rk4_substeps
    for t in range(1, t_len):
        for _ in range(rk4_substeps):
            k1 = _field(theta, vel, omega0_sq, damping)
            k2 = _field(theta + 0.5 * h * k1[0], vel + 0.5 * h * k1[1], omega0_sq, damping)
            k3 = _field(theta + 0.5 * h * k2[0], vel + 0.5 * h * k2[1], omega0_sq, damping)
            k4 = _field(theta + h * k3[0], vel + h * k3[1], omega0_sq, damping)
            theta = theta + h / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            vel = vel + h / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        if process_noise > 0:
            vel = vel + process_noise * process_rng.standard_normal(n)
        angles[:, t], velocities[:, t] = theta, vel

    positions = arm * np.stack([np.sin(angles), -np.cos(angles)], axis=-1)
    frames = render(positions, image_size, sigma, flatten=True)
    if obs_noise > 0:
        frames = frames + obs_noise * noise_rng.standard_normal(frames.shape, dtype=np.float32)
    frames = frames.astype(np.float32, copy=False)
    if not flatten:
        frames = frames.reshape(n, t_len, image_size, image_size, 1)
    config = dict(
        num_sequences=n, length=t_len, dt=dt, period=period, damping=damping,
        process_noise=process_noise, obs_noise=obs_noise, max_angle=max_angle,
        image_size=image_size, flatten=bool(flatten), seed=seed, arm=arm, sigma=sigma,
        rk4_substeps=rk4_substeps,
    )
    return PendulumData(
        frames=frames,
        positions=positions.astype(np.float32),
        angles=angles.astype(np.float32),
        angular_velocities=velocities.astype(np.float32),
        config=config,
    )


PRESETS = {
    # name: (generate() arguments, train sequences, test sequences, train seed, test seed)
    "pendulum": (dict(dt=0.1, period=2.0, max_angle=2.5), 3200, 640, 6000, 6001),
    "pendulum-noisy": (
        dict(dt=0.1, period=2.0, max_angle=2.5, damping=0.05, process_noise=0.1, obs_noise=0.1),
        3200,
        640,
        7000,
        7001,
    ),
}
"""Named pendulum datasets (T = 100, 10×10 frames, dt 0.1, small-angle period 2):

* ``pendulum``: frictionless, noiseless, start angles in ±2.5 rad; 3200 / 640 sequences;
  seeds 6000 / 6001.
* ``pendulum-noisy``: damping 0.05, process noise 0.1 on ω, pixel noise 0.1; 3200 / 640;
  seeds 7000 / 7001.
"""


def load(name="pendulum", split="train", num_sequences=None, **overrides):
    """A named pendulum dataset (``PRESETS``) for ``split`` ``"train"`` or ``"test"``.

    Example:
        >>> d = load("pendulum", "test", num_sequences=4)
        >>> d.config["seed"]
        6001
    """
    return load_preset(generate, PRESETS, name, split, num_sequences, overrides)
