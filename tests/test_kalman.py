"""KalmanCell / KalmanFilter against statsmodels' state-space Kalman filter (float64).

Timing convention: our ``h₀ = 0, P₀ = I`` is the posterior at t = 0, so statsmodels'
known initial (predicted) state for the first observation is ``A (h₀ - b) + b`` with
covariance ``A P₀ Aᵀ + Σ_A``; its ``state_intercept`` is ``(I - A) b``.
"""

import time

import keras
import numpy as np
import pytest
from helpers import BACKEND, gradients, run_layer_test, statsmodels_lgssm, to_numpy
from statsmodels.tsa.statespace.kalman_filter import KalmanFilter as SMKalmanFilter

from ldm_keras.predictors import KalmanCell, KalmanFilter, TransitionInitializer, spectral_radius

TOL = {"rtol": 1e-4, "atol": 1e-4}


# --------------------------------------------------------------------------- references


def stable_matrix(rng, s, radius):
    a = rng.normal(size=(s, s))
    return radius * a / np.max(np.abs(np.linalg.eigvals(a)))


def simulate(rng, batch, steps, a, b, d, q, r):
    """Draw sequences from the linear-Gaussian model (r: (L,) or (B, T, L))."""
    s, l_ = a.shape[0], d.shape[0]
    r = np.broadcast_to(r, (batch, steps, l_))
    h = np.zeros((batch, s))
    zs = np.empty((batch, steps, l_))
    for t in range(steps):
        h = (h - b) @ a.T + b + rng.normal(size=(batch, s)) * np.sqrt(q)
        zs[:, t] = h @ d.T + rng.normal(size=(batch, l_)) * np.sqrt(r[:, t])
    return zs.astype("float32")


def statsmodels_filter(y, a, b, d, q, r, m0=None, c0=None):
    """statsmodels' Kalman filter of one sequence y (T, L); r: (L,) or (T, L) variances."""
    res = statsmodels_lgssm(SMKalmanFilter, y, a, b, d, q, r, m0, c0).filter()
    return {
        "state_mean": res.filtered_state.T,
        "state_cov": res.filtered_state_cov.transpose(2, 0, 1),
        "prediction": res.forecasts.T,
        "prediction_cov": res.forecasts_error_cov.transpose(2, 0, 1),
        "nll": -res.llf_obs,
        "llf": res.llf,
    }


def statsmodels_batch(z, a, b, d, q, r, m0=None, c0=None):
    """statsmodels over a batch; r: (L,) or per-sequence (B, T, L); m0, c0 per sequence."""
    outs = []
    for i in range(z.shape[0]):
        ri = r[i] if np.ndim(r) == 3 else r
        outs.append(statsmodels_filter(z[i], a, b, d, q, ri,
                                       None if m0 is None else m0[i],
                                       None if c0 is None else c0[i]))
    return {k: np.stack([o[k] for o in outs]) for k in outs[0]}


def make_filter(s, l_, a, b, d, q, r, scale=1.0, **cell_kwargs):
    """A KalmanFilter with learned D and the given parameters (Σ = scale·diag)."""
    cell = {"state_dim": s, "observation_dim": l_, "observation_matrix": "learned",
            "include_constant": True, **cell_kwargs}
    kf = KalmanFilter(cell)
    width = 2 * l_ if cell_kwargs.get("observation_noise") == "input" else l_
    kf.build((None, None, width))
    c = kf.cell
    c.transition.assign(a.astype("float32"))
    c.offset.assign(b.astype("float32"))
    c.observation.assign(d.astype("float32"))
    c.log_process_var.assign(np.log(q / scale).astype("float32"))
    if c.observation_noise == "learned":
        c.log_observation_var.assign(np.log(r / scale).astype("float32"))
    c.log_noise_scale.assign(np.float32(np.log(scale)))
    return kf


def random_params(rng, s, l_, radius=0.9):
    a = stable_matrix(rng, s, radius)
    b = rng.normal(size=s)
    d = rng.normal(size=(l_, s))
    q = rng.uniform(0.05, 0.3, size=s)
    r = rng.uniform(0.1, 0.5, size=l_)
    return a, b, d, q, r


