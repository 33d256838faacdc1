"""Entropy estimators (docs/spec.md §3) against independent NumPy/SciPy references."""

import math

import keras
import numpy as np
import pytest
import scipy.stats
from helpers import BACKEND, gradients, run_layer_test, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln, logsumexp

from ldm_keras import entropy as E
from ldm_keras._math import digamma as ops_digamma


def f(x):
    return float(to_numpy(x))


def gaussian_closed_form(cov):
    """½ log det(2πe Σ)."""
    return 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1]


def random_cov(rng, d, offdiag=0.3, diag=1.5):
    a = rng.normal(size=(d, d)) * offdiag + np.eye(d) * diag
    return a @ a.T


# ----------------------------------------------------------------------------------------
# NumPy references (float64, written independently of the library code)
# ----------------------------------------------------------------------------------------


def np_gaussian_kde(z, c, gamma):
    """O(N·M·d) broadcast reference."""
    d = z.shape[1]
    dist = ((z[:, None, :].astype("float64") - c[None, :, :]) ** 2).sum(-1)
    return -np.mean(logsumexp(-gamma * dist / d, axis=1))


def unit(x):
    x = x.astype("float64")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def np_infonce(z1, z2, kappa):
    """Plain InfoNCE loss (z1 anchors, z2 positives/negatives), temperature 1/κ."""
    s = unit(z1) @ unit(z2).T
    return -(np.mean(kappa * np.diag(s)) - np.mean(logsumexp(kappa * s, axis=1)))


def np_cov(z):
    return np.cov(z.astype("float64"), rowvar=False, ddof=1)


def np_kl_entropy(z, k, clip_quantile=None):
    """Kozachenko–Leonenko with a k-d tree (self is the 0-th neighbour)."""
    n, d = z.shape
    r = cKDTree(z.astype("float64")).query(z.astype("float64"), k + 1)[0][:, k]
    log_r = np.log(r)
    if clip_quantile is not None:
        log_r = np.minimum(log_r, np.quantile(log_r, clip_quantile))
    log_vd = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)
    return d * np.mean(log_r) + log_vd + digamma(n) - digamma(k)


# ----------------------------------------------------------------------------------------
# run_layer_test for every class
# ----------------------------------------------------------------------------------------


def _z(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype("float32")


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype("float32")


LAYER_CASES = [
    (E.GaussianKDE, {"precision": 5.0}, _z((16, 4))),
    (E.GaussianKDE, {"precision": 2.0}, (_z((16, 4)), _z((10, 4), 1))),
    (E.VonMisesFisherKDE, {"precision": 5.0, "centers": "other"}, _z((16, 4))),
    (E.VonMisesFisherKDE, {"precision": 5.0}, (_z((16, 4)), _z((16, 4), 1))),
    (E.GaussianLogDet, {"jitter": 1e-6}, _z((32, 4))),
    (E.LogDetSecondOrder, {}, _z((32, 4))),
    (E.VICRegSurrogate, {"variance_weight": 25.0, "covariance_weight": 1.0}, _z((32, 4), 0, 0.5)),
    (E.KNNEntropy, {"k": 3, "clip_quantile": 0.9}, _z((32, 4))),
    (E.CategoricalEntropy, {}, _softmax(_z((16, 5), 0, 2.0))),
    (E.LinearJacobian, {}, (np.eye(4) * 2 + _z((4, 4), 0, 0.3)).astype("float32")),
]


@pytest.mark.parametrize(
    "cls,kwargs,inputs", LAYER_CASES,
    ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(LAYER_CASES)],
)
def test_layer(cls, kwargs, inputs):
    # Half-precision inputs lose ~3 digits; the float32 checks use run_layer_test's defaults.
    run_layer_test(cls, kwargs, inputs, ())


# ----------------------------------------------------------------------------------------
# Kernel density estimators
# ----------------------------------------------------------------------------------------


