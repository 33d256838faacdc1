"""Rendering of Gaussian-dot frames from world positions (DotMotion, the pendulum).

Each frame is an ``image_size × image_size`` image (10×10 by default, flattened to 100
values) of an isotropic Gaussian blob of width ``sigma`` = 1 pixel, centred where the
dot's world position ``s = (x, y) ∈ [-3, 3]²`` maps onto the pixel grid.

**World → pixel map.** Pixel centres sit on a regular grid that spans the world square:
world ``-3`` is the centre of the first pixel and ``+3`` the centre of the last,

    col = (x + 3) / 6 · (S - 1),        row = (3 - y) / 6 · (S - 1),

so ``x`` grows to the right, ``y`` grows upwards, and the origin is the image centre
(``(4.5, 4.5)`` for S = 10, 1.5 px per world unit). The frame is

    frame[row, col] = exp(-((row - row(s))² + (col - col(s))²) / (2 sigma²)),

peak 1 when the dot sits on a pixel centre. See :func:`world_to_pixel` and :func:`render`.

**Distortions** (:func:`ldm_keras.data.dot_motion.generate` applies them to the clean
frame, before the observation noise):

* ``"swirl"`` — each pixel at world position ``p`` shows the clean scene at
  ``R(α(p)) p`` with ``α(p) = swirl_strength · exp(-|p|²/4)`` (a swirl of the image
  coordinates, strongest at the centre, radius 2 world units); ``swirl_strength=0``
  gives the undistorted frame;
* ``"half-flip"`` — the right half of the image (columns ``≥ S // 2``) is flipped upside
  down, a discontinuous but invertible rearrangement;
* ``"mlp"`` — a frozen random MLP renderer ``frame ↦ W₂ tanh(W₁ frame + b₁)`` (S² → S² → S²,
  ``W₁ ~ N(0, 1)``, ``b₁ ~ N(0, 0.5²)``, ``W₂ ~ N(0, 1/S²)``), drawn from
  ``distortion_seed`` only, so train and test splits share the same renderer
  (see :func:`random_mlp_renderer`).

Example:
    >>> frames = render(np.zeros((3, 2)))          # three frames of a centred dot, (3, 100)
"""

import math

import numpy as np

from .._validation import check_int, check_positive

__all__ = ["WORLD_HALF_WIDTH", "random_mlp_renderer", "render", "render_swirled",
           "world_to_pixel"]

WORLD_HALF_WIDTH = 3.0
"""The world square ``[-3, 3]²`` maps onto the image grid."""


def world_to_pixel(positions, image_size=10):
    """Map world positions in ``[-3, 3]²`` to fractional pixel coordinates ``(row, col)``.

    ``col = (x + 3)/6 · (S - 1)`` and ``row = (3 - y)/6 · (S - 1)``: world ±3 are the
    centres of the border pixels, ``y`` points up. Returns an array of shape
    ``positions.shape`` whose last axis is ``(row, col)``.

    Example:
        >>> world_to_pixel(np.array([0.0, 0.0]))
        array([4.5, 4.5])
    """
    image_size = check_int(image_size, "image_size", minimum=2)
    p = np.asarray(positions, dtype=np.float64)
    if p.shape[-1:] != (2,):
        raise ValueError(
            f"`positions` must have a last axis of size 2 (x, y); received shape {p.shape}."
        )
    scale = (image_size - 1) / (2.0 * WORLD_HALF_WIDTH)
    col = (p[..., 0] + WORLD_HALF_WIDTH) * scale
    row = (WORLD_HALF_WIDTH - p[..., 1]) * scale
    return np.stack([row, col], axis=-1)


def _pixel_world_grid(image_size):
    """World coordinates ``(x, y)`` of every pixel centre, shape ``(S*S, 2)``, row-major."""
    axis = np.linspace(-WORLD_HALF_WIDTH, WORLD_HALF_WIDTH, image_size)
    x = np.tile(axis, image_size)  # column index fastest
    y = np.repeat(axis[::-1], image_size)  # row 0 is the top (y = +3)
    return np.stack([x, y], axis=-1)


