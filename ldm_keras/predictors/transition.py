"""The transition matrix of the Kalman cell: its spectral radius and initialisation."""

import math
import random as python_random

import keras
import numpy as np
from keras import ops

from .._serialization import register
from .._validation import check_angle, check_positive

__all__ = ["TransitionInitializer", "rotation_blocks", "spectral_radius"]


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
    norm = ops.sum(a * a) ** 0.5
    # log ρ ≈ log c_K / 2^K = log ‖A‖ + Σ_k 2^-k log ‖M_{k-1}²‖ (the same sum, unrolled;
    # Python operators, so that eager PyTorch pays one dispatch per reduction only).
    log_rho = ops.log(norm + tiny)
    m = a / (norm + tiny)
    for k in range(1, int(iterations) + 1):
        m = m @ m
        norm = ops.sum(m * m) ** 0.5
        log_rho = log_rho + ops.log(norm + tiny) * (0.5 ** k)
        m = m / (norm + tiny)
    return ops.exp(log_rho)


def rotation_angles(state_dim, max_angle):
    """The angles ``φ_k = (k + 1)/⌊S/2⌋ · max_angle``, ``k = 0 … ⌊S/2⌋ - 1``, of
    :func:`rotation_blocks`."""
    pairs = state_dim // 2
    return [(k + 1) / pairs * max_angle for k in range(pairs)]


def rotation_blocks(state_dim, max_angle, radius=1.0):
    """Block-diagonal rotations at evenly spread angles, scaled by ``radius`` (NumPy).

    One 2 × 2 block ``radius · [[cos φ_k, -sin φ_k], [sin φ_k, cos φ_k]]`` per pair of
    state coordinates, ``φ_k = (k + 1)/⌊S/2⌋ · max_angle`` for ``k = 0 … ⌊S/2⌋ - 1`` (so
    the largest is ``max_angle``); for odd ``S`` a last 1 × 1 block ``radius``. Its
    eigenvalues are ``radius · e^{± i φ_k}``.

    Example:
        >>> rotation_blocks(4, math.pi / 8).round(3)    # blocks at π/16 and π/8
    """
    a = np.zeros((state_dim, state_dim), "float64")
    for k, phi in enumerate(rotation_angles(state_dim, max_angle)):
        c, s = math.cos(phi), math.sin(phi)
        a[2 * k:2 * k + 2, 2 * k:2 * k + 2] = radius * np.array([[c, -s], [s, c]])
    if state_dim % 2:
        a[-1, -1] = radius
    return a


@register
class TransitionInitializer(keras.initializers.Initializer):
    """Initial transition matrix ``A₀``: ``I + σ·N(0, 1)`` rescaled to a given spectral
    radius, or rotations at spread angles.

    * ``max_angle=None`` (default): ``A = I + σ·N(0, 1)``, then ``A ← A · radius / ρ(A)``
      with ``ρ`` from :func:`spectral_radius`. The reference uses ``σ = 0.1`` and
      ``radius = 1/1.1``: a slightly contracting, nearly identity map, whose rotation
      angles (``|arg λ|``) are small and random.
    * ``max_angle=φ`` (radians, ``0 < φ ≤ π``): ``A = radius ·`` block-diagonal rotations by
      ``φ_k = (k + 1)/⌊S/2⌋ · φ`` (:func:`rotation_blocks`; deterministic, ``σ`` and the
      seed are not used): the state pairs start at distinct frequencies up to ``φ``
      per step, so that a model of a signal with several frequencies does not start with
      all its pairs alike (pairs that start alike receive the same gradients).

    Example:
        >>> init = TransitionInitializer(spectral_radius=1 / 1.1, seed=0)
        >>> a = init((2, 2))
        >>> rot = TransitionInitializer(max_angle=math.pi / 8)((4, 4))  # π/16 and π/8
    """

    def __init__(self, spectral_radius=1.0 / 1.1, stddev=0.1, seed=None, max_angle=None):
        self.spectral_radius = check_positive(spectral_radius, "spectral_radius")
        self.stddev = check_positive(stddev, "stddev", allow_zero=True)
        self.max_angle = check_angle(max_angle, "max_angle")
        self.seed = seed
        # Like Keras' random initializers: an unseeded initializer draws its seed once,
        # from Python's generator (seeded by keras.utils.set_random_seed), so that it
        # never touches a global backend generator inside a traced function.
        self._draw_seed = seed if seed is not None else python_random.randint(1, int(1e9))

    def __call__(self, shape, dtype=None):
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"TransitionInitializer needs a square 2-d shape; received {shape}.")
        n = int(shape[0])
        if self.max_angle is not None:
            a = rotation_blocks(n, self.max_angle, self.spectral_radius)
            return ops.convert_to_tensor(a.astype(dtype or "float32"))
        noise = keras.random.normal((n, n), stddev=self.stddev, seed=self._draw_seed,
                                    dtype="float32")
        a = ops.eye(n, dtype="float32") + noise
        a = a * (self.spectral_radius / spectral_radius(a))
        return ops.cast(a, dtype or "float32")

    def get_config(self):
        return {"spectral_radius": self.spectral_radius, "stddev": self.stddev,
                "seed": self.seed, "max_angle": self.max_angle}

