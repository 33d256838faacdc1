"""Robustness-suite systems (ldm_keras.data.systems): dynamics, injective mixings, presets.

References: SciPy's ODE integrator (solve_ivp) for the flows, a matrix exponential of the
documented linear ODE, the documented random-network step re-written here, closed-form
inversions of the population code and the rendered dots (which prove injectivity
constructively), and finite-difference Jacobians of the black-box mixings.
"""

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from ldm_keras.data import systems


def _fd_jacobian(g, s, eps=1e-5):
    cols = []
    for i in range(len(s)):
        e = np.zeros_like(s)
        e[i] = eps
        cols.append((g(s + e) - g(s - e)) / (2 * eps))
    return np.stack(cols, axis=-1)


def _flow(field, s0, t):
    sol = solve_ivp(lambda _, y: field(y), (0.0, t), s0, rtol=1e-10, atol=1e-12)
    return sol.y[:, -1]


# ------------------------------------------------------------------ dynamics


def test_van_der_pol_step_matches_the_ode_flow():
    def field(y):  # documented ODE in the unscaled coordinates, state s = (x, y) / 2
        x, v = 2 * y
        return np.array([v, (1 - x * x) * v - x]) / 2

    mu = systems.make_system("van-der-pol")
    for s in np.random.default_rng(0).normal(scale=0.8, size=(5, 2)):
        np.testing.assert_allclose(mu.step(s), _flow(field, s, 0.1), atol=1e-5)  # RK4


def test_lorenz_step_matches_the_ode_flow_in_scaled_coordinates():
    def field(y):
        x, v, z = 8 * y[0], 8 * y[1], 8 * y[2] + 25
        return np.array([10 * (v - x), x * (28 - z) - v, x * v - 8 / 3 * z]) / 8

    mu = systems.make_system("lorenz")
    for s in np.random.default_rng(1).normal(size=(5, 3)):
        np.testing.assert_allclose(mu.step(s), _flow(field, s, 0.02), atol=1e-5)


def test_damped_oscillator_is_the_exact_linear_flow():
    def field(y):
        return np.array([y[1], -y[0] - 0.2 * y[1]])

    mu = systems.make_system("damped-oscillator")
    assert mu.linear
    s = np.array([0.7, -0.3])
    np.testing.assert_allclose(mu.step(s), _flow(field, s, 0.1), atol=1e-8)
    # linear: step(a s + b t) = a step(s) + b step(t)
    t = np.array([-0.2, 0.9])
    np.testing.assert_allclose(mu.step(2 * s - t), 2 * mu.step(s) - mu.step(t), atol=1e-12)


def test_pendulum_step_matches_the_regulated_ode_and_conserves_energy_at_target():
    w0 = math.pi
    e0 = w0**2 * (1 - math.cos(1.8))

    def field(y):
        th, w = y[0], w0 * y[1]
        e = 0.5 * w * w + w0**2 * (1 - math.cos(th))
        return np.array([w, (-w0**2 * math.sin(th) - 4.0 * w * (e / e0 - 1)) / w0])

    mu = systems.make_system("pendulum")
    for s in ([0.3, 0.2], [1.5, -0.4], [1.8, 0.0]):
        s = np.asarray(s, float)
        np.testing.assert_allclose(mu.step(s), _flow(field, s, 0.1), atol=1e-6)
    # at the target energy the regulation vanishes: energy is conserved along the flow
    s = np.array([1.8, 0.0])
    for _ in range(20):
        s = mu.step(s)
    e = 0.5 * (w0 * s[1]) ** 2 + w0**2 * (1 - math.cos(s[0]))
    assert e == pytest.approx(e0, rel=1e-5)


def test_driven_duffing_step_is_the_documented_formula():
    mu = systems.make_system("driven-duffing")
    q, v, f = 0.4, -1.1, 0.3
    qn = q + 0.1 * v
    vn = v + 0.1 * (-qn - 2 * qn**3 / (1 + qn**2) - 0.3 * v + 3 * f)
    np.testing.assert_allclose(mu.step(np.array([q, v, f])), [qn, vn, 0.97 * f], rtol=1e-12)


