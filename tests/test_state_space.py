"""Identifiability data (docs/spec.md §7): latents, transition noise and the injective mixing.

References: the documented transition formulas re-written here in NumPy, finite-difference
Jacobians of the mixing treated as a black box, pairwise distances, scipy's normality
test and scikit-learn's linear regression.
"""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform
from sklearn.linear_model import LinearRegression

from ldm_keras.data import state_space as ssm


def _fd_jacobian(g, s, eps=1e-5):
    """Central finite differences of a black-box map g at one point s."""
    cols = []
    for i in range(len(s)):
        e = np.zeros_like(s)
        e[i] = eps
        cols.append((g(s + e) - g(s - e)) / (2 * eps))
    return np.stack(cols, axis=-1)


def _duffing_reference(s, dt=0.1):
    """One step of the documented 2-d oscillator, written independently."""
    q, v = s[..., 0], s[..., 1]
    qn = q + dt * v
    force = -qn - 2.0 * qn**3 / (1.0 + qn**2) - 0.3 * v
    return np.stack([qn, v + dt * force], axis=-1)


def _rotation_reference(s):
    x, y = s[..., 0], s[..., 1]
    r2 = x * x + y * y
    a = 0.3 + 0.05 * r2
    g = np.exp(0.1 * (1 - r2))
    return np.stack([g * (np.cos(a) * x - np.sin(a) * y), g * (np.sin(a) * x + np.cos(a) * y)], -1)


# ---------------------------------------------------------------- the mixing g


@pytest.mark.parametrize("dim", [2, 4])
def test_mixing_jacobian_full_column_rank_by_finite_differences(dim):
    g = ssm.RandomMixing(dim, obs_dim=20, layers=3, seed=dim)
    pts = np.random.default_rng(0).normal(scale=1.5, size=(25, dim))
    for s in pts:
        jac = _fd_jacobian(g, s)
        assert jac.shape == (20, dim)
        sv = np.linalg.svd(jac, compute_uv=False)
        assert np.linalg.matrix_rank(jac, tol=1e-6) == dim
        # the documented lower bound on every singular value (module docstring)
        assert sv.min() >= g.lower_lipschitz_bound() * (1 - 1e-6)
        np.testing.assert_allclose(g.jacobian(s), jac, rtol=1e-5, atol=1e-7)


def test_mixing_is_injective_in_practice():
    d = ssm.load("nonlinear-2d", "train", num_sequences=8, length=200)
    s = d.latents.reshape(-1, 2).astype(np.float64)[::2]  # 800 points along trajectories
    x = d.mixing(s)
    ds, dx = pdist(s), pdist(x)
    distinct = ds > 1e-9
    ratio = dx[distinct] / ds[distinct]
    # distinct latents map to distinct observations, with the documented margin
    assert ratio.min() >= d.mixing.lower_lipschitz_bound() * (1 - 1e-9)
    assert ratio.min() > 0
    # nearest-neighbour view: every point's nearest observation is at a positive distance
    # that is at least L times the latent distance to that same neighbour
    dxm, dsm = squareform(dx), squareform(ds)
    np.fill_diagonal(dxm, np.inf)
    nn = dxm.argmin(1)
    nn_obs = dxm[np.arange(len(s)), nn]
    nn_lat = dsm[np.arange(len(s)), nn]
    assert nn_obs.min() > 0
    assert np.all(nn_obs >= d.mixing.lower_lipschitz_bound() * nn_lat * (1 - 1e-9))


def test_mixing_is_genuinely_nonlinear():
    d = ssm.load("nonlinear-2d", "train", num_sequences=32)
    s = d.latents.reshape(-1, 2)
    x = d.observations.reshape(-1, 20)
    r2 = LinearRegression().fit(x, s).score(x, s)
    assert r2 < 0.95  # a linear read-out does not recover s: the mixing warps it
    np.testing.assert_allclose(d.observations, d.mixing(d.latents), atol=1e-5)


# ---------------------------------------------------------------- the latent process


