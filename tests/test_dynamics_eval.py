"""Dynamics evaluation: affine R² vs NumPy least squares (the read-out is scikit-learn's
LinearRegression + r2_score), eigen-angles vs SciPy, coverage vs SciPy."""

import numpy as np
import pytest
from scipy import linalg, stats

from ldm_keras.evaluation.dynamics import (
    affine_r2,
    eigen_angles,
    fit_affine_readout,
    interval_coverage,
)


class _NumpyAffine:
    """Least squares with an intercept column (NumPy lstsq): the independent reference."""

    def fit(self, z, y):
        sol, *_ = np.linalg.lstsq(np.c_[z, np.ones(len(z))], y, rcond=None)
        self.coef_, self.intercept_ = sol[:-1].T, sol[-1]
        return self

    def predict(self, z):
        return z @ self.coef_.T + self.intercept_


def _r2(y, pred):
    """Mean over target columns of 1 - SS_res / SS_tot (constant column: 1 if exact, else 0)."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    y, pred = y.reshape(len(y), -1), pred.reshape(len(pred), -1)
    res = ((y - pred) ** 2).sum(0)
    tot = ((y - y.mean(0)) ** 2).sum(0)
    exact = np.isclose(res, 0.0, atol=1e-20)
    return float(np.mean(np.where(tot > 0, 1 - res / np.where(tot > 0, tot, 1), exact * 1.0)))


def _affine_data(rng, n, noise):
    s = rng.normal(size=(n, 2))
    m = rng.normal(size=(2, 4))
    z = s @ m + 0.5 + noise * rng.normal(size=(n, 4))
    return z, s


def test_affine_r2_matches_numpy_least_squares_train_and_test(rng):
    z, s = _affine_data(rng, 300, 0.5)
    zt, st = _affine_data(np.random.default_rng(1), 200, 0.5)
    zt, st = zt, st @ np.array([[1.0, 0.2], [0.0, 1.0]])  # a mismatch so test R² < train R²
    reg = _NumpyAffine().fit(z, s)
    np.testing.assert_allclose(affine_r2(z, s), _r2(s, reg.predict(z)), rtol=1e-10)
    np.testing.assert_allclose(affine_r2(z, s, zt, st), _r2(st, reg.predict(zt)),
                               rtol=1e-10)
    w, c = fit_affine_readout(z, s)
    np.testing.assert_allclose(w, reg.coef_.T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(c, reg.intercept_, rtol=1e-8, atol=1e-10)


def test_affine_r2_accepts_sequences_and_is_one_for_affine_maps(rng):
    s = rng.normal(size=(4, 25, 2))
    z = s @ rng.normal(size=(2, 3)) - 2.0
    assert affine_r2(z, s) == pytest.approx(1.0, abs=1e-10)
    want = _r2(s.reshape(-1, 2),
                    _NumpyAffine().fit(z.reshape(-1, 3) ** 3, s.reshape(-1, 2))
                    .predict(z.reshape(-1, 3) ** 3))
    np.testing.assert_allclose(affine_r2(z ** 3, s), want, rtol=1e-10)


def test_affine_r2_constant_target_convention(rng):
    z = rng.normal(size=(50, 2))
    y = np.stack([z[:, 0] * 2 + 1, np.full(50, 3.0)], axis=1)
    np.testing.assert_allclose(affine_r2(z, y), _r2(y, _NumpyAffine().fit(z, y)
                                                         .predict(z)), rtol=1e-10)


def test_eigen_angles_matches_scipy(rng):
    th = 0.3142
    a = 0.97 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    np.testing.assert_allclose(eigen_angles(a), [th, -th], rtol=1e-12)
    m = rng.normal(size=(3, 5, 5))
    got = eigen_angles(m)
    want = np.stack([np.sort(np.angle(linalg.eigvals(x)))[::-1] for x in m])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_interval_coverage_against_scipy(rng):
    n, d = 400, 3
    means = rng.normal(size=(n, d))
    w = rng.normal(size=(n, d, d))
    covs = w @ w.transpose(0, 2, 1) + 0.3 * np.eye(d)
    targets = means + rng.normal(size=(n, d)) * 1.2
    res = interval_coverage(targets, means, covs, level=0.9)
    lo, hi = stats.norm.interval(0.9, loc=means, scale=np.sqrt(np.diagonal(covs, 0, 1, 2)))
    np.testing.assert_allclose(res["marginal"], np.mean((targets >= lo) & (targets <= hi), 0))
    inside = [stats.chi2.cdf((t - m) @ np.linalg.solve(c, t - m), d) <= 0.9
              for t, m, c in zip(targets, means, covs)]
    assert res["ellipsoid"] == pytest.approx(np.mean(inside), abs=1e-12)
    diag = interval_coverage(targets, means, np.diagonal(covs, 0, 1, 2), level=0.9)
    np.testing.assert_allclose(diag["marginal"], res["marginal"])


def test_interval_coverage_is_calibrated_for_true_gaussians(rng):
    n, d = 20000, 2
    means = rng.normal(size=(n, d))
    chol = np.array([[1.0, 0.0], [0.8, 0.5]])
    targets = means + rng.normal(size=(n, d)) @ chol.T
    covs = np.broadcast_to(chol @ chol.T, (n, d, d))
    res = interval_coverage(targets.reshape(100, 200, d), means.reshape(100, 200, d),
                            covs.reshape(100, 200, d, d), level=0.95)
    # binomial standard error at n = 20000 is 0.0015
    np.testing.assert_allclose(res["marginal"], 0.95, atol=0.006)
    assert res["ellipsoid"] == pytest.approx(0.95, abs=0.006)


def test_bad_input_raises(rng):
    with pytest.raises(ValueError, match="same number of samples"):
        affine_r2(rng.normal(size=(10, 2)), rng.normal(size=(9, 2)))
    with pytest.raises(ValueError, match="shape"):
        affine_r2(rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 4, 5)))
    with pytest.raises(ValueError, match="both"):
        affine_r2(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="finite"):
        affine_r2(np.full((10, 2), np.nan), rng.normal(size=(10, 2)))
    with pytest.raises(ValueError, match="square"):
        eigen_angles(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="level"):
        interval_coverage(np.zeros((4, 2)), np.zeros((4, 2)), np.ones((4, 2)), level=1.5)
    with pytest.raises(ValueError, match="covs"):
        interval_coverage(np.zeros((4, 2)), np.zeros((4, 2)), np.ones((4, 3)))


def test_rotation_per_step_is_a_deprecated_alias_of_eigen_angles():
    from ldm_keras.data import dot_motion
    from ldm_keras.evaluation import dynamics

    a = np.array([[0.0, -1.0], [1.0, 0.0]])
    with pytest.warns(DeprecationWarning, match="eigen_angles"):
        np.testing.assert_array_equal(dynamics.rotation_per_step(a), eigen_angles(a))
    with pytest.warns(DeprecationWarning, match="angular_step"):
        assert dot_motion.rotation_per_step(0.1, 2.0) == dot_motion.angular_step(0.1, 2.0)
