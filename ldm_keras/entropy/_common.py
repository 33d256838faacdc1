"""Shared pieces of the entropy estimators: float32 casting, input checks, pairwise terms.

Everything pairwise is computed from one matrix product (``‖a‖² + ‖b‖² - 2 a bᵀ``), so
no estimator ever holds more than an ``N × M`` matrix (never ``N × M × d``). That form
rounds: ``‖a‖² + ‖a‖² - 2 aᵀa`` is a few ulps of ``‖a‖²`` rather than 0, and which few
differs between backends (XLA on CPU fuses the sum differently from TensorFlow and
PyTorch). Where an exact value matters it is restored: :func:`self_squared_distances`
sets the diagonal to exactly 0, and :func:`row_squared_distances` recomputes chosen
pairs from their differences (``N × d``, exact for duplicated points).
"""

import math

import numpy as np
from keras import ops

from .._validation import check_last_dim, check_min_batch, check_rank, static_shape

#: The largest float32 value: the bound on precisions (a larger one is ``inf`` in float32).
FLOAT32_MAX = float(np.finfo(np.float32).max)


def f32(x):
    """Cast to float32 (``None`` passes through)."""
    return None if x is None else ops.cast(x, "float32")


def check_batch(z, name="z", min_batch=1, why=""):
    """Rank-2 ``(batch, features)`` input with at least ``min_batch`` rows (when known)."""
    check_rank(z, 2, name, "(batch, features)")
    if min_batch > 1:
        check_min_batch(z, min_batch, name, why)


def check_centers(z, centers, name="centers"):
    """``centers`` must be rank 2 with the same feature dimension as ``z``."""
    check_rank(centers, 2, name, "(num_centers, features)")
    check_last_dim(centers, static_shape(z)[-1], name)


def num_rows(z):
    """Batch size of ``z`` as a float32 scalar (a Python float when it is static)."""
    n = static_shape(z)[0]
    if isinstance(n, int):
        return float(n)
    return ops.cast(ops.shape(z)[0], "float32")


def num_features(z):
    """Feature dimension of ``z`` (must be static)."""
    d = static_shape(z)[-1]
    if d is None:
        raise ValueError(
            f"the feature dimension of the input must be known; received shape {static_shape(z)}."
        )
    return int(d)


def check_float32_precision(value, name="precision"):
    """A finite number ``0 < value <= FLOAT32_MAX`` (as a float): the estimators compute
    in float32, where a larger precision is ``inf`` and the estimate NaN."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number; received {value!r}.") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"`{name}` must be a finite number > 0; received {value!r}.")
    if v > FLOAT32_MAX:
        raise ValueError(
            f"`{name}` must be at most {FLOAT32_MAX:.4g} (the largest float32 value; the "
            f"estimators compute in float32); received {value!r}."
        )
    return v


def squared_distances(a, b):
    """``D_ij = ‖a_i - b_j‖²`` as ``‖a_i‖² + ‖b_j‖² - 2 a_iᵀ b_j``, clamped at 0 (``N × M``)."""
    a2 = ops.sum(ops.square(a), axis=-1, keepdims=True)
    b2 = ops.sum(ops.square(b), axis=-1, keepdims=True)
    d2 = a2 + ops.transpose(b2) - 2.0 * ops.matmul(a, ops.transpose(b))
    return ops.maximum(d2, 0.0)


def self_squared_distances(z):
    """``D_ij = ‖z_i - z_j‖²`` of a batch with itself, the diagonal exactly 0 on every backend.

    :func:`squared_distances` leaves rounding noise on the diagonal (on JAX, ``3.7e21`` at
    precision ``1e30``); the diagonal is set explicitly (``where(i == j, 0, D)``, an
    ``N × N`` mask, no gradient through it).
    """
    d2 = squared_distances(z, z)
    n = ops.shape(z)[0]
    return ops.where(ops.eye(n, dtype="bool"), ops.zeros_like(d2), d2)


def row_squared_distances(z, index):
    """``‖z_i - z_{index_i}‖²`` per row, from the differences (``N × d``, no matrix product).

    Exact for duplicated points (0 on every backend), with the gradient of the
    difference form; ``index`` is an integer vector of row indices (no gradient).
    """
    diff = z - ops.take(z, index, axis=0)
    return ops.sum(ops.square(diff), axis=-1)


def covariance(z):
    """Unbiased sample covariance ``Zcᵀ Zc / (N - 1)`` of a batch (``d × d``)."""
    zc = z - ops.mean(z, axis=0, keepdims=True)
    return ops.matmul(ops.transpose(zc), zc) / (num_rows(z) - 1.0)