def test_oscillator_transition_noise_is_gaussian_with_requested_std():
    noise = 0.1
    d = ssm.generate("oscillator", dim=2, num_sequences=32, length=300, noise_std=noise, seed=5)
    s = d.latents.astype(np.float64)
    resid = s[:, 1:] - _duffing_reference(s[:, :-1])
    n = resid.size
    assert abs(resid.std() / noise - 1) < 4 / math.sqrt(2 * n)
    assert abs(resid.mean()) < 4 * noise / math.sqrt(n)
    assert stats.normaltest(resid.ravel()).pvalue > 1e-3
    # isotropic: no correlation between the two noise components
    assert abs(np.corrcoef(resid[..., 0].ravel(), resid[..., 1].ravel())[0, 1]) < 4 / math.sqrt(n / 2)


def test_rotation_system_matches_documented_formula():
    mu = ssm.make_system("rotation", dim=2)
    s = np.random.default_rng(1).normal(size=(100, 2))
    np.testing.assert_allclose(mu.step(s), _rotation_reference(s), rtol=1e-12)


@pytest.mark.parametrize("system", ssm.SYSTEMS)
@pytest.mark.parametrize("dim", [2, 4])
def test_latents_bounded_and_stationary_over_1000_steps(system, dim):
    d = ssm.generate(system, dim=dim, num_sequences=16, length=1000, noise_std=0.1, seed=3)
    s = d.latents.astype(np.float64)
    assert np.isfinite(s).all() and np.abs(s).max() < 10
    first, second = s[:, :500].std(), s[:, 500:].std()
    assert 0.8 < first / second < 1.25
    assert d.latents.shape == (16, 1000, dim) and d.observations.shape == (16, 1000, 20)
    assert d.latents.dtype == np.float32 and d.observations.dtype == np.float32


# ---------------------------------------------------------------- presets and seeds


@pytest.mark.parametrize("name", sorted(ssm.PRESETS))
def test_presets_share_mixing_across_splits(name):
    tr = ssm.load(name, "train", num_sequences=4)
    te = ssm.load(name, "test", num_sequences=4)
    again = ssm.load(name, "train", num_sequences=4)
    for a, b in zip(tr.mixing.weights, te.mixing.weights):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tr.mixing.embedding, te.mixing.embedding)
    # the test observations are the train mixing applied to the test latents
    np.testing.assert_allclose(te.observations, tr.mixing(te.latents), atol=1e-5)
    assert not np.allclose(tr.latents, te.latents)
    np.testing.assert_array_equal(tr.observations, again.observations)
    assert tr.observations.shape[-1] >= 20


def test_generate_seeds():
    a = ssm.generate("double-well", dim=2, num_sequences=3, length=20, seed=0)
    b = ssm.generate("double-well", dim=2, num_sequences=3, length=20, seed=0)
    c = ssm.generate("double-well", dim=2, num_sequences=3, length=20, seed=1)
    m = ssm.generate("double-well", dim=2, num_sequences=3, length=20, seed=0, mixing_seed=5)
    np.testing.assert_array_equal(a.observations, b.observations)
    assert not np.allclose(a.latents, c.latents)
    np.testing.assert_array_equal(a.latents, m.latents)  # mixing seed does not touch s
    assert not np.allclose(a.observations, m.observations)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="oscillator"):
        ssm.generate("lorenz")
    with pytest.raises(ValueError, match="nonlinear-2d"):
        ssm.load("nonlinear-3d")
    with pytest.raises(ValueError, match="split"):
        ssm.load("nonlinear-2d", "val")
    with pytest.raises(ValueError, match="mixing_seed"):
        ssm.load("nonlinear-2d", mixing_seed=1)
    for kw in (dict(obs_dim=10), dict(noise_std=0.0), dict(length=0), dict(dim=3),
               dict(num_sequences=0), dict(mixing_layers=0), dict(dt=-0.1)):
        with pytest.raises(ValueError):
            ssm.generate("oscillator", **kw)
    with pytest.raises(ValueError, match="even"):
        ssm.generate("rotation", dim=5)
    with pytest.raises(ValueError, match="dim"):
        ssm.RandomMixing(2, obs_dim=20)(np.zeros((3, 4)))