def test_gaussian_kde_matches_broadcast_reference():
    z, c = _z((50, 6), 0), _z((30, 6), 1)
    est = E.GaussianKDE(precision=5.0)
    np.testing.assert_allclose(f(est(z)), np_gaussian_kde(z, z, 5.0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(est(z, c)), np_gaussian_kde(z, c, 5.0), rtol=1e-5, atol=1e-5)
    z2 = _z((50, 6), 2)
    joint = np_gaussian_kde(np.concatenate([z, z2], 1), np.concatenate([z, z2], 1), 5.0)
    np.testing.assert_allclose(f(est.joint(z, z2)), joint, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(E.joint_entropy(est, z, z2)), joint, rtol=1e-5, atol=1e-5)
    marg = np_gaussian_kde(z, z, 5.0) + np_gaussian_kde(z2, z2, 5.0)
    np.testing.assert_allclose(f(est.marginal(z, z2)), marg, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(E.marginal_entropy(est, z, z2)), marg, rtol=1e-5, atol=1e-5)


def test_vmf_kde_plus_alignment_is_minus_infonce():
    kappa = 5.0
    z1, z2 = _z((64, 8), 0, 3.0), _z((64, 8), 1, 3.0) + _z((64, 8), 0, 3.0)
    est = E.VonMisesFisherKDE(precision=kappa, centers="other")
    align = kappa * np.mean(np.sum(unit(z1) * unit(z2), 1))
    np.testing.assert_allclose(f(est(z1, z2)) + align, -np_infonce(z1, z2, kappa),
                               rtol=1e-5, atol=1e-5)
    # centers="other": both directions, SimCLR's symmetric denominator.
    sym = -(np_infonce(z1, z2, kappa) + np_infonce(z2, z1, kappa))
    np.testing.assert_allclose(f(est.marginal(z1, z2)) + 2 * align, sym, rtol=1e-5, atol=1e-5)


def test_vmf_kde_self_and_joint_match_numpy():
    kappa = 2.5
    z1, z2 = _z((40, 5), 0), _z((40, 5), 1)

    def ref(u, v):
        return -np.mean(logsumexp(kappa * u @ v.T, axis=1))

    u1, u2 = unit(z1), unit(z2)
    est = E.VonMisesFisherKDE(precision=kappa)
    np.testing.assert_allclose(f(est(z1)), ref(u1, u1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(est.marginal(z1, z2)), ref(u1, u1) + ref(u2, u2),
                               rtol=1e-5, atol=1e-5)
    # Joint: product-of-spheres kernel exp(κ (u1_i·u1_j + u2_i·u2_j)).
    joint = -np.mean(logsumexp(kappa * (u1 @ u1.T + u2 @ u2.T), axis=1))
    np.testing.assert_allclose(f(est.joint(z1, z2)), joint, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------
# Gaussian log-det family
# ----------------------------------------------------------------------------------------


def test_gaussian_logdet_recovers_closed_form():
    rng = np.random.default_rng(0)
    cov = random_cov(rng, 8)
    z = rng.multivariate_normal(np.zeros(8), cov, size=4000).astype("float32")
    h = f(E.GaussianLogDet()(z))
    truth = gaussian_closed_form(cov)
    assert abs(h - truth) < 0.02 * abs(truth), (h, truth)


def test_gaussian_logdet_matches_numpy_formula():
    rng = np.random.default_rng(1)
    z = rng.multivariate_normal(np.zeros(6), random_cov(rng, 6), size=200).astype("float32")
    c = np_cov(z)
    for jitter in (1e-6, 1e-2):
        eps = jitter * np.trace(c) / 6
        ref = 0.5 * np.linalg.slogdet(c + eps * np.eye(6))[1]
        # float32 covariance and Cholesky: ~1e-6 relative per entry, ≤ 1e-4 on the sum.
        est = E.GaussianLogDet(jitter=jitter, include_constant=False)
        np.testing.assert_allclose(f(est(z)), ref, rtol=1e-4, atol=1e-4)
        est = E.GaussianLogDet(jitter=jitter)
        np.testing.assert_allclose(f(est(z)), ref + 3 * np.log(2 * np.pi * np.e),
                                   rtol=1e-4, atol=1e-4)


def test_gaussian_logdet_scaled_jitter_handles_rank_deficiency():
    # N ≤ d: singular covariance, finite thanks to the jitter.
    z = _z((4, 8))
    assert np.isfinite(f(E.GaussianLogDet(jitter=1e-3)(z)))


def np_second_order(z, eps=1e-6):
    c = np_cov(z)
    v = np.diag(c) + eps
    rho = c / np.sqrt(np.outer(v, v))
    off = rho[~np.eye(len(v), dtype=bool)]
    return 0.5 * (np.sum(np.log(v)) - 0.5 * np.sum(off ** 2))


def test_logdet_second_order_equals_numpy_formula():
    z = _z((100, 5), 3) @ (np.eye(5) + 0.2).astype("float32")
    est = E.LogDetSecondOrder(include_constant=False)
    np.testing.assert_allclose(f(est(z)), np_second_order(z), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(E.LogDetSecondOrder()(z)),
                               np_second_order(z) + 2.5 * np.log(2 * np.pi * np.e),
                               rtol=1e-5, atol=1e-5)


def test_logdet_second_order_approximates_exact_logdet():
    # Weakly correlated Gaussian (|ρ| ≈ 0.1).
    rng = np.random.default_rng(4)
    d = 6
    corr = np.eye(d) + 0.1 * (np.ones((d, d)) - np.eye(d)) * rng.choice([-1, 1], (d, d))
    corr = np.triu(corr) + np.triu(corr, 1).T
    scales = np.diag(rng.uniform(0.5, 2.0, d))
    z = rng.multivariate_normal(np.zeros(d), scales @ corr @ scales, 5000).astype("float32")
    c = np_cov(z)
    exact = 0.5 * np.linalg.slogdet(c)[1]
    # The gap is ½ Σ_k [log(1+λ_k) - λ_k + λ_k²/2] over the eigenvalues λ of E = R - I;
    # bounded by ½ Σ |λ|³ / (3 (1 - |λ|)) (alternating series). That is the tolerance,
    # plus float32 slack.
    std = np.sqrt(np.diag(c))
    lam = np.linalg.eigvalsh(c / np.outer(std, std) - np.eye(d))
    assert np.max(np.abs(lam)) < 1
    bound = 0.5 * np.sum(np.abs(lam) ** 3 / (3 * (1 - np.abs(lam)))) + 1e-4
    got = f(E.LogDetSecondOrder(include_constant=False, eps=1e-12)(z))
    assert abs(got - exact) <= bound, (got, exact, bound)
    # The approximation is informative: the bound is far below the correlation term.
    assert bound < 0.5 * abs(0.5 * np.linalg.slogdet(c / np.outer(std, std))[1])
    # The reference release's ρ⁴ variant is further off than our ρ² form.
    v = np.diag(c)
    rho = (c / np.sqrt(np.outer(v, v)))[~np.eye(d, dtype=bool)]
    rho4 = 0.5 * (np.sum(np.log(v)) - 0.5 * np.sum(rho ** 4))
    assert abs(rho4 - exact) > abs(got - exact)


def np_vicreg_penalty(z, mu, nu, eps=1e-4):
    c = np_cov(z)
    d = c.shape[0]
    var = np.mean(np.maximum(0.0, 1.0 - np.sqrt(np.diag(c) + eps)))
    cov = (np.sum(c ** 2) - np.sum(np.diag(c) ** 2)) / d
    return mu * var + nu * cov


def test_vicreg_surrogate_matches_numpy():
    z = _z((64, 6), 5, 0.6) @ (np.eye(6) + 0.3).astype("float32")
    est = E.VICRegSurrogate()
    np.testing.assert_allclose(f(est(z)), -np_vicreg_penalty(z, 25.0, 1.0), rtol=1e-5, atol=1e-5)
    est = E.VICRegSurrogate(variance_weight=3.0, covariance_weight=0.5, eps=1e-3)
    np.testing.assert_allclose(f(est(z)), -np_vicreg_penalty(z, 3.0, 0.5, 1e-3),
                               rtol=1e-5, atol=1e-5)


def test_vicreg_marginal_equals_vicreg_loss():
    # VICReg (Bardes et al.): std_loss = mean(relu(1-std_a))/2 + mean(relu(1-std_b))/2,
    # cov_loss = offdiag(C_a)²/d + offdiag(C_b)²/d; loss weights 25 (std) and 1 (cov).
    za, zb = _z((64, 6), 6, 0.5), _z((64, 6), 7, 0.8)

    def std_term(z):
        return np.mean(np.maximum(0, 1 - np.sqrt(np.var(z.astype("float64"), 0, ddof=1) + 1e-4)))

    def cov_term(z):
        c = np_cov(z)
        return (np.sum(c ** 2) - np.sum(np.diag(c) ** 2)) / c.shape[0]

    vicreg = 25.0 * (std_term(za) / 2 + std_term(zb) / 2) + cov_term(za) + cov_term(zb)
    est = E.VICRegSurrogate(variance_weight=12.5)
    np.testing.assert_allclose(f(est.marginal(za, zb)), -vicreg, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------
# k-NN
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
def test_knn_recovers_gaussian_closed_form(d):
    # N = 2000: over 20 seeds the largest relative error was 3.4 % (d = 1), 1.5 % (d ≥ 2).
    rng = np.random.default_rng(10 + d)
    cov = random_cov(rng, d)
    z = rng.multivariate_normal(np.zeros(d), cov, size=2000).astype("float32")
    h = f(E.KNNEntropy(k=3)(z))
    truth = gaussian_closed_form(cov)
    assert abs(h - truth) < 0.05 * abs(truth), (d, h, truth)


@pytest.mark.parametrize("k,clip", [(3, None), (1, None), (5, 0.9), (3, 0.5)])
def test_knn_matches_kdtree_reference(k, clip):
    rng = np.random.default_rng(k)
    z = rng.normal(size=(300, 4)).astype("float32")
    z[:5] *= 8.0  # a few outliers for the clipping to act on
    est = E.KNNEntropy(k=k, clip_quantile=clip)
    # float32 distances from the matrix-product form: ~1e-5 relative on the mean log.
    np.testing.assert_allclose(f(est(z)), np_kl_entropy(z, k, clip), rtol=1e-4, atol=1e-4)
    bare = E.KNNEntropy(k=k, clip_quantile=clip, include_constant=False)
    const = 2 * np.log(np.pi) - gammaln(3) + digamma(300) - digamma(k)
    np.testing.assert_allclose(f(bare(z)), np_kl_entropy(z, k, clip) - const,
                               rtol=1e-4, atol=1e-4)


def np_knn_grad(z, k, clip_quantile):
    """Analytic gradient of d·mean_i log r_k(i), clipped radii held at the (constant) cap."""
    n, d = z.shape
    z = z.astype("float64")
    r, idx = cKDTree(z).query(z, k + 1)
    r, nn = r[:, k], idx[:, k]
    log_r = np.log(r)
    active = np.ones(n, bool)
    if clip_quantile is not None:
        active = log_r < np.quantile(log_r, clip_quantile)
    g = np.zeros_like(z)
    for m in np.flatnonzero(active):
        step = (z[m] - z[nn[m]]) / r[m] ** 2
        g[m] += step
        g[nn[m]] -= step
    return d * g / n


@pytest.mark.parametrize("k,clip", [(1, None), (3, 0.8)])
def test_knn_gradient_matches_analytic(k, clip):
    # Clipped radii contribute no gradient: the quantile is detached and min() picks it.
    z = _z((40, 2), 3)
    (g,) = gradients(E.KNNEntropy(k=k, clip_quantile=clip), [z])
    np.testing.assert_allclose(g, np_knn_grad(z, k, clip), rtol=1e-3, atol=1e-5)


def test_knn_batch_too_small():
    with pytest.raises(ValueError, match="at least 4 samples"):
        E.KNNEntropy(k=3)(_z((3, 2)))
    with pytest.raises(ValueError, match="k=5"):
        E.KNNEntropy(k=5)(_z((2, 2)))
    assert np.isfinite(f(E.KNNEntropy(k=3)(_z((4, 2)))))


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"k": 2.5}, {"k": True}, {"clip_quantile": 0.0},
                                    {"clip_quantile": 1.5}, {"eps": 0.0}])
def test_knn_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        E.KNNEntropy(**kwargs)


def test_digamma_helper_matches_scipy():
    x = np.array([1.0, 2.5, 7.0, 100.0, 4000.0], "float32")
    np.testing.assert_allclose(to_numpy(ops_digamma(keras.ops.convert_to_tensor(x))),
                               digamma(x.astype("float64")), rtol=1e-6, atol=1e-6)
    for v in (1.0, 3.0, 2000.0):
        assert abs(ops_digamma(v) - digamma(v)) < 1e-9


# ----------------------------------------------------------------------------------------
# Categorical plug-in
# ----------------------------------------------------------------------------------------


def test_categorical_matches_scipy():
    n_cls = 6
    q1 = _softmax(_z((80, n_cls), 0, 2.0))
    q2 = _softmax(_z((80, n_cls), 1, 2.0) + 2.0 * _z((80, n_cls), 0, 1.0))
    est = E.CategoricalEntropy()
    p1 = q1.astype("float64").mean(0)
    pj = q1.astype("float64").T @ q2 / 80
    pbar = 0.5 * (p1 + q2.astype("float64").mean(0))
    # The 1e-6 inside the log shifts H by at most (number of cells)·1e-6; plus float32.
    np.testing.assert_allclose(f(est(q1)), scipy.stats.entropy(p1), atol=n_cls * 1e-6 + 1e-5)
    np.testing.assert_allclose(f(est.joint(q1, q2)), scipy.stats.entropy(pj.ravel()),
                               atol=n_cls ** 2 * 1e-6 + 1e-5)
    np.testing.assert_allclose(f(est.marginal(q1, q2)), 2 * scipy.stats.entropy(pbar),
                               atol=2 * n_cls * 1e-6 + 1e-5)
    # Same epsilon: equal to float32 precision.
    np.testing.assert_allclose(f(est.joint(q1, q2)), -np.sum(pj * np.log(pj + 1e-6)),
                               rtol=1e-5, atol=1e-6)


def test_categorical_empty_cluster_is_finite():
    q = np.zeros((10, 4), "float32")
    q[:, 0] = 1.0
    assert abs(f(E.CategoricalEntropy()(q))) < 1e-5
    assert abs(f(E.CategoricalEntropy().joint(q, q))) < 1e-5


# ----------------------------------------------------------------------------------------
# log|det W|
# ----------------------------------------------------------------------------------------


def test_log_abs_det_value_and_gradient():
    w = (np.eye(5) + _z((5, 5), 2, 0.5)).astype("float32")
    w[0] *= -1  # negative determinant
    assert np.linalg.det(w) < 0
    np.testing.assert_allclose(f(E.log_abs_det(w)), np.linalg.slogdet(w.astype("float64"))[1],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(E.LinearJacobian()(w)), np.linalg.slogdet(w)[1], rtol=1e-5)
    (g,) = gradients(E.log_abs_det, [w])
    np.testing.assert_allclose(g, np.linalg.inv(w.astype("float64")).T, rtol=1e-4, atol=1e-5)


def test_log_abs_det_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        E.log_abs_det(_z((3, 4)))
    with pytest.raises(ValueError, match="rank-2"):
        E.LinearJacobian()(_z((2, 3, 3)))
    with pytest.raises(NotImplementedError):
        E.LinearJacobian().joint(_z((3, 3)), _z((3, 3)))


# ----------------------------------------------------------------------------------------
# Exact self-distances, float32-bounded precision, ties (the same on every backend)
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision,scale", [(1e30, 1.0), (5.0, 1e3), (3e38, 1.0)])
def test_gaussian_kde_self_distance_is_exactly_zero(precision, scale):
    # Every off-diagonal kernel underflows, so the estimate is -log(1) = 0 exactly; the
    # matrix-product form alone left a few ulps of ‖z‖² on the diagonal (3.7e21 at
    # precision 1e30 on JAX).
    z = _z((64, 4), 7, scale)
    want = np_gaussian_kde(z, z, precision)
    assert want == 0.0
    assert f(E.GaussianKDE(precision=precision)(z)) == 0.0


def test_gaussian_kde_duplicated_points_match_numpy():
    # Pairs of identical points. Only the diagonal is exact: the copy's distance comes
    # from the float32 matrix product, off by a few ulps of ‖z‖² (bounded here by
    # 8·max‖z‖²·eps32, scaled by γ/d).
    z = np.repeat(_z((32, 3), 8, 10.0), 2, axis=0)
    tol = 5.0 / 3 * 8 * np.max(np.sum(z.astype("float64") ** 2, 1)) * np.finfo("float32").eps
    np.testing.assert_allclose(f(E.GaussianKDE(precision=5.0)(z)),
                               np_gaussian_kde(z, z, 5.0), rtol=0, atol=tol)


@pytest.mark.parametrize("cls", [E.GaussianKDE, E.VonMisesFisherKDE])
@pytest.mark.parametrize("precision", [3.5e38, 1e39, float("inf")])
def test_precision_beyond_float32_is_refused(cls, precision):
    with pytest.raises(ValueError, match="precision"):
        cls(precision=precision)


def np_knn_log_radius(z, k, eps):
    """½ log(r_k² + eps) per row, with exact float64 differences (duplicates at 0)."""
    z = z.astype("float64")
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    r2 = np.sort(d2, axis=1)[:, k - 1]
    return 0.5 * np.log(r2 + eps)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_knn_duplicated_points_match_numpy(k):
    # Every point three times: for k ≤ 2 the k-th neighbour is a copy (radius exactly 0,
    # log r = ½ log eps); for k = 3 a tie between the two copies of the nearest other
    # point. Either way the radius is recomputed from differences, so the value does not
    # depend on how a backend rounds the matrix product (JAX -47.25 vs PyTorch -50.35 at
    # k = 1 before).
    base = _z((20, 3), 9, 4.0)
    z = np.concatenate([base, base, base])
    est = E.KNNEntropy(k=k, include_constant=False)
    want = 3 * np.mean(np_knn_log_radius(z, k, est.eps))
    np.testing.assert_allclose(f(est(z)), want, rtol=1e-5)
    if k < 3:
        assert f(est(z)) == pytest.approx(3 * 0.5 * np.log(est.eps), rel=1e-6)


@pytest.mark.parametrize("k", [1, 2])
def test_knn_ties_on_a_lattice_match_numpy(k):
    # A unit lattice (every point has 2-4 neighbours at exactly distance 1) scaled far
    # from the origin, where the matrix-product form rounds most: ties broken any way
    # give the same radius.
    g = np.stack(np.meshgrid(np.arange(6), np.arange(6)), -1).reshape(-1, 2)
    z = (g + 1000.0).astype("float32")
    est = E.KNNEntropy(k=k, include_constant=False)
    want = 2 * np.mean(np_knn_log_radius(z, k, est.eps))
    np.testing.assert_allclose(f(est(z)), want, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------------------
# Input checks, symbolic inputs, two-view helpers, properties
# ----------------------------------------------------------------------------------------

ALL_BATCH = [E.GaussianKDE, E.VonMisesFisherKDE, E.GaussianLogDet, E.LogDetSecondOrder,
             E.VICRegSurrogate, E.KNNEntropy, E.CategoricalEntropy]


@pytest.mark.parametrize("cls", ALL_BATCH, ids=lambda c: c.__name__)
def test_wrong_rank_raises(cls):
    with pytest.raises(ValueError, match="rank-2"):
        cls()(_z((8,)))
    with pytest.raises(ValueError, match="rank-2"):
        cls()(_z((8, 3, 2)))


@pytest.mark.parametrize("cls", [E.GaussianKDE, E.VonMisesFisherKDE])
@pytest.mark.parametrize("precision", [0.0, -1.0, float("nan"), "a"])
def test_non_positive_precision_raises(cls, precision):
    with pytest.raises(ValueError, match="precision"):
        cls(precision=precision)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="centers"):
        E.VonMisesFisherKDE(centers="both")
    with pytest.raises(ValueError, match="centers"):
        E.GaussianKDE()(_z((8, 3)), _z((8, 4)))
    with pytest.raises(ValueError, match="jitter"):
        E.GaussianLogDet(jitter=-1.0)
    with pytest.raises(ValueError, match="at least 2"):
        E.GaussianLogDet()(_z((1, 3)))
    with pytest.raises(ValueError, match="same shape"):
        E.VonMisesFisherKDE().joint(_z((8, 3)), _z((8, 4)))
    with pytest.raises(ValueError, match="same shape"):
        E.CategoricalEntropy().joint(_z((8, 3)), _z((8, 4)))


@pytest.mark.parametrize("cls", ALL_BATCH + [E.LinearJacobian], ids=lambda c: c.__name__)
def test_symbolic_unknown_batch(cls):
    shape = (4,)
    x = keras.Input(shape=shape)
    out = cls()(x)
    assert tuple(out.shape) == () and out.dtype == "float32"
    if cls is not E.LinearJacobian:
        assert tuple(cls().joint(x, x).shape) == ()
        assert tuple(cls().marginal(x, x).shape) == ()
    with pytest.raises(ValueError, match="rank-2"):
        cls()(keras.Input(shape=(3, 4)))


def test_symbolic_known_small_batch_raises():
    with pytest.raises(ValueError, match="at least 4"):
        E.KNNEntropy(k=3)(keras.Input(shape=(2,), batch_size=3))


def test_dynamic_batch_in_compiled_function():
    # ψ(N) and the diagonal mask must work when the batch size is only known at run time.
    z = _z((50, 3))
    est = E.KNNEntropy(k=3)
    eager = f(est(z))
    if BACKEND == "tensorflow":
        import tensorflow as tf

        fn = tf.function(est.call, input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        compiled = f(fn(tf.constant(z)))
    elif BACKEND == "jax":
        import jax

        compiled = f(jax.jit(est.call)(z))
    else:  # torch runs eagerly (no compiled function): a second batch size instead
        compiled = None
        np.testing.assert_allclose(f(est(z[:37])), np_kl_entropy(z[:37], 3), rtol=1e-4)
    if compiled is not None:
        np.testing.assert_allclose(compiled, eager, rtol=1e-5)
    np.testing.assert_allclose(eager, np_kl_entropy(z, 3), rtol=1e-4)


def test_marginal_and_joint_default_semantics():
    z1, z2 = _z((32, 2), 0), _z((32, 2), 1)
    for est in (E.GaussianLogDet(), E.KNNEntropy(), E.LogDetSecondOrder()):
        cat = np.concatenate([z1, z2], 1)
        np.testing.assert_allclose(f(E.joint_entropy(est, z1, z2)), f(est(cat)), rtol=1e-6)
        np.testing.assert_allclose(f(E.marginal_entropy(est, z1, z2)),
                                   f(est(z1)) + f(est(z2)), rtol=1e-6)


def test_outputs_float32_under_mixed_policy():
    keras.config.set_dtype_policy("mixed_float16")
    z = _z((32, 4)).astype("float16")
    for cls in ALL_BATCH:
        est = cls()
        inp = _softmax(z.astype("float32")).astype("float16") if cls is E.CategoricalEntropy else z
        out = est(inp)
        assert keras.backend.standardize_dtype(out.dtype) == "float32", cls.__name__
        out = est.joint(inp, inp)
        assert keras.backend.standardize_dtype(out.dtype) == "float32", cls.__name__


@settings(max_examples=20, deadline=None, derandomize=True)
@given(scale=st.floats(0.1, 10.0), seed=st.integers(0, 2**16))
def test_scale_equivariance(scale, seed):
    # H[a z] = H[z] + d log a: exact for the log-det (scaled jitter) and k-NN estimators.
    z = _z((40, 3), seed)
    d = 3
    for est in (E.GaussianLogDet(), E.KNNEntropy(k=2)):
        np.testing.assert_allclose(f(est(z * np.float32(scale))), f(est(z)) + d * math.log(scale),
                                   rtol=1e-4, atol=1e-3)
    # KDE is permutation invariant and translation invariant.
    perm = np.random.default_rng(seed).permutation(40)
    kde = E.GaussianKDE()
    np.testing.assert_allclose(f(kde(z[perm] + np.float32(scale))), f(kde(z)), rtol=1e-4,
                               atol=1e-4)