# --------------------------------------------------------------------------- agreement


def test_filter_matches_statsmodels(rng):
    s, l_ = 3, 2
    a, b, d, q, r = random_params(rng, s, l_)
    scale = 1.3  # the shared exp(s) multiplies both Σ_A and Σ_D
    z = simulate(rng, 3, 40, a, b, d, q, r)
    kf = make_filter(s, l_, a, b, d, q, r, scale=scale)
    out = to_numpy(kf(z))
    ref = statsmodels_batch(z, a, b, d, q, r)
    for key in ("prediction", "prediction_cov", "state_mean", "state_cov", "nll"):
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)
    np.testing.assert_allclose(-out["nll"].sum(axis=1), ref["llf"], rtol=1e-4)


def test_fixed_observation_matrix_and_initial_state(rng):
    s, l_ = 3, 2
    a, b, _, q, r = random_params(rng, s, l_)
    d = np.eye(l_, s)  # [I 0]
    z = simulate(rng, 2, 20, a, b, d, q, r)
    kf = KalmanFilter({"state_dim": s, "observation_dim": l_, "observation_noise": "learned",
                       "include_constant": True, "learn_noise_scale": False})
    kf.build((None, None, l_))
    kf.cell.transition.assign(a.astype("float32"))
    kf.cell.offset.assign(b.astype("float32"))
    kf.cell.log_process_var.assign(np.log(q).astype("float32"))
    kf.cell.log_observation_var.assign(np.log(r).astype("float32"))
    m0 = rng.normal(size=(2, s)).astype("float32")
    w = rng.normal(size=(2, s, s))
    c0 = (w @ w.transpose(0, 2, 1) / s + 0.5 * np.eye(s)).astype("float32")
    out = to_numpy(kf(z, initial_mean=m0, initial_cov=c0))
    ref = statsmodels_batch(z, a, b, d, q, r, m0=m0, c0=c0)
    for key in ("prediction", "prediction_cov", "state_mean", "state_cov", "nll"):
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)


def test_heteroscedastic_observation_noise_matches_statsmodels(rng):
    s, l_ = 2, 3  # also L > S with a learned D
    a, b, d, q, _ = random_params(rng, s, l_)
    log_var = rng.uniform(np.log(0.05), np.log(2.0), size=(2, 30, l_))
    z = simulate(rng, 2, 30, a, b, d, q, np.exp(log_var))
    kf = make_filter(s, l_, a, b, d, q, None, observation_noise="input")
    x = np.concatenate([z, log_var.astype("float32")], axis=-1)
    out = to_numpy(kf(x))
    ref = statsmodels_batch(z, a, b, d, q, np.exp(log_var))
    for key in ("prediction", "prediction_cov", "state_mean", "state_cov", "nll"):
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)


def test_long_sequence_agrees_and_stays_finite(rng):
    s = l_ = 2
    theta = 2 * np.pi * 0.1 / 2.0  # the DotMotion circular rotation per step
    a = 0.99 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    b = np.array([0.2, -0.1])
    d, q, r = np.eye(2), np.array([0.01, 0.02]), np.array([0.1, 0.05])
    z = simulate(rng, 1, 1000, a, b, d, q, r)
    kf = make_filter(s, l_, a, b, d, q, r)
    inp = keras.Input((1000, 2), batch_size=1)
    model = keras.Model(inp, kf(inp))
    out = model.predict(z, verbose=0)  # the compiled path (tf.function / jax.jit)
    assert all(np.all(np.isfinite(v)) for v in out.values())
    ref = statsmodels_batch(z, a, b, d, q, r)
    for key in ("prediction", "prediction_cov", "state_mean", "state_cov", "nll"):
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)
    np.testing.assert_allclose(out["nll"].sum(), -ref["llf"].sum(), rtol=1e-4)


