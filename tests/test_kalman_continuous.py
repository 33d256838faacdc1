"""Continuous-time Kalman cell (irregular sampling) against SciPy and statsmodels.

``KalmanCell(dynamics="continuous")``: ``dh = F (h - b) dt + dW`` with diffusion
``Q_c``; over a gap Δt the transition is ``expm(F Δt)`` and the process noise
``∫₀^Δt e^{Fs} Q_c e^{Fᵀs} ds``. References: ``scipy.linalg.expm``, SciPy quadrature
(``quad_vec``) for the noise integral, and statsmodels' filter with the time-varying
discretised matrices.
"""

import keras
import numpy as np
import pytest
import scipy.linalg
from helpers import gradients, run_layer_test, to_numpy
from scipy.integrate import quad_vec
from statsmodels.tsa.statespace.kalman_filter import KalmanFilter as SMKalmanFilter

from ldm_keras.models.encoders import mlp
from ldm_keras.models.predictive import PredictiveLDM
from ldm_keras.predictors import KalmanCell, KalmanFilter
from ldm_keras.predictors._linalg import expm, van_loan

TOL = {"rtol": 1e-4, "atol": 1e-4}
KEYS = ("prediction", "prediction_cov", "state_mean", "state_cov", "nll")


def test_expm_matches_scipy(rng):
    mats = [rng.normal(size=(4, 3, 3)) * scale for scale in (0.01, 0.5, 3.0, 20.0)]
    mats.append(np.array([[[0.0, -2.5], [2.5, 0.0]]]))          # a rotation generator
    mats.append(-np.eye(5)[None] * 7.0 + rng.normal(size=(1, 5, 5)))
    for m in mats:
        got = to_numpy(expm(m.astype("float32")))
        want = np.stack([scipy.linalg.expm(x) for x in m])
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


def test_van_loan_matches_quadrature(rng):
    s = 3
    f = rng.normal(size=(s, s)) * 0.6 - 0.5 * np.eye(s)
    w = rng.normal(size=(s, s))
    qc = w @ w.T / s + 0.1 * np.eye(s)
    dts = np.array([0.1, 0.8, 2.5])
    a, q = to_numpy(van_loan(f.astype("float32"), qc.astype("float32"), dts.astype("float32")))
    for i, dt in enumerate(dts):
        np.testing.assert_allclose(a[i], scipy.linalg.expm(f * dt), rtol=1e-5, atol=1e-6)
        want, _ = quad_vec(lambda u: scipy.linalg.expm(f * u) @ qc @ scipy.linalg.expm(f * u).T,
                           0.0, dt, epsabs=1e-12)
        np.testing.assert_allclose(q[i], want, rtol=1e-5, atol=1e-6)


def continuous_filter(s, l_, rng, **kwargs):
    kf = KalmanFilter({"state_dim": s, "observation_dim": l_, "observation_matrix": "learned",
                       "include_constant": True, "dynamics": "continuous", "seed": 0},
                      **kwargs)
    kf.build((None, None, l_))
    c = kf.cell
    c.drift.assign((rng.normal(size=(s, s)) * 0.5 - 0.4 * np.eye(s)).astype("float32"))
    c.offset.assign(rng.normal(size=s).astype("float32") * 0.3)
    c.observation.assign((np.eye(l_, s) + 0.3 * rng.normal(size=(l_, s))).astype("float32"))
    c.log_process_var.assign(np.log(rng.uniform(0.05, 0.3, s)).astype("float32"))
    c.log_observation_var.assign(np.log(rng.uniform(0.1, 0.4, l_)).astype("float32"))
    c.log_noise_scale.assign(np.float32(np.log(1.2)))
    return kf


def discretised(kf, dts):
    """Float64 A_t, Q_t for gaps ``dts`` (T,) from the cell's weights, by SciPy."""
    c = kf.cell
    f = np.asarray(to_numpy(c.drift), "float64")
    scale = float(np.exp(to_numpy(c.log_noise_scale)))
    qc = np.diag(np.exp(np.asarray(to_numpy(c.log_process_var), "float64"))) * scale
    s = f.shape[0]
    a_t, q_t = [], []
    for dt in dts:
        m = scipy.linalg.expm(np.block([[-f, qc], [np.zeros((s, s)), f.T]]) * dt)
        a = m[s:, s:].T
        a_t.append(a)
        q_t.append(a @ m[:s, s:])
    return np.stack(a_t), np.stack(q_t), scale


def statsmodels_time_varying(kf, z, dts):
    """statsmodels with time-varying transition, intercept and state covariance."""
    c = kf.cell
    b = np.asarray(to_numpy(c.offset), "float64")
    d = np.asarray(to_numpy(c.observation), "float64")
    outs = []
    for i in range(z.shape[0]):
        a_t, q_t, scale = discretised(kf, dts[i])
        r = np.exp(np.asarray(to_numpy(c.log_observation_var), "float64")) * scale
        steps, l_ = z[i].shape
        s = b.shape[0]
        mod = SMKalmanFilter(k_endog=l_, k_states=s)
        mod.bind(np.asarray(z[i], "float64"))
        mod["design"] = d
        mod["obs_cov"] = np.diag(r)
        mod["selection"] = np.eye(s)
        # statsmodels' transition at t maps α_t to α_{t+1}: ours at t+1.
        nxt = np.concatenate([a_t[1:], a_t[-1:]])
        nq = np.concatenate([q_t[1:], q_t[-1:]])
        mod["transition"] = nxt.transpose(1, 2, 0)
        mod["state_cov"] = nq.transpose(1, 2, 0)
        mod["state_intercept"] = np.stack([(np.eye(s) - x) @ b for x in nxt], -1)
        mod.initialize_known(a_t[0] @ (-b) + b, a_t[0] @ a_t[0].T + q_t[0])
        res = mod.filter()
        outs.append({"prediction": res.forecasts.T,
                     "prediction_cov": res.forecasts_error_cov.transpose(2, 0, 1),
                     "state_mean": res.filtered_state.T,
                     "state_cov": res.filtered_state_cov.transpose(2, 0, 1),
                     "nll": -res.llf_obs})
    return {k: np.stack([o[k] for o in outs]) for k in outs[0]}


