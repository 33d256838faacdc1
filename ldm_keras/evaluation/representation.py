"""Label-free quality measures of an embedding: effective rank, per-dimension spread,
alignment and uniformity.

NumPy in, floats (or NumPy arrays) out, computed in float64. They need no labels, so
they can watch an embedding while it trains
(:class:`ldm_keras.callbacks.RepresentationMonitor`) and show a collapse as it happens:
a collapsed embedding (every sample mapped to one point, or to a low-dimensional
subspace) has an effective rank near 1 (or far below the latent size) and a
per-dimension standard deviation near 0.

* :func:`effective_rank` — RankMe (Garrido et al., ICML 2023);
* :func:`dimension_std` — the standard deviation of each latent dimension of the
  L2-normalised embeddings (as in SimSiam, Chen & He 2021: ``≈ 1/√d`` for a spread-out
  embedding, 0 for a collapsed one);
* :func:`alignment` and :func:`uniformity` — Wang & Isola (ICML 2020), on
  L2-normalised embeddings.

Example:
    >>> z = encoder.predict(x)
    >>> effective_rank(z), dimension_std(z).mean(), uniformity(z)
    >>> alignment(encoder.predict(view1), encoder.predict(view2))
"""

import numpy as np

from .._validation import check_features

__all__ = ["alignment", "dimension_std", "effective_rank", "normalize_rows", "uniformity"]


def _embeddings(z, name="z", min_samples=1):
    z = check_features(z, name)
    if z.shape[0] < min_samples:
        raise ValueError(f"`{name}` needs at least {min_samples} samples; received "
                         f"{z.shape[0]}.")
    if z.shape[1] < 1:
        raise ValueError(f"`{name}` needs at least one feature; received shape {z.shape}.")
    return z


def normalize_rows(z, epsilon=1e-12):
    """``z_i / max(‖z_i‖, ε)``: each embedding projected onto the unit sphere.

    Example:
        >>> normalize_rows(np.array([[3.0, 4.0]]))      # [[0.6, 0.8]]
    """
    z = np.asarray(z, dtype="float64")
    return z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), float(epsilon))


def effective_rank(z, epsilon=1e-7, center=False):
    """RankMe: the exponential of the entropy of the normalised singular values.

    With ``σ_1 ≥ … ≥ σ_m`` the singular values of the ``(n, d)`` embedding matrix ``Z``
    (``m = min(n, d)``; not centred, as in RankMe, unless ``center=True``),

    .. math::

        p_k = \\frac{σ_k}{\\sum_j σ_j} + ε, \\qquad
        \\operatorname{rank}_{\\mathrm{eff}}(Z) = \\exp\\Big(-\\sum_{k=1}^{m} p_k \\log p_k\\Big)

    (Garrido, Balestriero, Najman & LeCun, "RankMe", ICML 2023; ``ε = 1e-7`` as there).
    It lies in ``[1, m]`` (up to ε): ``m`` when all singular values are equal, 1 for a
    rank-one matrix, e.g. every sample mapped to the same point. A zero matrix gives 1.

    Args:
        z: embeddings ``(n, d)``.
        epsilon: ``ε`` (default 1e-7).
        center: subtract the mean embedding first (default False: a constant offset
            then counts as one direction, as in RankMe).

    Example:
        >>> effective_rank(np.eye(8))          # ≈ 8
        >>> effective_rank(np.ones((100, 8)))  # ≈ 1 (collapsed)
    """
    z = _embeddings(z)
    if center:
        z = z - z.mean(axis=0)
    s = np.linalg.svd(z, compute_uv=False)
    total = s.sum()
    if total <= 0:
        return 1.0
    p = s / total + float(epsilon)
    return float(np.exp(-np.sum(p * np.log(p))))