def render(positions, image_size=10, sigma=1.0, flatten=True):
    """Render Gaussian-dot frames for world positions of shape ``(..., 2)``.

    ``frame[row, col] = exp(-((row - r)² + (col - c)²) / (2 sigma²))`` with ``(r, c)`` from
    :func:`world_to_pixel`; computed separably (an outer product of two 1-D Gaussians), in
    float32. Returns shape ``(..., S*S)`` when ``flatten`` else ``(..., S, S, 1)``.

    Example:
        >>> render(np.zeros((3, 2))).shape
        (3, 100)
    """
    sigma = check_positive(sigma, "sigma")
    rc = world_to_pixel(positions, image_size).astype(np.float32)
    grid = np.arange(image_size, dtype=np.float32)
    inv = np.float32(1.0 / (2.0 * sigma * sigma))
    g_row = np.exp(-((grid - rc[..., 0:1]) ** 2) * inv)  # (..., S)
    g_col = np.exp(-((grid - rc[..., 1:2]) ** 2) * inv)  # (..., S)
    frames = g_row[..., :, None] * g_col[..., None, :]  # (..., S, S)
    if flatten:
        return frames.reshape(frames.shape[:-2] + (image_size * image_size,))
    return frames[..., None]


def render_swirled(positions, image_size, sigma, strength):
    """Frames of the swirl distortion, flattened, float32 (see the module docstring)."""
    grid = _pixel_world_grid(image_size)
    angle = strength * np.exp(-np.sum(grid**2, axis=-1) / 4.0)
    c, s = np.cos(angle), np.sin(angle)
    warped = np.stack([c * grid[:, 0] - s * grid[:, 1], s * grid[:, 0] + c * grid[:, 1]], -1)
    warped = warped.astype(np.float32)
    sigma_world = sigma * 2.0 * WORLD_HALF_WIDTH / (image_size - 1)
    p = np.asarray(positions, dtype=np.float32)
    # |w - p|² = |w|² - 2 w·p + |p|², never an (N, T, P, 2) difference tensor.
    d2 = (
        np.sum(warped**2, -1)
        - 2.0 * np.einsum("...k,pk->...p", p, warped)
        + np.sum(p**2, -1, keepdims=True)
    )
    return np.exp(-np.maximum(d2, 0.0) / np.float32(2.0 * sigma_world**2))


def random_mlp_renderer(image_size=10, seed=0):
    """A frozen random MLP ``f ↦ W₂ tanh(W₁ f + b₁)`` acting on flattened frames.

    Shapes ``S² → S² → S²``; ``W₁ ~ N(0, 1)``, ``b₁ ~ N(0, 0.5²)``, ``W₂ ~ N(0, 1/S²)``, all
    drawn from ``numpy.random.default_rng(seed)``. Returns a function of arrays of shape
    ``(..., S*S)`` (float32 in, float32 out).

    Example:
        >>> mlp = random_mlp_renderer(10, seed=0)
        >>> mlp(render(np.zeros((2, 2)))).shape
        (2, 100)
    """
    image_size = check_int(image_size, "image_size", minimum=2)
    rng = np.random.default_rng(seed)
    p = image_size * image_size
    w1 = rng.standard_normal((p, p)).astype(np.float32)
    b1 = (0.5 * rng.standard_normal(p)).astype(np.float32)
    w2 = (rng.standard_normal((p, p)) / math.sqrt(p)).astype(np.float32)

    def mlp(frames):
        f = np.asarray(frames, dtype=np.float32)
        flat = f.reshape(-1, p)  # one 2-D matmul is much faster than a batched one
        out = np.tanh(flat @ w1.T + b1) @ w2.T
        return out.reshape(f.shape[:-1] + (p,)).astype(np.float32, copy=False)

    return mlp
