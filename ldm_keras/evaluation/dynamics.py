"""Evaluation of learned dynamics: affine read-out R², learned rotation, interval coverage.

NumPy in, NumPy out (these run after training, on converted arrays). Used to score
predictive LDM models (docs/spec.md §6–7): a representation identifies the ground-truth
state up to an affine map when the R² of an affine read-out is close to 1.
"""

import numpy as np
from scipy import stats

from .._deprecation import deprecated_alias
from .._math import eigen_angles

__all__ = ["affine_r2", "eigen_angles", "fit_affine_readout", "interval_coverage",
           "rotation_per_step"]


def _as_2d(x, name):
    x = np.asarray(x, dtype="float64")
    if x.ndim == 3:
        return x.reshape(-1, x.shape[-1])
    if x.ndim == 2:
        return x
    if x.ndim == 1:
        return x[:, None]
    raise ValueError(
        f"`{name}` must have shape (N, F) or (batch, time, F); received shape {x.shape}."
    )


def _check_pair(latents, targets, lname, tname):
    z, y = _as_2d(latents, lname), _as_2d(targets, tname)
    if z.shape[0] != y.shape[0]:
        raise ValueError(
            f"`{lname}` and `{tname}` must hold the same number of samples; received "
            f"{np.shape(latents)} and {np.shape(targets)}."
        )
    if z.shape[0] < 2:
        raise ValueError(f"`{lname}` needs at least 2 samples; received {z.shape[0]}.")
    for arr, name in ((z, lname), (y, tname)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` must contain only finite values.")
    return z, y


def fit_affine_readout(latents, targets):
    """Least-squares affine map ``y ≈ z W + c`` from latents to targets.

    scikit-learn's ``LinearRegression``: ``min_{W,c} ‖z W + c - y‖²`` on centred data
    (the minimum-norm ``W`` when ``z`` is rank deficient), ``c = ȳ - z̄ W``.
    ``(batch, time, F)`` arrays are flattened to ``(batch·time, F)``.

    Returns:
        ``(W, c)`` of shapes ``(F_z, F_y)`` and ``(F_y,)``. A decoded position band is
        ``Wᵀ P W`` for a latent covariance ``P``.

    Example:
        >>> w, c = fit_affine_readout(z_train, positions_train)
        >>> decoded = z_test @ w + c
    """
    from sklearn.linear_model import LinearRegression

    z, y = _check_pair(latents, targets, "latents", "targets")
    reg = LinearRegression().fit(z, y)
    return reg.coef_.T.reshape(z.shape[1], y.shape[1]), reg.intercept_.reshape(y.shape[1])


def affine_r2(train_latents, train_targets, test_latents=None, test_targets=None):
    """R² of an affine (least squares, with intercept) read-out from latents to targets.

    Fits ``y ≈ z W + c`` on the training arrays (:func:`fit_affine_readout`) and scores

        R²_j = 1 - Σ_i (y_ij - ŷ_ij)² / Σ_i (y_ij - ȳ_j)²,   R² = mean_j R²_j

    (scikit-learn's ``r2_score``, the uniform average over target dimensions; a constant
    target dimension scores 1 if predicted exactly, else 0) on the held-out
    arrays when given, otherwise on the training arrays. Accepts ``(N, F)`` or
    ``(batch, time, F)``.

    Example:
        >>> affine_r2(z_train, pos_train, z_test, pos_test)    # close to 1: identified
    """
    w, c = fit_affine_readout(train_latents, train_targets)
    if (test_latents is None) != (test_targets is None):
        raise ValueError("Give both `test_latents` and `test_targets`, or neither.")
    if test_latents is None:
        z, y = _check_pair(train_latents, train_targets, "train_latents", "train_targets")
    else:
        z, y = _check_pair(test_latents, test_targets, "test_latents", "test_targets")
        if z.shape[1] != w.shape[0] or y.shape[1] != w.shape[1]:
            raise ValueError(
                f"Test arrays must have the training feature sizes ({w.shape[0]} latent, "
                f"{w.shape[1]} target); received {np.shape(test_latents)} and "
                f"{np.shape(test_targets)}."
            )
    from sklearn.metrics import r2_score

    return float(r2_score(y, z @ w + c))


rotation_per_step = deprecated_alias(eigen_angles, "rotation_per_step",
                                     "ldm_keras.evaluation.dynamics")


def interval_coverage(targets, means, covs, level=0.95):
    """How often targets fall inside the predicted Gaussian intervals.

    For predictions ``N(m, C)`` and targets ``y`` (shape ``(..., L)``; ``covs`` either
    full ``(..., L, L)`` or diagonal variances ``(..., L)``):

    * marginal: ``|y_j - m_j| ≤ z_q · sqrt(C_jj)`` with ``z_q = Φ⁻¹(½ + level/2)``, the
      central interval of each dimension;
    * ellipsoid: ``(y - m)ᵀ C⁻¹ (y - m) ≤ χ²_L⁻¹(level)`` (Mahalanobis distance, via a
      Cholesky solve).

    Calibrated predictions give coverage ≈ ``level`` for both.

    Returns:
        A dict: ``"marginal"`` (per-dimension coverage, shape ``(L,)``),
        ``"marginal_mean"`` (its mean) and ``"ellipsoid"`` (a float).

    Example:
        >>> out = kf(z)
        >>> interval_coverage(z_next, out["prediction"], out["prediction_cov"], level=0.9)
    """
    y = np.asarray(targets, dtype="float64")
    m = np.asarray(means, dtype="float64")
    c = np.asarray(covs, dtype="float64")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"`level` must lie in the open interval (0, 1); received {level!r}.")
    if y.shape != m.shape or y.ndim < 1:
        raise ValueError(
            f"`targets` and `means` must have the same shape (..., L); received {y.shape} "
            f"and {m.shape}."
        )
    dim = y.shape[-1]
    if c.shape == m.shape:
        var = c
        full = None
    elif c.shape == m.shape + (dim,):
        var = np.diagonal(c, axis1=-2, axis2=-1)
        full = c
    else:
        raise ValueError(
            f"`covs` must have shape {m.shape + (dim,)} (full) or {m.shape} (diagonal); "
            f"received {c.shape}."
        )
    for arr, name in ((y, "targets"), (m, "means"), (c, "covs")):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` must contain only finite values.")
    if np.any(var <= 0):
        raise ValueError("`covs` must have positive variances.")
    err = (y - m).reshape(-1, dim)
    var = var.reshape(-1, dim)
    zq = stats.norm.ppf(0.5 + float(level) / 2.0)
    inside = np.abs(err) <= zq * np.sqrt(var)
    marginal = inside.mean(axis=0)
    if full is None:
        maha = np.sum(err ** 2 / var, axis=-1)
    else:
        chol = np.linalg.cholesky(full.reshape(-1, dim, dim))
        white = np.linalg.solve(chol, err[..., None])[..., 0]  # triangular system
        maha = np.sum(white ** 2, axis=-1)
    ellipsoid = float(np.mean(maha <= stats.chi2.ppf(float(level), dim)))
    return {"marginal": marginal, "marginal_mean": float(marginal.mean()), "ellipsoid": ellipsoid}