def test_large_state_agrees_and_stays_finite(rng):
    s, l_ = 32, 4
    a, b, d, q, r = random_params(rng, s, l_, radius=0.8)
    z = simulate(rng, 2, 8, a, b, d, q, r)
    out = to_numpy(make_filter(s, l_, a, b, d, q, r)(z))
    assert all(np.all(np.isfinite(v)) for v in out.values())
    ref = statsmodels_batch(z, a, b, d, q, r)
    for key in ("prediction", "prediction_cov", "state_mean", "state_cov", "nll"):
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)


def numpy_filter_with_innovation_net(z, a, b, d, q, r, w1, b1, w2, b2, k):
    """Float64 reference: Σ_A,t = diag(q + softplus(tanh(e_hist W1 + b1) W2 + b2))."""
    steps, l_ = z.shape
    s = a.shape[0]
    h, p = np.zeros(s), np.eye(s)
    hist = np.zeros(k * l_)
    preds, nlls, means = [], [], []
    for t in range(steps):
        extra = np.logaddexp(0.0, np.tanh(hist @ w1 + b1) @ w2 + b2)
        hm = a @ (h - b) + b
        pm = a @ p @ a.T + np.diag(q + extra)
        zhat = d @ hm
        smat = d @ pm @ d.T + np.diag(r)
        gain = pm @ d.T @ np.linalg.inv(smat)
        e = z[t] - zhat
        h = hm + gain @ e
        p = (np.eye(s) - gain @ d) @ pm
        nlls.append(0.5 * e @ np.linalg.solve(smat, e) + 0.5 * np.linalg.slogdet(smat)[1]
                    + 0.5 * l_ * np.log(2 * np.pi))
        preds.append(zhat)
        means.append(h)
        hist = np.concatenate([hist[l_:], e])
    return np.array(preds), np.array(nlls), np.array(means)


def test_innovation_history_network_matches_numpy(rng):
    s, l_, k = 2, 2, 3
    a, b, d, q, r = random_params(rng, s, l_)
    z = simulate(rng, 2, 25, a, b, d, q, r)
    z[:, 12] += 3.0  # a jump
    kf = make_filter(s, l_, a, b, d, q, r, innovation_history=k, innovation_units=5)
    hidden, final = kf.cell._innovation_hidden, kf.cell._innovation_out
    hidden.kernel.assign(rng.normal(size=(k * l_, 5)).astype("float32"))
    hidden.bias.assign(rng.normal(size=5).astype("float32") * 0.1)
    final.kernel.assign(rng.normal(size=(5, s)).astype("float32"))
    final.bias.assign(np.full(s, -1.0, "float32"))
    weights = [np.asarray(to_numpy(v), "float64")
               for v in (hidden.kernel, hidden.bias, final.kernel, final.bias)]
    out = to_numpy(kf(z))
    for i in range(2):
        pred, nll, mean = numpy_filter_with_innovation_net(z[i].astype("float64"), a, b, d, q, r,
                                                           *weights, k)
        np.testing.assert_allclose(out["prediction"][i], pred, **TOL)
        np.testing.assert_allclose(out["nll"][i], nll, **TOL)
        np.testing.assert_allclose(out["state_mean"][i], mean, **TOL)