def dimension_std(z, normalize=True, epsilon=1e-12):
    """Standard deviation of each latent dimension over the samples, ``(d,)``.

    ``std_j = sqrt(mean_i (ẑ_ij - mean_i ẑ_ij)²)`` (population std, ``ddof=0``) of the
    L2-normalised embeddings ``ẑ_i = z_i / max(‖z_i‖, ε)`` (``normalize=True``, the
    default) or of the raw ``z``. On the unit sphere the values are scale-free: for
    embeddings spread evenly over the sphere of ``R^d`` each is ``≈ 1/√d``; a collapsed
    embedding gives 0 (Chen & He, "SimSiam", CVPR 2021, Fig. 2).

    Example:
        >>> s = dimension_std(z)
        >>> s.min(), s.mean() * np.sqrt(z.shape[1])     # the latter ≈ 1 when spread out
    """
    z = _embeddings(z)
    if normalize:
        z = normalize_rows(z, epsilon)
    return z.std(axis=0)


def alignment(z1, z2, alpha=2.0, normalize=True, epsilon=1e-12):
    """Wang & Isola's alignment: the mean distance between positive pairs.

    .. math:: \\mathcal{L}_{\\mathrm{align}} = \\frac1n \\sum_i \\lVert ẑ^{(1)}_i - ẑ^{(2)}_i
              \\rVert_2^{α}

    with ``ẑ`` the L2-normalised embeddings (``normalize=True``) of the two views of
    sample ``i`` (Wang & Isola, ICML 2020; ``α = 2``). Lower is better aligned; in
    ``[0, 2^α]`` on the sphere.

    Example:
        >>> alignment(encoder.predict(view1), encoder.predict(view2))
    """
    a, b = _embeddings(z1, "z1"), _embeddings(z2, "z2")
    if a.shape != b.shape:
        raise ValueError(f"`z1` and `z2` must have the same shape (one row per positive "
                         f"pair); received {a.shape} and {b.shape}.")
    alpha = float(alpha)
    if not alpha > 0:
        raise ValueError(f"`alpha` must be > 0; received {alpha!r}.")
    if normalize:
        a, b = normalize_rows(a, epsilon), normalize_rows(b, epsilon)
    return float(np.mean(np.linalg.norm(a - b, axis=1) ** alpha))


def uniformity(z, t=2.0, normalize=True, epsilon=1e-12, block_size=1024):
    """Wang & Isola's uniformity: the log of the mean Gaussian potential of all pairs.

    .. math:: \\mathcal{L}_{\\mathrm{uniform}} = \\log \\frac{2}{n(n-1)} \\sum_{i<j}
              e^{-t \\lVert ẑ_i - ẑ_j \\rVert_2^2}

    over the distinct pairs of the L2-normalised embeddings (``normalize=True``;
    Wang & Isola, ICML 2020; ``t = 2``). Lower is more uniform: 0 for a collapsed
    embedding (every distance 0), never below ``-4t`` on the unit sphere (where every
    squared distance is at most 4). Computed as a log-sum-exp over row blocks of ``block_size`` (memory
    ``block_size × n``, never ``n × n``).

    Example:
        >>> uniformity(encoder.predict(x))       # e.g. -3.5 for a spread-out embedding
    """
    z = _embeddings(z, min_samples=2)
    t = float(t)
    if not t > 0:
        raise ValueError(f"`t` must be > 0; received {t!r}.")
    if normalize:
        z = normalize_rows(z, epsilon)
    n = z.shape[0]
    sq = np.sum(z * z, axis=1)
    block_size = max(1, int(block_size))
    running = -np.inf
    for start in range(0, n, block_size):
        rows = slice(start, min(start + block_size, n))
        d2 = np.maximum(sq[rows, None] + sq[None, :] - 2.0 * z[rows] @ z.T, 0.0)
        # keep the pairs i < j only (the upper triangle of the full matrix)
        i = np.arange(rows.start, rows.stop)[:, None]
        j = np.arange(n)[None, :]
        e = np.where(j > i, -t * d2, -np.inf)
        m = np.max(e)
        if np.isfinite(m):
            block = m + np.log(np.sum(np.exp(e - m)))
            running = np.logaddexp(running, block)
    return float(running - np.log(n * (n - 1) / 2.0))