def test_irregular_gaps_match_statsmodels(rng):
    s, l_ = 3, 2
    kf = continuous_filter(s, l_, rng)
    z = rng.normal(size=(2, 15, l_)).astype("float32")
    dts = rng.uniform(0.1, 2.0, size=(2, 15)).astype("float32")
    out = to_numpy(kf(z, dt=dts))
    ref = statsmodels_time_varying(kf, z, dts)
    for key in KEYS:
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)
    # the same gaps for every sequence: the shared (batch-free) path agrees
    shared = to_numpy(kf(z, dt=dts[0]))
    ref = statsmodels_time_varying(kf, z, np.stack([dts[0], dts[0]]))
    for key in KEYS:
        np.testing.assert_allclose(shared[key], ref[key], err_msg=key, **TOL)


def test_equal_gaps_reproduce_a_discrete_model(rng):
    """Δt ≡ c: the time-invariant model A = e^{Fc}, Σ_A = Van Loan, in statsmodels;
    a number, a (T,) and a (B, T) ``dt`` agree (shared and per-sequence paths)."""
    s, l_ = 2, 2
    kf = continuous_filter(s, l_, rng)
    z = rng.normal(size=(3, 20, l_)).astype("float32")
    c = 0.7
    out = to_numpy(kf(z, dt=c))
    ref = statsmodels_time_varying(kf, z, np.full((3, 20), c))
    for key in KEYS:
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)
    per_seq = to_numpy(kf(z, dt=np.full((3, 20), c, "float32")))
    per_step = to_numpy(kf(z, dt=np.full((20,), c, "float32")))
    for key in KEYS:
        np.testing.assert_allclose(per_seq[key], out[key], rtol=1e-5, atol=1e-6, err_msg=key)
        np.testing.assert_allclose(per_step[key], out[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_shared_gaps_fast_path_gradients_equal_per_sequence(rng):
    kf = continuous_filter(2, 2, rng)
    z = rng.normal(size=(2, 10, 2)).astype("float32")
    dts = rng.uniform(0.2, 1.5, size=(10,)).astype("float32")
    g_shared = gradients(lambda x: kf(x, dt=dts)["nll"], (z,), kf.trainable_variables)
    both = np.stack([dts, dts])
    g_batched = gradients(lambda x: kf(x, dt=both)["nll"], (z,), kf.trainable_variables)
    for a, b in zip(g_shared, g_batched):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())


def test_continuous_clamp_and_transition(rng):
    kf = continuous_filter(2, 2, rng)
    kf.cell.drift.assign(np.array([[0.3, -1.0], [1.0, 0.3]], "float32"))  # growth e^0.3
    rho = float(to_numpy(kf.clamp_spectral_radius(1.02)))
    np.testing.assert_allclose(rho, np.exp(0.3), rtol=1e-4)
    a = to_numpy(kf.transition_matrix)
    np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(a))), 1.02, rtol=1e-4)
    np.testing.assert_allclose(kf.eigen_angles(), [1.0, -1.0], rtol=1e-4)


def test_continuous_layer(rng):
    z = rng.normal(size=(3, 6, 2)).astype("float32")
    shapes = {"prediction": (3, 6, 2), "prediction_cov": (3, 6, 2, 2), "nll": (3, 6),
              "state_mean": (3, 6, 2), "state_cov": (3, 6, 2, 2)}
    run_layer_test(KalmanFilter, {"cell": {"state_dim": 2, "dynamics": "continuous",
                                           "seed": 1}}, z, shapes)


def test_bad_time_gaps_raise(rng):
    z = rng.normal(size=(2, 5, 2)).astype("float32")
    kf = KalmanFilter({"state_dim": 2, "dynamics": "continuous"})
    with pytest.raises(ValueError, match="finite and >= 0"):
        kf(z, dt=np.array([1.0, 1.0, -0.5, 1.0, 1.0], "float32"))
    with pytest.raises(ValueError, match="finite and >= 0"):
        kf(z, dt=np.full((2, 5), np.nan, "float32"))
    with pytest.raises(ValueError, match="`dt` must be"):
        kf(z, dt=np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match="continuous-time cell"):
        KalmanFilter({"state_dim": 2})(z, dt=np.ones((5,), "float32"))
    with pytest.raises(ValueError, match="innovation network"):
        KalmanCell(state_dim=2, dynamics="continuous", innovation_history=2)
    with pytest.raises(ValueError, match="dynamics"):
        KalmanCell(state_dim=2, dynamics="irregular")


def test_predictive_ldm_with_time_gaps(rng):
    x = rng.normal(size=(4, 8, 6)).astype("float32")
    dts = rng.uniform(0.5, 1.5, size=(4, 8)).astype("float32")
    model = PredictiveLDM(mlp(6, [8], 2, batch_norm=False),
                          KalmanFilter({"state_dim": 2, "dynamics": "continuous", "seed": 0},
                                       return_covariances=False))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit({"frames": x, "dt": dts}, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    logs = to_numpy(model.compute_ldm_loss({"frames": x, "dt": dts}))
    nll = to_numpy(model.predictor(model.encode(x), dt=dts)["nll"])
    np.testing.assert_allclose(-logs["alignment"], nll.mean(), rtol=1e-5)
