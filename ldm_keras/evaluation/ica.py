"""Evaluation of blind source separation: Amari index and matched source correlation.

NumPy in, NumPy out (run after training on converted arrays). For recovering latent
states up to an affine map (identifiability), use :func:`~ldm_keras.evaluation.affine_r2`.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

from .._validation import check_matrix

__all__ = ["amari_index", "matched_correlation"]


def amari_index(unmixing, mixing):
    """Amari index of ``P = W A``: 0 iff ``P`` is a scaled permutation, at most 1.

    For the ``n × n`` product ``P = W A`` of an estimated unmixing matrix ``W`` (``n × d``,
    e.g. ``LinearICA.components_`` or ``FastICA.components_``) and the true mixing ``A``
    (``d × n``),

    .. math::

        a(P) = \\frac{1}{2n(n-1)} \\Big[\\sum_i \\Big(\\frac{\\sum_j |p_{ij}|}{\\max_k |p_{ik}|}
               - 1\\Big) + \\sum_j \\Big(\\frac{\\sum_i |p_{ij}|}{\\max_k |p_{kj}|} - 1\\Big)\\Big]

    (Amari, Cichocki & Yang 1996). Each bracketed ratio lies in ``[1, n]``, so the
    normalisation by ``2n(n-1)`` puts ``a`` in ``[0, 1]``: 0 exactly when every row and
    column of ``P`` has one non-zero entry (perfect separation up to scale, sign and
    order), 1 when all entries of ``P`` have equal magnitude. It is invariant to scaling
    and permuting the rows of ``W``. ``n = 1`` gives 0.

    Example:
        >>> a = np.array([[1.0, 0.7], [0.7, 1.0]])
        >>> amari_index(np.linalg.inv(a)[::-1] * 3.0, a)      # permuted, scaled
        0.0
    """
    w = check_matrix(unmixing, "unmixing")
    a = check_matrix(mixing, "mixing")
    if w.shape[1] != a.shape[0] or w.shape[0] != a.shape[1]:
        raise ValueError(
            "`unmixing` (n × d) and `mixing` (d × n) must give a square product W·A; "
            f"received shapes {w.shape} and {a.shape}.")
    p = np.abs(w @ a)
    n = p.shape[0]
    if n == 1:
        return 0.0
    row_max, col_max = p.max(axis=1), p.max(axis=0)
    if np.any(row_max == 0) or np.any(col_max == 0):
        raise ValueError("W·A has a zero row or column: the unmixing matrix is singular "
                         "on the mixing's range.")
    rows = np.sum(p.sum(axis=1) / row_max - 1.0)
    cols = np.sum(p.sum(axis=0) / col_max - 1.0)
    return float((rows + cols) / (2.0 * n * (n - 1)))


def matched_correlation(true_sources, estimated_sources, return_details=False):
    """Mean absolute correlation of the true sources with their best-matched estimates.

    ``C_ij = |corr(s_i, ŝ_j)|`` (Pearson, over samples); the one-to-one assignment
    ``π`` maximising ``Σ_i C_{i π(i)}`` is found by the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``), and the score is
    ``mean_i C_{i π(i)} ∈ [0, 1]`` (1: every source recovered up to scale and sign).
    Arrays are ``(N, n_true)`` and ``(N, n_est)`` with ``n_est ≥ n_true``; ``(batch, T,
    n)`` arrays are flattened over batch × time.

    Returns:
        The score (float); with ``return_details=True`` a dict with ``score``,
        ``per_source`` (``C_{i π(i)}``), ``assignment`` (``π``) and ``matrix`` (``C``).

    Example:
        >>> matched_correlation(s_true, ica.transform(x))      # close to 1: separated
    """
    s = np.asarray(true_sources, dtype="float64")
    e = np.asarray(estimated_sources, dtype="float64")
    s = s.reshape(-1, s.shape[-1]) if s.ndim == 3 else s
    e = e.reshape(-1, e.shape[-1]) if e.ndim == 3 else e
    s, e = check_matrix(s, "true_sources"), check_matrix(e, "estimated_sources")
    if s.shape[0] != e.shape[0] or s.shape[0] < 2:
        raise ValueError("`true_sources` and `estimated_sources` must hold the same number "
                         f"(≥ 2) of samples; received {s.shape} and {e.shape}.")
    if e.shape[1] < s.shape[1]:
        raise ValueError(f"Need at least as many estimated sources ({e.shape[1]}) as true "
                         f"sources ({s.shape[1]}).")
    sc, ec = s - s.mean(axis=0), e - e.mean(axis=0)
    sn, en = np.linalg.norm(sc, axis=0), np.linalg.norm(ec, axis=0)
    if np.any(sn == 0) or np.any(en == 0):
        raise ValueError("A source is constant: its correlation is undefined.")
    corr = np.abs((sc / sn).T @ (ec / en))
    rows, cols = linear_sum_assignment(corr, maximize=True)
    per = corr[rows, cols]
    if not return_details:
        return float(per.mean())
    return {"score": float(per.mean()), "per_source": per, "assignment": cols, "matrix": corr}