def test_cell_in_plain_keras_rnn_matches_filter(rng):
    z = rng.normal(size=(3, 6, 2)).astype("float32")
    cell = KalmanCell(state_dim=3, observation_dim=2, seed=3)
    kf = KalmanFilter(cell)
    out = to_numpy(kf(z))
    flat = to_numpy(keras.layers.RNN(cell, return_sequences=True)(z))  # uses get_initial_state
    assert flat.shape == (3, 6, cell.output_size) == (3, 6, 2 + 1 + 3 + 4 + 9)
    np.testing.assert_allclose(flat[..., :2], out["prediction"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(flat[..., 2], out["nll"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(flat[..., 3:6], out["state_mean"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(flat[..., 6:10].reshape(3, 6, 2, 2), out["prediction_cov"],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(flat[..., 10:].reshape(3, 6, 3, 3), out["state_cov"],
                               rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("stop", [True, False])
def test_stop_gradient_target_semantics(rng, stop):
    s = l_ = 2
    a, b, d, q, r = random_params(rng, s, l_)
    z = simulate(rng, 2, 6, a, b, d, q, r)
    kf = make_filter(s, l_, a, b, d, q, r, stop_gradient_targets=stop)
    (g,) = gradients(lambda x: kf(x)["nll"][:, -1], (z,))
    # z_T-1 reaches nll_T through the prediction (the past): never zero.
    assert np.all(np.abs(g[:, -2]) > 1e-6)
    ref = statsmodels_batch(z, a, b, d, q, r)
    e = z[:, -1] - ref["prediction"][:, -1]
    expected = np.linalg.solve(ref["prediction_cov"][:, -1], e[..., None])[..., 0]
    np.testing.assert_allclose(g[:, -1], 0.0 if stop else expected, **TOL)


def test_gradient_reaches_per_frame_observation_noise(rng):
    s = l_ = 2
    a, b, d, q, _ = random_params(rng, s, l_)
    log_var = rng.uniform(-2.0, 0.0, size=(2, 5, l_))
    z = simulate(rng, 2, 5, a, b, d, q, np.exp(log_var))
    kf = make_filter(s, l_, a, b, d, q, None, observation_noise="input")
    x = np.concatenate([z, log_var.astype("float32")], -1)
    (g,) = gradients(lambda v: kf(v)["nll"][:, -1], (x,))
    ref = statsmodels_batch(z, a, b, d, q, np.exp(log_var))
    sinv = np.linalg.inv(ref["prediction_cov"][:, -1])
    w = np.einsum("bij,bj->bi", sinv, z[:, -1] - ref["prediction"][:, -1])
    # d nll / d log r_l = ½ r_l (S⁻¹_ll - w_l²) with w = S⁻¹ e  (dS / d log r_l = r_l E_ll)
    expected = 0.5 * np.exp(log_var[:, -1]) * (np.diagonal(sinv, axis1=1, axis2=2) - w ** 2)
    np.testing.assert_allclose(g[:, -1, l_:], expected, **TOL)
    np.testing.assert_allclose(g[:, -1, :l_], 0.0, atol=1e-7)  # stop-gradient target


# --------------------------------------------------------------------------- transition


def test_spectral_radius_matches_numpy(rng):
    mats = [rng.normal(size=(5, 5)), rng.normal(size=(32, 32)) / 3,
            np.array([[0.9, 5.0], [0.0, 0.9]]),  # non-normal Jordan-like block
            np.array([[0.0, -2.0], [2.0, 0.0]])]  # complex pair
    for m in mats:
        want = np.max(np.abs(np.linalg.eigvals(m)))
        got = float(to_numpy(spectral_radius(m.astype("float32"))))
        np.testing.assert_allclose(got, want, rtol=1e-4)


def test_initial_transition_and_clamp(rng):
    kf = KalmanFilter({"state_dim": 4, "seed": 7})
    kf.build((None, None, 4))
    a0 = to_numpy(kf.transition_matrix)
    np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(a0))), 1 / 1.1, rtol=1e-4)
    a = 1.5 * stable_matrix(rng, 4, 1.0)
    kf.cell.transition.assign(a.astype("float32"))
    rho = float(to_numpy(kf.clamp_spectral_radius(1.02)))
    np.testing.assert_allclose(rho, 1.5, rtol=1e-4)
    a1 = to_numpy(kf.transition_matrix)
    np.testing.assert_allclose(a1, a * 1.02 / 1.5, rtol=1e-4, atol=1e-6)
    small = stable_matrix(rng, 4, 0.5).astype("float32")
    kf.cell.transition.assign(small)
    kf.clamp_spectral_radius(1.02)
    np.testing.assert_allclose(to_numpy(kf.transition_matrix), small, rtol=1e-6)


def test_rotation_per_step_of_learned_transition():
    kf = KalmanFilter({"state_dim": 2})
    kf.build((None, None, 2))
    th = 0.3142
    rot = 0.98 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    kf.cell.transition.assign(rot.astype("float32"))
    np.testing.assert_allclose(kf.rotation_per_step(), [th, -th], rtol=1e-5)


def test_variable_groups_partition_trainable_variables():
    kf = KalmanFilter({"state_dim": 2, "innovation_history": 2, "observation_matrix": "learned"})
    kf.build((None, None, 2))
    groups = kf.variable_groups()
    names = sorted(v.name for v in groups["dynamics"])
    assert names == sorted(["transition", "offset", "observation", "log_process_var",
                            "log_observation_var", "log_noise_scale"])
    assert len(groups["noise_network"]) == 4
    every = groups["dynamics"] + groups["noise_network"]
    assert sorted(map(id, every)) == sorted(map(id, kf.trainable_variables))


def test_transition_initializer_config_round_trip():
    init = TransitionInitializer(spectral_radius=0.5, seed=3)
    again = TransitionInitializer.from_config(init.get_config())
    np.testing.assert_allclose(to_numpy(init((3, 3))), to_numpy(again((3, 3))), rtol=1e-6)
    np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(to_numpy(init((3, 3)))))), 0.5,
                               rtol=1e-4)


@pytest.mark.parametrize("state_dim", [1, 2, 4, 5])
def test_rotation_start_has_the_spread_eigenvalues(state_dim):
    """``max_angle``: eigenvalues ρ₀ e^{±iφ_k}, φ_k = (k+1)/⌊S/2⌋ · φ (odd S: one more at ρ₀),
    checked with NumPy's eigvals (1e-5); the config round trip keeps it."""
    phi, radius = np.pi / 8, 1 / 1.1
    init = TransitionInitializer(spectral_radius=radius, max_angle=phi, seed=0)
    a = to_numpy(TransitionInitializer.from_config(init.get_config())((state_dim, state_dim)))
    eig = np.linalg.eigvals(a.astype("float64"))
    pairs = state_dim // 2
    want = [radius * np.exp(sign * 1j * (k + 1) / pairs * phi)
            for k in range(pairs) for sign in (1, -1)] + [radius] * (state_dim % 2)
    key = lambda v: (round(float(np.angle(v)), 6), round(float(abs(v)), 6))  # noqa: E731
    np.testing.assert_allclose(sorted(eig, key=key), sorted(want, key=key), atol=1e-5)
    np.testing.assert_allclose(a @ a.T, radius ** 2 * np.eye(state_dim), atol=1e-6)  # ρ₀·rotation


def test_kalman_cell_initial_rotation_discrete_and_continuous():
    """The cell's ``initial_rotation``: discrete ``A₀`` is the rotation blocks; in continuous
    time ``expm(F₀)`` (SciPy) equals the same ``A₀`` to 1e-5; a bad angle is a ValueError."""
    from scipy.linalg import expm

    from ldm_keras.predictors.transition import rotation_blocks

    want = rotation_blocks(4, 0.3, 1 / 1.1)
    cell = KalmanCell(state_dim=4, observation_dim=2, initial_rotation=0.3)
    cell.build((None, 2))
    np.testing.assert_allclose(to_numpy(cell.transition), want, atol=1e-6)
    assert KalmanCell.from_config(cell.get_config()).initial_rotation == 0.3
    cont = KalmanCell(state_dim=4, observation_dim=2, initial_rotation=0.3,
                      dynamics="continuous")
    cont.build((None, 3))
    np.testing.assert_allclose(expm(to_numpy(cont.drift).astype("float64")), want, atol=1e-5)
    for bad in (0.0, -1.0, 4.0, float("nan")):
        with pytest.raises(ValueError, match="initial_rotation"):
            KalmanCell(state_dim=2, initial_rotation=bad)


def test_rollout_matches_numpy_recursion(rng):
    s, l_ = 3, 2
    a, b, d, q, r = random_params(rng, s, l_)
    kf = make_filter(s, l_, a, b, d, q, r)
    m0 = rng.normal(size=(2, s))
    c0 = np.stack([np.eye(s) * 0.3] * 2)
    out = to_numpy(kf.rollout(m0.astype("float32"), c0.astype("float32"), steps=5))
    m, c = m0, c0
    for j in range(5):
        m = (m - b) @ a.T + b
        c = a @ c @ a.T + np.diag(q)
        np.testing.assert_allclose(out["state_mean"][:, j], m, **TOL)
        np.testing.assert_allclose(out["state_cov"][:, j], c, **TOL)
        np.testing.assert_allclose(out["prediction"][:, j], m @ d.T, **TOL)
        np.testing.assert_allclose(out["prediction_cov"][:, j], d @ c @ d.T + np.diag(r), **TOL)


def test_rollout_with_per_step_observation_noise(rng):
    s, l_ = 2, 2
    a, b, d, q, _ = random_params(rng, s, l_)
    kf = make_filter(s, l_, a, b, d, q, None, observation_noise="input", innovation_history=2)
    lv = rng.uniform(-2, 0, size=(1, 3, l_))
    out = to_numpy(kf.rollout(np.zeros((1, s), "float32"), np.eye(s, dtype="float32")[None],
                              steps=3, observation_log_var=lv.astype("float32")))
    # zero innovations: the network adds softplus(net(0)) to Σ_A, the same at every step
    net = kf.cell._innovation_out(kf.cell._innovation_hidden(np.zeros((1, 2 * l_), "float32")))
    q_eff = q + np.log1p(np.exp(to_numpy(net)[0]))
    c = np.eye(s)
    for j in range(3):
        c = a @ c @ a.T + np.diag(q_eff)
        np.testing.assert_allclose(out["prediction_cov"][0, j],
                                   d @ c @ d.T + np.diag(np.exp(lv[0, j])), **TOL)


# --------------------------------------------------------------------------- layer tests


def test_kalman_filter_layer(rng):
    z = rng.normal(size=(4, 6, 2)).astype("float32")
    shapes = {"prediction": (4, 6, 2), "prediction_cov": (4, 6, 2, 2), "nll": (4, 6),
              "state_mean": (4, 6, 3), "state_cov": (4, 6, 3, 3)}
    run_layer_test(KalmanFilter, {"cell": {"state_dim": 3, "observation_dim": 2, "seed": 1}},
                   z, shapes)


def test_kalman_filter_layer_all_options(rng):
    z = rng.normal(size=(4, 5, 3)).astype("float32")
    lv = rng.uniform(-1, 0, size=(4, 5, 3)).astype("float32")
    cell = {"state_dim": 2, "observation_dim": 3, "observation_matrix": "learned",
            "observation_noise": "input", "innovation_history": 2, "seed": 2,
            "stop_gradient_targets": False}
    shapes = {"prediction": (4, 5, 3), "nll": (4, 5), "state_mean": (4, 5, 2)}
    run_layer_test(KalmanFilter, {"cell": cell, "return_covariances": False},
                   np.concatenate([z, lv], -1), shapes)


def test_global_mixed_policy_keeps_float32():
    z = np.random.default_rng(1).normal(size=(2, 5, 2)).astype("float32")
    ref = KalmanFilter({"state_dim": 2, "seed": 0})
    want = to_numpy(ref(z))
    keras.config.set_dtype_policy("mixed_float16")
    kf = KalmanFilter({"state_dim": 2, "seed": 0})
    kf.build((None, None, 2))
    kf.set_weights(ref.get_weights())
    got = kf(z)
    for key, value in got.items():
        assert keras.backend.standardize_dtype(value.dtype) == "float32", key
        np.testing.assert_allclose(to_numpy(value), want[key], rtol=1e-6, atol=1e-6)


def test_symbolic_unknown_batch_and_time():
    inp = keras.Input((None, 2))
    out = KalmanFilter({"state_dim": 2})(inp)
    assert tuple(out["state_cov"].shape) == (None, None, 2, 2)
    assert out["nll"].dtype == "float32"


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises(rng):
    kf = KalmanFilter({"state_dim": 2})
    with pytest.raises(ValueError, match="rank-3"):
        kf(np.zeros((4, 2), "float32"))
    with pytest.raises(ValueError, match="at least 2 time steps"):
        kf(np.zeros((4, 1, 2), "float32"))
    with pytest.raises(ValueError, match="expects 2 features"):
        kf(np.zeros((4, 5, 3), "float32"))
    bad = rng.normal(size=(2, 5, 2)).astype("float32")
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        kf(bad)
    with pytest.raises(ValueError, match="initial_mean"):
        kf(np.zeros((2, 5, 2), "float32"), initial_mean=np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="initial_cov"):
        kf(np.zeros((2, 5, 2), "float32"), initial_cov=np.zeros((2, 2), "float32"))
    with pytest.raises(ValueError, match="2L|4 features"):
        KalmanFilter({"state_dim": 2, "observation_noise": "input"})(
            np.zeros((2, 5, 2), "float32"))
    with pytest.raises(ValueError, match="rank-3"):
        KalmanFilter({"state_dim": 2})(keras.Input((2,)))


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="observation_dim <= state_dim"):
        KalmanCell(state_dim=2, observation_dim=3)
    with pytest.raises(ValueError, match="state_dim"):
        KalmanCell(state_dim=0)
    with pytest.raises(ValueError, match="observation_noise"):
        KalmanCell(state_dim=2, observation_noise="diagonal")
    with pytest.raises(ValueError, match="cell"):
        KalmanFilter(keras.layers.GRUCell(3))
    kf = KalmanFilter({"state_dim": 2, "observation_noise": "input"})
    kf.build((None, None, 4))
    with pytest.raises(ValueError, match="observation_log_var"):
        kf.rollout(np.zeros((1, 2), "float32"), np.eye(2, dtype="float32")[None], steps=3)
    with pytest.raises(ValueError, match="steps"):
        kf.rollout(np.zeros((1, 2), "float32"), np.eye(2, dtype="float32")[None], steps=0)


# --------------------------------------------------------------------------- speed


@pytest.mark.skipif(BACKEND != "jax", reason="compiled-speed sanity check on jax")
def test_forward_backward_speed_jax(rng):
    import jax

    kf = KalmanFilter({"state_dim": 2})
    kf.build((32, 100, 2))
    z = rng.normal(size=(32, 100, 2)).astype("float32")

    def loss(trainable, non_trainable, x):
        out, _ = kf.stateless_call(trainable, non_trainable, x)
        return out["nll"].mean(axis=0).sum()

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 2)))
    tv = [v.value for v in kf.trainable_variables]
    ntv = [v.value for v in kf.non_trainable_variables]
    jax.block_until_ready(step(tv, ntv, z))  # compile
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(step(tv, ntv, z))
        times.append(time.perf_counter() - t0)
    assert min(times) < 0.5, f"forward+backward took {times} s"


# --------------------------------------------------------------------------- learning


@pytest.mark.slow
def test_maximum_likelihood_fit_recovers_rotation(rng):
    """Training A, b, Σ by the innovation likelihood finds the true rotation per step."""
    theta = 0.3142
    a = 0.99 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    h = rng.normal(size=(32, 2))
    frames = []
    for _ in range(20):
        h = h @ a.T + 0.05 * rng.normal(size=h.shape)
        frames.append(h + 0.1 * rng.normal(size=h.shape))
    z = np.stack(frames, 1).astype("float32")
    kf = KalmanFilter({"state_dim": 2, "seed": 0}, return_covariances=False)
    inp = keras.Input((20, 2))
    model = keras.Model(inp, kf(inp)["nll"])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=lambda y, p: keras.ops.mean(p))
    model.fit(z, np.zeros((32, 20), "float32"), epochs=60, batch_size=32, verbose=0)
    kf.clamp_spectral_radius(1.02)
    learned = kf.rotation_per_step()[0]
    assert abs(learned - theta) < 0.01, f"learned rotation {learned}, true {theta}"