@pytest.mark.parametrize("name,dim", [("random-3d", 3), ("random-4d", 4)])
def test_random_network_is_the_documented_map_and_passes_its_acceptance_test(name, dim):
    mu = systems.make_system(name, system_seed=11)
    p = mu._params
    assert np.linalg.det(p["u"]) == pytest.approx(1.0)
    np.testing.assert_allclose(p["v"] @ p["v"].T, np.eye(dim), atol=1e-12)
    s = np.random.default_rng(0).normal(size=(4, dim))
    ref = s + 0.1 * (1.5 * np.tanh(s @ p["v"].T + p["b"]) @ p["u"].T - 0.5 * s)
    np.testing.assert_allclose(mu.step(s), ref, rtol=1e-12)
    states = mu.simulate(32, 300, seed=0).reshape(-1, dim)
    std = states.std(0)
    assert std.min() >= 0.25 * std.max()  # non-degenerate (acceptance uses 0.3 on its run)
    # bounded: |μ(s)| ≤ (1 - λ dt)|s| + g dt √dim keeps |s| below g √dim / λ + noise
    assert np.abs(states).max() < 1.5 * math.sqrt(dim) / 0.5 + 2.0
    # the same seed gives the same system; another seed another one
    np.testing.assert_array_equal(systems.make_system(name, system_seed=11)._params["u"], p["u"])
    assert not np.allclose(systems.make_system(name, system_seed=12)._params["b"], p["b"])


def test_transition_noise_is_isotropic_gaussian_with_the_documented_std():
    mu = systems.make_system("random-3d", system_seed=3)
    s = mu.simulate(64, 100, seed=5)
    resid = (s[:, 1:] - mu.step(s[:, :-1])).reshape(-1, 3)
    np.testing.assert_allclose(resid.std(0), mu.noise_std, rtol=0.05)
    np.testing.assert_allclose(np.corrcoef(resid.T), np.eye(3), atol=0.05)


# ------------------------------------------------------------------ mixings


def test_population_code_is_inverted_exactly_from_log_rate_differences():
    g = systems.PopulationCode(3, units=40, seed=2)
    u = np.random.default_rng(0).normal(size=(50, 3))
    x = g(u)
    # log x_i - log x_0 = (c_i - c_0)ᵀu / w² - (|c_i|² - |c_0|²) / (2 w²): linear in u
    c = g.centres
    a = (c[1:] - c[:1]) / g.width**2
    b = np.log(x[:, 1:]) - np.log(x[:, :1]) + (np.sum(c[1:] ** 2, 1) - np.sum(c[0] ** 2)) / (
        2 * g.width**2)
    u_hat = np.linalg.lstsq(a, b.T, rcond=None)[0].T
    np.testing.assert_allclose(u_hat, u, atol=1e-6)


def test_rendered_frames_are_inverted_from_their_pixels():
    g = systems.RenderedFrames(3)
    u = np.random.default_rng(1).normal(size=(20, 3))
    x = g(u)
    n = g.image_size
    img = x[:, : n * n].reshape(-1, n, n)
    strip = x[:, n * n:]
    # row/column marginals of a separable Gaussian dot: log is a quadratic in the index;
    # its vertex is the centre (fit by least squares on the pixels above 1e-3)
    grid = np.arange(n)

    def centre(profile):
        keep = profile > 1e-3
        coef = np.polyfit(grid[keep], np.log(profile[keep]), 2)
        return -coef[1] / (2 * coef[0])

    col = np.array([centre(im.sum(0)) for im in img])
    row = np.array([centre(im.sum(1)) for im in img])
    w_x = col / (n - 1) * 6 - 3
    w_y = 3 - row / (n - 1) * 6
    w_z = np.array([centre(s) for s in strip]) / (n - 1) * 6 - 3
    u_hat = 2.5 * np.arctanh(np.stack([w_x, w_y, w_z], -1) / 3)
    np.testing.assert_allclose(u_hat, u, atol=1e-4)


@pytest.mark.parametrize("kind", ["mlp", "tuning", "frames"])
@pytest.mark.parametrize("name", ["van-der-pol", "lorenz", "random-4d"])
def test_mixings_have_full_column_rank_jacobians_on_the_data(kind, name):
    mu = systems.make_system(name, system_seed=1)
    g = systems.make_mixing(kind, mu, seed=4)
    states = mu.simulate(4, 10, seed=0).reshape(-1, mu.dim)
    for s in states[::4]:
        jac = _fd_jacobian(g, s, eps=1e-3 if kind == "frames" else 1e-5)  # frames: float32
        assert jac.shape == (g.obs_dim, mu.dim)
        sv = np.linalg.svd(jac, compute_uv=False)
        assert sv.min() > 1e-3 * sv.max()


