"""Shared pieces of the entropy estimators: float32 casting, input checks, pairwise terms.

Everything pairwise is computed from one matrix product (``‖a‖² + ‖b‖² - 2 a bᵀ``), so
no estimator ever holds more than an ``N × M`` matrix (never ``N × M × d``).
"""


from keras import ops

from .._validation import check_last_dim, check_min_batch, check_rank, static_shape


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


def squared_distances(a, b):
    """``D_ij = ‖a_i - b_j‖²`` as ``‖a_i‖² + ‖b_j‖² - 2 a_iᵀ b_j``, clamped at 0 (``N × M``)."""
    a2 = ops.sum(ops.square(a), axis=-1, keepdims=True)
    b2 = ops.sum(ops.square(b), axis=-1, keepdims=True)
    d2 = a2 + ops.transpose(b2) - 2.0 * ops.matmul(a, ops.transpose(b))
    return ops.maximum(d2, 0.0)


def covariance(z):
    """Unbiased sample covariance ``Zcᵀ Zc / (N - 1)`` of a batch (``d × d``)."""
    zc = z - ops.mean(z, axis=0, keepdims=True)
    return ops.matmul(ops.transpose(zc), zc) / (num_rows(z) - 1.0)
