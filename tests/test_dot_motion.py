"""DotMotion generator (docs/spec.md §5): every check against a closed form written here.

References: the world→pixel map, the Gaussian blob, the rotation angle, the square's
perimeter, the lemniscate of Gerono, scipy's ODE solver for the swirl field, binomial and
chi-square tolerances for jumps and noise.
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from ldm_keras.data import dot_motion as dm

S = 10


def _pixel(pos):
    """Independent world→pixel map: ±3 are the border-pixel centres, y points up."""
    pos = np.asarray(pos, dtype=np.float64)
    col = (pos[..., 0] + 3.0) / 6.0 * (S - 1)
    row = (3.0 - pos[..., 1]) / 6.0 * (S - 1)
    return row, col


def _wrap(a):
    return (a + np.pi) % (2.0 * np.pi) - np.pi


def _step_angles(pos):
    ang = np.arctan2(pos[..., 1], pos[..., 0]).astype(np.float64)
    return _wrap(np.diff(ang, axis=1))


# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize("trajectory", ["circular", "square", "figure-eight", "wobbly"])
def test_blob_centred_where_position_maps(trajectory):
    d = dm.generate(trajectory, num_sequences=6, length=40, seed=3)
    frames = d.frames.reshape(-1, S, S).astype(np.float64)
    row, col = _pixel(d.positions.reshape(-1, 2))
    # argmax pixel is the nearest pixel centre (inside the frame)
    idx = frames.reshape(len(frames), -1).argmax(-1)
    assert np.all(np.abs(idx // S - row) <= 0.5 + 1e-4)
    assert np.all(np.abs(idx % S - col) <= 0.5 + 1e-4)
    # centre of mass: unbiased when the dot is ≥ 3 px from every border
    grid = np.arange(S)
    mass = frames.sum((1, 2))
    com_r = (frames.sum(2) * grid).sum(1) / mass
    com_c = (frames.sum(1) * grid).sum(1) / mass
    inner = (row >= 3 - 1e-6) & (row <= S - 4 + 1e-6) & (col >= 3 - 1e-6) & (col <= S - 4 + 1e-6)
    assert inner.sum() > 50
    assert np.max(np.abs(com_r - row)[inner]) <= 0.5
    assert np.max(np.abs(com_c - col)[inner]) <= 0.5


def test_render_matches_gaussian_formula_everywhere():
    pos = np.random.default_rng(0).uniform(-3.0, 3.0, size=(50, 2))
    row, col = _pixel(pos)
    rr, cc = np.meshgrid(np.arange(S), np.arange(S), indexing="ij")
    expected = np.exp(-((rr - row[:, None, None]) ** 2 + (cc - col[:, None, None]) ** 2) / 2.0)
    got = dm.render(pos, image_size=S, sigma=1.0, flatten=False)
    assert got.shape == (50, S, S, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got[..., 0], expected, atol=1e-6)
    np.testing.assert_array_equal(dm.render(pos).reshape(50, S, S), got[..., 0])
    # any dot inside the world square: argmax within half a pixel of the mapped position
    idx = got.reshape(50, -1).argmax(-1)
    assert np.all(np.abs(idx // S - row) <= 0.5 + 1e-4)
    assert np.all(np.abs(idx % S - col) <= 0.5 + 1e-4)


def test_flatten_false_shape_and_content():
    a = dm.generate("circular", num_sequences=3, length=7, seed=1)
    b = dm.generate("circular", num_sequences=3, length=7, seed=1, flatten=False)
    assert a.frames.shape == (3, 7, 100) and b.frames.shape == (3, 7, 10, 10, 1)
    np.testing.assert_array_equal(a.frames, b.frames.reshape(3, 7, 100))
    assert a.positions.shape == (3, 7, 2) and a.positions.dtype == np.float32
    assert a.noise_levels.shape == (3, 7) and a.jumps.shape == (3, 7) and a.jumps.dtype == bool
    assert a["frames"] is a.frames


# ---------------------------------------------------------------- trajectories


def test_angular_step_matches_formula():
    assert dm.angular_step(0.1, 2.0) == pytest.approx(2 * math.pi * 0.1 / 2.0, rel=1e-12)
    assert dm.angular_step(0.1, 2.0) == pytest.approx(0.314159, abs=1e-6)
    for dt, period in [(0.1, 2.0), (0.2, 4.0), (0.05, 3.0)]:
        d = dm.generate("circular", num_sequences=5, length=60, dt=dt, period=period, seed=0)
        np.testing.assert_allclose(_step_angles(d.positions), 2 * math.pi * dt / period, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(d.positions, axis=-1), 1.0, atol=1e-5)


def test_circular_starts_at_one_zero_without_random_phase():
    d = dm.generate("circular", num_sequences=4, length=5, random_phase=False, seed=0)
    np.testing.assert_allclose(d.positions[:, 0], [[1.0, 0.0]] * 4, atol=1e-7)
    r = dm.generate("circular", num_sequences=64, length=2, seed=0)
    phases = np.arctan2(r.positions[:, 0, 1], r.positions[:, 0, 0])
    assert np.ptp(phases) > 3.0  # random start phases spread over the circle


def test_square_stays_on_perimeter_and_moves_at_constant_speed():
    dt, period = 0.2, 4.0
    d = dm.generate("square", num_sequences=8, length=100, dt=dt, period=period, seed=2)
    p = d.positions.astype(np.float64)
    np.testing.assert_allclose(np.max(np.abs(p), axis=-1), 1.0, atol=1e-6)
    # each step covers 8·dt/period of the perimeter; around a corner the L1 distance
    # between the two points still equals the arc length.
    l1 = np.abs(np.diff(p, axis=1)).sum(-1)
    np.testing.assert_allclose(l1, 8 * dt / period, atol=1e-5)
    cross = p[:, :-1, 0] * p[:, 1:, 1] - p[:, :-1, 1] * p[:, 1:, 0]
    assert np.all(cross > 0)  # counter-clockwise
    np.testing.assert_allclose(dm.square_perimeter(np.array([0.0, 0.125, 0.375])),
                               [[1, 0], [1, 1], [-1, 1]], atol=1e-12)


def test_figure_eight_follows_its_formula():
    dt, period = 0.1, 2.0
    d = dm.generate("figure-eight", num_sequences=16, length=80, dt=dt, period=period, seed=5)
    p = d.positions.astype(np.float64)
    x, y = p[..., 0], p[..., 1]
    np.testing.assert_allclose(y**2, x**2 * (1 - x**2), atol=1e-6)  # lemniscate of Gerono
    t = np.arange(80)
    checked = 0
    for n in range(16):
        if abs(x[n, 0]) < 0.2:
            continue
        theta0 = math.atan2(y[n, 0] / x[n, 0], x[n, 0])  # y/x = sin θ, x = cos θ
        theta = theta0 + t * dt * math.pi / period
        np.testing.assert_allclose(x[n], np.cos(theta), atol=1e-5)
        np.testing.assert_allclose(y[n], np.sin(theta) * np.cos(theta), atol=1e-5)
        checked += 1
    assert checked >= 8


def _swirl_reference(_, s, period=2.0, a=0.8):
    x, y = s
    om = 2 * math.pi / period * (1 + 0.4 * math.tanh(y))
    rad = 5.0 * (1 + a * math.tanh(x**3 - 3 * x * y * y) - x * x - y * y)
    return [-om * y + rad * x, om * x + rad * y]


def test_wobbly_integrates_the_documented_swirl_field():
    d = dm.generate("wobbly", num_sequences=3, length=60, dt=0.1, period=2.0, seed=4)
    p = d.positions.astype(np.float64)
    for n in range(3):
        for t in (0, 10, 40):
            sol = integrate.solve_ivp(_swirl_reference, (0.0, 0.1), p[n, t], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(sol.y[:, -1], p[n, t + 1], atol=2e-4)
    r = np.linalg.norm(p[:, 20:], axis=-1)
    assert r.min() > 0.6 and r.max() < 1.5
    assert np.ptp(r) > 0.2  # not a circle: the orbit wobbles


# ---------------------------------------------------------------- jumps and process noise


def test_jumps_at_requested_rate_and_135_degrees():
    rate, dt, period = 0.1, 0.1, 2.0
    d = dm.generate("circular", num_sequences=200, length=100, dt=dt, period=period,
                    jump_rate=rate, seed=11)
    assert not d.jumps[:, 0].any()
    trials = d.jumps[:, 1:].size
    sd = math.sqrt(rate * (1 - rate) / trials)
    assert abs(d.jumps[:, 1:].mean() - rate) < 4 * sd
    steps = _step_angles(d.positions)
    omega = 2 * math.pi * dt / period
    jumped = d.jumps[:, 1:]
    np.testing.assert_allclose(steps[~jumped], omega, atol=1e-5)
    np.testing.assert_allclose(_wrap(steps[jumped] - omega), 3 * math.pi / 4, atol=1e-5)


def test_figure_eight_jumps_advance_the_phase_by_135_degrees():
    dt, period = 0.1, 2.0
    d = dm.generate("figure-eight", num_sequences=4, length=50, dt=dt, period=period,
                    jump_rate=0.2, random_phase=False, seed=1)
    theta = np.arange(50) * dt * math.pi / period + 3 * math.pi / 4 * np.cumsum(d.jumps, 1)
    np.testing.assert_allclose(d.positions[..., 0], np.cos(theta), atol=1e-5)
    np.testing.assert_allclose(d.positions[..., 1], np.sin(theta) * np.cos(theta), atol=1e-5)


def test_process_noise_std_of_circular_state():
    sigma, dt, period = 0.05, 0.1, 2.0
    d = dm.generate("circular", num_sequences=100, length=50, dt=dt, period=period,
                    process_noise=sigma, seed=3)
    p = d.positions.astype(np.float64)
    w = 2 * math.pi * dt / period
    rot = np.array([[math.cos(w), -math.sin(w)], [math.sin(w), math.cos(w)]])
    resid = p[:, 1:] - p[:, :-1] @ rot.T
    n = resid.size
    assert abs(resid.std() / sigma - 1) < 4 / math.sqrt(2 * n)
    assert stats.kstest(resid.ravel() / sigma, "norm").pvalue > 1e-3


# ---------------------------------------------------------------- observation noise


def _residual(noise_type, level, trajectory="circular", **kw):
    noisy = dm.generate(trajectory, num_sequences=16, length=100, obs_noise=level,
                        noise_type=noise_type, seed=7, **kw)
    clean = dm.generate(trajectory, num_sequences=16, length=100, seed=7, **kw)
    np.testing.assert_array_equal(noisy.positions, clean.positions)
    return noisy, (noisy.frames - clean.frames).astype(np.float64)


def test_constant_noise_std_matches_requested_level():
    level = 0.2
    d, res = _residual("constant", level)
    np.testing.assert_allclose(d.noise_levels, level)
    tol = 4 / math.sqrt(2 * res.size)  # relative s.e. of a std estimate, 4 sigmas
    assert abs(res.std() / level - 1) < tol
    assert abs(res.mean()) < 4 * level / math.sqrt(res.size)


def test_random_noise_levels_uniform_and_used():
    level = 0.1
    d, res = _residual("random", level)
    lv = d.noise_levels.astype(np.float64)
    assert lv.min() >= 0 and lv.max() <= 2 * level
    assert stats.kstest(lv.ravel() / (2 * level), "uniform").pvalue > 1e-3
    z = res / lv[..., None]
    assert abs(z.std() - 1) < 4 / math.sqrt(2 * z.size)


def test_state_dependent_noise_levels_follow_x():
    level = 0.1
    d, res = _residual("state-dependent", level)
    expected = level * (1 + np.tanh(d.positions[..., 0].astype(np.float64)))
    np.testing.assert_allclose(d.noise_levels, expected, rtol=1e-5)
    ratio = (res**2).sum() / (100 * (expected**2).sum())
    assert abs(ratio - 1) < 4 * math.sqrt(2 / res.size)
    left = d.positions[..., 0] < -0.5
    right = d.positions[..., 0] > 0.5
    assert res[right].std() > 1.5 * res[left].std()


# ---------------------------------------------------------------- distortions


def test_swirl_distortion():
    kw = dict(num_sequences=4, length=10, seed=2)
    plain = dm.generate("circular", **kw)
    zero = dm.generate("circular", distortion="swirl", swirl_strength=0.0, **kw)
    np.testing.assert_allclose(zero.frames, plain.frames, atol=1e-5)
    sw = dm.generate("circular", distortion="swirl", swirl_strength=2.0, **kw)
    # reference: pixel (r, c) at world p shows the dot seen at R(2 exp(-|p|²/4)) p
    axis = np.linspace(-3, 3, S)
    r, c = 2, 7
    p = np.array([axis[c], axis[::-1][r]])
    a = 2.0 * math.exp(-(p @ p) / 4)
    q = np.array([math.cos(a) * p[0] - math.sin(a) * p[1], math.sin(a) * p[0] + math.cos(a) * p[1]])
    sig = 6.0 / (S - 1)
    pos = sw.positions.astype(np.float64)
    expected = np.exp(-((q - pos) ** 2).sum(-1) / (2 * sig**2))
    np.testing.assert_allclose(sw.frames[..., r * S + c], expected, atol=1e-5)
    assert np.abs(sw.frames - plain.frames).max() > 0.1


def test_half_flip_distortion():
    kw = dict(num_sequences=3, length=20, seed=4)
    plain = dm.generate("circular", flatten=False, **kw).frames[..., 0]
    hf = dm.generate("circular", distortion="half-flip", flatten=False, **kw).frames[..., 0]
    np.testing.assert_array_equal(hf[..., :5], plain[..., :5])
    np.testing.assert_array_equal(hf[..., 5:], plain[..., ::-1, 5:])


def test_mlp_renderer_frozen_and_seeded_separately():
    kw = dict(num_sequences=3, length=10, random_phase=False)
    a = dm.generate("circular", distortion="mlp", seed=1, **kw)
    b = dm.generate("circular", distortion="mlp", seed=2, **kw)  # other data seed, same renderer
    np.testing.assert_array_equal(a.frames, b.frames)
    clean = dm.render(a.positions.astype(np.float64))
    np.testing.assert_allclose(a.frames, dm.random_mlp_renderer(10, seed=0)(clean), atol=1e-5)
    c = dm.generate("circular", distortion="mlp", distortion_seed=9, seed=1, **kw)
    assert np.abs(c.frames - a.frames).max() > 0.1


# ---------------------------------------------------------------- seeds and presets


def test_same_seed_identical_different_seed_different():
    a = dm.generate("square", num_sequences=4, obs_noise=0.1, jump_rate=0.05, seed=0, dt=0.2, period=4)
    b = dm.generate("square", num_sequences=4, obs_noise=0.1, jump_rate=0.05, seed=0, dt=0.2, period=4)
    c = dm.generate("square", num_sequences=4, obs_noise=0.1, jump_rate=0.05, seed=1, dt=0.2, period=4)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)


@pytest.mark.parametrize("name", sorted(dm.PRESETS))
def test_presets_train_and_test_differ(name):
    tr = dm.load(name, "train", num_sequences=4)
    te = dm.load(name, "test", num_sequences=4)
    again = dm.load(name, "train", num_sequences=4)
    assert tr.config["seed"] != te.config["seed"]
    np.testing.assert_array_equal(tr.frames, again.frames)
    assert not np.allclose(tr.positions, te.positions)
    assert tr.frames.shape == (4, 100, 100)


def test_presets_use_reference_settings():
    args, n_train, _, _, _ = dm.PRESETS["circular"]
    assert (args["dt"], args["period"], n_train) == (0.1, 2.0, 3200)
    assert dm.angular_step(args["dt"], args["period"]) == pytest.approx(0.31416, abs=1e-5)
    args, n_train, _, _, _ = dm.PRESETS["square"]
    assert (args["dt"], args["period"], args["obs_noise"], n_train) == (0.2, 4.0, 0.1, 800)
    noisy = dm.load("circular-noisy", "train", num_sequences=64)
    assert noisy.jumps.any() and noisy.config["obs_noise"] > 0
    sq = dm.load("square", "test", num_sequences=2, flatten=False)
    assert sq.frames.shape == (2, 100, 10, 10, 1)


# ---------------------------------------------------------------- validation


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="circular.*figure-eight|figure-eight.*circular"):
        dm.generate("spiral")
    with pytest.raises(ValueError, match="circular-noisy"):
        dm.load("spiral")
    with pytest.raises(ValueError, match="split"):
        dm.load("circular", split="validation")
    with pytest.raises(ValueError, match="seed"):
        dm.load("circular", seed=3)
    for kw in (dict(length=0), dict(length=-5), dict(dt=0.0), dict(dt=-0.1), dict(period=0),
               dict(period=-2.0), dict(num_sequences=0), dict(jump_rate=1.5),
               dict(obs_noise=-0.1), dict(noise_type="pink"), dict(distortion="blur"),
               dict(length=2.5)):
        with pytest.raises(ValueError):
            dm.generate("circular", **kw)
    with pytest.raises(ValueError, match="process_noise"):
        dm.generate("square", process_noise=0.1)
    with pytest.raises(ValueError, match="period"):
        dm.angular_step(0.1, 0.0)


# ---------------------------------------------------------------- pendulum videos (same renderer)


def _pendulum_reference(_, y, w0sq=(2 * math.pi / 2.0) ** 2, damping=0.0):
    return [y[1], -w0sq * math.sin(y[0]) - damping * y[1]]


def test_pendulum_integrates_its_ode_and_conserves_energy():
    from ldm_keras.data import pendulum

    d = pendulum.generate(num_sequences=4, length=60, dt=0.1, period=2.0, seed=2)
    th, w = d.angles.astype(np.float64), d.angular_velocities.astype(np.float64)
    for n in range(2):
        sol = integrate.solve_ivp(_pendulum_reference, (0.0, 5.9), [th[n, 0], w[n, 0]],
                                  t_eval=np.arange(60) * 0.1, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(th[n], sol.y[0], atol=2e-3)
        np.testing.assert_allclose(w[n], sol.y[1], atol=1e-2)
    w0sq = (2 * math.pi / 2.0) ** 2
    e = 0.5 * w**2 + w0sq * (1 - np.cos(th))  # reference energy formula
    np.testing.assert_allclose(e, np.broadcast_to(e[:, :1], e.shape), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pendulum.energy(th, w, 2.0), e, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(d.positions, axis=-1), 2.0, atol=1e-5)
    np.testing.assert_allclose(d.positions[..., 0], 2.0 * np.sin(th), atol=1e-5)
    np.testing.assert_allclose(d.positions[..., 1], -2.0 * np.cos(th), atol=1e-5)
    row, col = _pixel(d.positions.reshape(-1, 2))
    idx = d.frames.reshape(-1, S * S).argmax(-1)
    assert np.all(np.abs(idx // S - row) <= 0.5 + 1e-4)
    assert np.all(np.abs(idx % S - col) <= 0.5 + 1e-4)


def test_pendulum_small_angle_period_damping_seeds_and_errors():
    from ldm_keras.data import pendulum

    d = pendulum.generate(num_sequences=2, length=41, dt=0.05, period=2.0, max_angle=0.05, seed=0)
    th = d.angles.astype(np.float64)
    # started at rest: after one small-angle period it is back where it started
    np.testing.assert_allclose(th[:, 40], th[:, 0], atol=2e-3 * np.abs(th[:, 0]).max() + 1e-6)
    damped = pendulum.generate(num_sequences=3, length=80, damping=0.3, seed=1)
    e = pendulum.energy(damped.angles, damped.angular_velocities)
    assert np.all(e[:, -1] < 0.5 * e[:, 0])
    tr, te = pendulum.load("pendulum", "train", 4), pendulum.load("pendulum", "test", 4)
    assert not np.allclose(tr.angles, te.angles)
    np.testing.assert_array_equal(tr.frames, pendulum.load("pendulum", "train", 4).frames)
    noisy = pendulum.load("pendulum-noisy", "train", 2, flatten=False)
    assert noisy.frames.shape == (2, 100, 10, 10, 1) and noisy.frames.dtype == np.float32
    for kw in (dict(length=0), dict(dt=0), dict(period=-1), dict(max_angle=3.2), dict(arm=4)):
        with pytest.raises(ValueError):
            pendulum.generate(**kw)
    with pytest.raises(ValueError, match="pendulum-noisy"):
        pendulum.load("double-pendulum")
