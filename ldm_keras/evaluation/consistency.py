"""Consistency of two embeddings of the same inputs: R² of the best affine map, both ways.

Two training runs (two seeds, two recipes, two backends) that learn the same
representation up to an affine transformation embed the same inputs so that one
embedding is an affine function of the other. CEBRA reports this as the runs'
*consistency*; here it is the held-out R² of a least-squares affine map.

Example:
    >>> z_a = encoder_seed0.predict(x_test)
    >>> z_b = encoder_seed1.predict(x_test)
    >>> consistency(z_a, z_b)
    Consistency(a_to_b=0.93, b_to_a=0.91, mean=0.92)
"""

from collections import namedtuple

import numpy as np

from .._validation import check_features
from .dynamics import fit_affine_readout

__all__ = ["Consistency", "consistency"]

#: The result of :func:`consistency`: held-out R² of ``z_b ≈ A z_a + c`` (``a_to_b``), of
#: ``z_a ≈ B z_b + d`` (``b_to_a``), their ``mean``, and the numbers of samples the maps
#: were fitted on (``n_fit``) and scored on (``n_test``).
Consistency = namedtuple("Consistency", ["a_to_b", "b_to_a", "mean", "n_fit", "n_test"])


def _embedding(z, name):
    z = np.asarray(z)
    if z.ndim == 3:  # sequences (batch, time, features): every frame is a sample
        z = z.reshape(-1, z.shape[-1])
    if z.ndim != 2:
        raise ValueError(f"`{name}` must have shape (samples, features) or (batch, time, "
                         f"features); received shape {np.shape(z)}.")
    return check_features(z, name)


def _r2(y, pred, multioutput):
    ss_res = np.sum((y - pred) ** 2, axis=0)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    if multioutput == "variance_weighted":
        total = ss_tot.sum()
        return float(1.0 - ss_res.sum() / total) if total > 0 else float(ss_res.sum() == 0)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                  (ss_res == 0).astype("float64"))
    return float(np.mean(r2))


def consistency(z_a, z_b, test_fraction=0.5, seed=0, multioutput="uniform_average"):
    """R² of the best affine map between two embeddings of the same inputs, both ways.

    The rows of ``z_a`` ``(n, d_a)`` and ``z_b`` ``(n, d_b)`` must embed the same ``n``
    inputs in the same order. They are split at random (``numpy.random.default_rng(
    seed)``) into a fitting part and a held-out part of ``round(test_fraction · n)``
    rows. On the fitting part the least-squares affine maps

    .. math:: \\hat z_b = z_a A + c, \\qquad \\hat z_a = z_b B + d

    are fitted (:func:`~ldm_keras.evaluation.fit_affine_readout`), and each is scored
    on the held-out rows by

    .. math:: R^2 = \\frac1{d}\\sum_{j=1}^{d} \\Big(1 - \\frac{\\sum_i (y_{ij} -
              \\hat y_{ij})^2}{\\sum_i (y_{ij} - \\bar y_j)^2}\\Big)

    (``multioutput="uniform_average"``, scikit-learn's ``r2_score`` convention, a
    constant target dimension scoring 1 if predicted exactly, else 0) or by
    ``1 - Σ_ij (y - ŷ)² / Σ_ij (y - ȳ)²`` (``"variance_weighted"``). Scoring on held-out
    rows keeps the number honest when ``n`` is not much larger than the dimensions: an
    affine map with ``d + 1`` parameters per output fits the rows it was fitted on
    better than any others. 1 means the embeddings agree up to an affine map; values
    near 0 (or below) mean one says nothing linear about the other. The measure is not
    symmetric: a high-dimensional embedding predicts a low-dimensional one more
    easily than the reverse, so both directions are reported, and their mean.

    Args:
        z_a, z_b: embeddings of the same inputs, ``(n, d)`` or ``(batch, time, d)``.
        test_fraction: fraction of the rows held out for scoring, in ``(0, 1)``.
        seed: seed of the split.
        multioutput: ``"uniform_average"`` (default) or ``"variance_weighted"``.

    Returns:
        :data:`Consistency` ``(a_to_b, b_to_a, mean, n_fit, n_test)``.

    Raises:
        ValueError: for different numbers of rows, non-finite values, or a fitting part
            with no more rows than the larger dimension (the map would be
            under-determined).

    Example:
        >>> c = consistency(encoder_a.predict(x), encoder_b.predict(x))
        >>> c.mean, c.a_to_b, c.b_to_a
    """
    a, b = _embedding(z_a, "z_a"), _embedding(z_b, "z_b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"`z_a` and `z_b` must embed the same inputs (one row each); "
                         f"received {a.shape[0]} and {b.shape[0]} rows.")
    try:
        fraction = float(test_fraction)
    except (TypeError, ValueError):
        fraction = float("nan")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1); received {test_fraction!r}.")
    if multioutput not in ("uniform_average", "variance_weighted"):
        raise ValueError(f"`multioutput` must be 'uniform_average' or 'variance_weighted'; "
                         f"received {multioutput!r}.")
    n = a.shape[0]
    n_test = int(round(fraction * n))
    n_fit = n - n_test
    need = max(a.shape[1], b.shape[1]) + 1
    if n_test < 2 or n_fit <= need:
        raise ValueError(f"Too few rows ({n}) for test_fraction={test_fraction}: the affine "
                         f"maps need more than {need} fitting rows (got {n_fit}) and at least "
                         f"2 held-out rows (got {n_test}).")
    order = np.random.default_rng(seed).permutation(n)
    fit, test = order[:n_fit], order[n_fit:]
    w_ab, c_ab = fit_affine_readout(a[fit], b[fit])
    w_ba, c_ba = fit_affine_readout(b[fit], a[fit])
    a_to_b = _r2(b[test], a[test] @ w_ab + c_ab, multioutput)
    b_to_a = _r2(a[test], b[test] @ w_ba + c_ba, multioutput)
    return Consistency(a_to_b, b_to_a, 0.5 * (a_to_b + b_to_a), n_fit, n_test)
