"""Label-free embedding measures against independent formulas (NumPy / SciPy)."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from ldm_keras.evaluation import (
    alignment,
    dimension_std,
    effective_rank,
    normalize_rows,
    uniformity,
)


def _rankme_by_eigenvalues(z, eps=1e-7):
    """RankMe from the eigenvalues of the Gram matrix: σ_k = sqrt(λ_k(ZᵀZ))."""
    z = np.asarray(z, "float64")
    gram = z.T @ z if z.shape[0] >= z.shape[1] else z @ z.T
    sigma = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))
    p = sigma / sigma.sum() + eps
    return float(np.exp(-np.sum(p * np.log(p))))


@pytest.mark.parametrize("shape", [(50, 8), (6, 20), (300, 64)])
def test_effective_rank_matches_the_gram_eigenvalue_formula(rng, shape):
    z = rng.normal(size=shape) @ np.diag(np.linspace(0.1, 3.0, shape[1]))
    np.testing.assert_allclose(effective_rank(z), _rankme_by_eigenvalues(z), rtol=1e-6)
    zc = z - z.mean(axis=0)
    np.testing.assert_allclose(effective_rank(z, center=True), _rankme_by_eigenvalues(zc),
                               rtol=1e-6)


def test_effective_rank_closed_forms(rng):
    d = 16
    # equal singular values: p_k = 1/d + ε, so exp(H) is d up to ε
    p = 1.0 / d + 1e-7
    np.testing.assert_allclose(effective_rank(np.eye(d) * 3.0), np.exp(-d * p * np.log(p)),
                               rtol=1e-12)
    assert abs(effective_rank(np.eye(d)) - d) < 1e-3
    # rank one: every sample the same point (collapse) → 1
    one = np.ones((100, d)) * rng.normal(size=d)
    assert abs(effective_rank(one) - 1.0) < 1e-4
    assert effective_rank(np.zeros((10, d))) == 1.0
    # two orthogonal directions with singular values 3 and 1: p = (3/4, 1/4)
    two = np.zeros((4, d))
    two[0, 0], two[1, 1] = 3.0, 1.0
    q = np.array([0.75, 0.25]) + 1e-7
    tail = 2 * 1e-7 * np.log(1e-7)  # min(4, d) = 4 singular values: the two zeros add ε
    np.testing.assert_allclose(effective_rank(two), np.exp(-(np.sum(q * np.log(q)) + tail)),
                               rtol=1e-9)


def test_dimension_std_matches_numpy(rng):
    z = rng.normal(size=(40, 5)) * [1, 2, 3, 4, 5] + 2.0
    norms = np.sqrt(np.sum(z ** 2, axis=1, keepdims=True))
    np.testing.assert_allclose(dimension_std(z), np.std(z / norms, axis=0, ddof=0),
                               rtol=1e-12)
    np.testing.assert_allclose(dimension_std(z, normalize=False), np.std(z, axis=0),
                               rtol=1e-12)
    assert np.all(dimension_std(np.tile(z[:1], (10, 1))) < 1e-12)       # collapsed: 0
    # spread evenly over the sphere: each std ≈ 1/√d
    g = rng.normal(size=(20000, 8))
    np.testing.assert_allclose(dimension_std(g) * np.sqrt(8), 1.0, atol=0.02)


def test_alignment_matches_the_wang_isola_formula(rng):
    a = rng.normal(size=(30, 6))
    b = a + 0.3 * rng.normal(size=a.shape)
    ua = a / np.linalg.norm(a, axis=1, keepdims=True)
    ub = b / np.linalg.norm(b, axis=1, keepdims=True)
    for alpha in (2.0, 1.0):
        ref = np.mean([np.sum((ua[i] - ub[i]) ** 2) ** (alpha / 2) for i in range(30)])
        np.testing.assert_allclose(alignment(a, b, alpha=alpha), ref, rtol=1e-12)
    np.testing.assert_allclose(alignment(a, b, normalize=False),
                               np.mean(np.sum((a - b) ** 2, axis=1)), rtol=1e-12)
    assert alignment(a, a) == 0.0


@pytest.mark.parametrize("t", [2.0, 0.5])
def test_uniformity_matches_scipy_pdist(rng, t):
    z = rng.normal(size=(57, 4)) + [1.0, 0, 0, 0]
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    ref = np.log(np.mean(np.exp(-t * pdist(u, "sqeuclidean"))))
    for block in (1024, 7):  # one block and several (the blocked log-sum-exp)
        np.testing.assert_allclose(uniformity(z, t=t, block_size=block), ref, rtol=1e-10)
    ref_raw = np.log(np.mean(np.exp(-t * pdist(z, "sqeuclidean"))))
    np.testing.assert_allclose(uniformity(z, t=t, normalize=False), ref_raw, rtol=1e-10)
    assert abs(uniformity(np.tile(z[:1], (9, 1)), t=t)) < 1e-12        # collapsed: 0
    assert uniformity(z, t=t) >= -4 * t                                  # sphere bound


def test_normalize_rows_and_bad_input_are_clear(rng):
    np.testing.assert_allclose(normalize_rows([[3.0, 4.0]]), [[0.6, 0.8]])
    np.testing.assert_array_equal(normalize_rows(np.zeros((2, 3))), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        effective_rank(np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        dimension_std(np.array([[np.nan, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="same shape"):
        alignment(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="alpha"):
        alignment(np.ones((3, 2)), np.ones((3, 2)), alpha=0)
    with pytest.raises(ValueError, match="at least 2"):
        uniformity(np.ones((1, 3)))
    with pytest.raises(ValueError, match="`t`"):
        uniformity(np.ones((3, 3)), t=-1)
    with pytest.raises(ValueError, match="numeric"):
        effective_rank(np.array([["a", "b"]]))