def test_pendulum_frames_determine_angle_and_velocity():
    g = systems.PendulumFrames()
    states = systems.make_system("pendulum").simulate(8, 50, seed=0).reshape(-1, 2)
    states = np.concatenate([states[::25], [[1.7, 0.0], [-1.2, 0.0]]])  # turning points
    for s in states:
        sv = np.linalg.svd(_fd_jacobian(g, s, eps=1e-3), compute_uv=False)  # float32 frames
        assert sv.min() > 1e-2 * sv.max()
    # with a trail as narrow as the bob, the Jacobian is singular where ω = 0
    narrow = systems.PendulumFrames(trail_sigma=1.0)
    sv = np.linalg.svd(_fd_jacobian(narrow, np.array([1.7, 0.0]), eps=1e-3), compute_uv=False)
    assert sv.min() < 1e-3 * sv.max()
    # a single exposure does not: two velocities, one angle, identical bob-only frames
    single = systems.PendulumFrames(trail=0.0)
    a, b = np.array([0.5, 0.3]), np.array([0.5, -0.6])
    np.testing.assert_allclose(single(a), single(b), atol=1e-12)
    assert np.abs(g(a) - g(b)).max() > 0.05


def test_mixing_errors_name_the_argument():
    with pytest.raises(ValueError, match="mixing"):
        systems.make_mixing("pixels", systems.make_system("lorenz"))
    with pytest.raises(ValueError, match="pendulum"):
        systems.make_mixing("bob", systems.make_system("lorenz"))
    with pytest.raises(ValueError, match="system"):
        systems.make_system("duffing")
    with pytest.raises(ValueError, match="units"):
        systems.PopulationCode(3, units=3)


# ------------------------------------------------------------------ presets


def test_presets_cover_every_system_and_mixing():
    assert len(systems.PRESETS) == 3 * len(systems.SYSTEMS) + 1
    for name in systems.SYSTEMS:
        for kind in ("mlp", "tuning", "frames"):
            assert f"{name}/{kind}" in systems.PRESETS
    assert "pendulum/bob" in systems.PRESETS


@pytest.mark.parametrize("name", ["van-der-pol/frames", "lorenz/mlp", "random-3d/tuning",
                                  "pendulum/bob"])
def test_presets_split_noise_but_share_the_process(name):
    tr = systems.load(name, "train", num_sequences=3, length=20)
    te = systems.load(name, "test", num_sequences=3, length=20)
    assert tr.config["seed"] != te.config["seed"]
    assert not np.allclose(tr.latents, te.latents)
    np.testing.assert_allclose(tr.mixing(te.latents), te.observations, atol=1e-5)
    np.testing.assert_array_equal(tr.system.step(te.latents[0]), te.system.step(te.latents[0]))
    assert tr.observations.dtype == np.float32
    assert tr.observations.shape == (3, 20, tr.mixing.obs_dim)
    again = systems.load(name, "train", num_sequences=3, length=20)
    np.testing.assert_array_equal(again.observations, tr.observations)
    with pytest.raises(ValueError, match="seed"):
        systems.load(name, "train", seed=1)


def test_pendulum_preset_stays_below_the_top():
    d = systems.load("pendulum/mlp", "train", num_sequences=256)
    theta = d.latents[..., 0]
    assert np.abs(theta).max() < 0.9 * math.pi
    assert np.abs(theta).max() > 1.5  # large, non-harmonic swings


def test_standardisation_is_fixed_per_system():
    mu = systems.make_system("lorenz")
    m, v = mu.reference_stats
    states = mu.simulate(64, 200, seed=99).reshape(-1, 3)
    u = mu.standardise(states)
    np.testing.assert_allclose(u.mean(0), 0, atol=0.25)
    np.testing.assert_allclose(u.std(0), 1, atol=0.25)
    m2, _ = systems.make_system("lorenz").reference_stats
    np.testing.assert_array_equal(m, m2)
