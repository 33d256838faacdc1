"""Missing frames, ragged batches and smoothing, against statsmodels (float64).

statsmodels treats NaN observations as missing (a predict-only step, log-likelihood 0)
and its smoother returns smoothed states, covariances and the lag-one autocovariance
``Cov(α_{t+1}, α_t | y)``. Our timing convention is that of test_kalman.py: ``h₀ = 0,
P₀ = I`` is the posterior at t = 0.
"""

import keras
import numpy as np
import pytest
from helpers import BACKEND, gradients, statsmodels_lgssm, to_numpy
from statsmodels.tsa.statespace.kalman_smoother import KalmanSmoother

from ldm_keras.entropy import KNNEntropy
from ldm_keras.models.encoders import mlp
from ldm_keras.models.predictive import PredictiveLDM
from ldm_keras.predictors import KalmanCell, KalmanFilter

TOL = {"rtol": 1e-4, "atol": 1e-4}
KEYS = ("prediction", "prediction_cov", "state_mean", "state_cov", "nll")


def random_model(rng, s, l_, radius=0.9):
    a = rng.normal(size=(s, s))
    a = radius * a / np.max(np.abs(np.linalg.eigvals(a)))
    return (a, rng.normal(size=s), rng.normal(size=(l_, s)), rng.uniform(0.05, 0.3, size=s),
            rng.uniform(0.1, 0.5, size=l_))


def simulate(rng, batch, steps, a, b, d, q, r):
    s, l_ = a.shape[0], d.shape[0]
    h = np.zeros((batch, s))
    zs = np.empty((batch, steps, l_))
    for t in range(steps):
        h = (h - b) @ a.T + b + rng.normal(size=(batch, s)) * np.sqrt(q)
        zs[:, t] = h @ d.T + rng.normal(size=(batch, l_)) * np.sqrt(r)
    return zs.astype("float32")


def statsmodels_smoother(y, a, b, d, q, r):
    """statsmodels filter + smoother of one sequence y (T, L) (NaN = missing)."""
    res = statsmodels_lgssm(KalmanSmoother, y, a, b, d, q, r).smooth()
    return {
        "prediction": res.forecasts.T,
        "prediction_cov": res.forecasts_error_cov.transpose(2, 0, 1),
        "state_mean": res.filtered_state.T,
        "state_cov": res.filtered_state_cov.transpose(2, 0, 1),
        "nll": -res.llf_obs,
        "smoothed_mean": res.smoothed_state.T,
        "smoothed_cov": res.smoothed_state_cov.transpose(2, 0, 1),
        "lag_one_cov": res.smoothed_state_autocov.transpose(2, 0, 1)[:-1],
    }


def reference(z, mask, a, b, d, q, r):
    outs = []
    for i in range(z.shape[0]):
        y = np.array(z[i], "float64")
        y[~mask[i]] = np.nan
        ri = r[i] if np.ndim(r) == 3 else r
        outs.append(statsmodels_smoother(y, a, b, d, q, ri))
    return {k: np.stack([o[k] for o in outs]) for k in outs[0]}


def make_filter(s, l_, a, b, d, q, r, **kwargs):
    cell = {"state_dim": s, "observation_dim": l_, "observation_matrix": "learned",
            "include_constant": True, "learn_noise_scale": False, **kwargs.pop("cell", {})}
    kf = KalmanFilter(cell, **kwargs)
    width = 2 * l_ if cell.get("observation_noise") == "input" else l_
    kf.build((None, None, width))
    c = kf.cell
    c.transition.assign(a.astype("float32"))
    c.offset.assign(b.astype("float32"))
    c.observation.assign(d.astype("float32"))
    c.log_process_var.assign(np.log(q).astype("float32"))
    if c.observation_noise == "learned":
        c.log_observation_var.assign(np.log(r).astype("float32"))
    return kf


def random_mask(rng, batch, steps, drop=0.25):
    mask = rng.uniform(size=(batch, steps)) > drop
    mask[:, 0] = True
    mask[-1, steps - steps // 3:] = False  # a padded tail: a shorter sequence
    return mask


# --------------------------------------------------------------------------- masks


def test_mask_matches_statsmodels_missing(rng):
    s, l_ = 3, 2
    a, b, d, q, r = random_model(rng, s, l_)
    z = simulate(rng, 3, 30, a, b, d, q, r)
    mask = random_mask(rng, 3, 30)
    garbage = z.copy()
    garbage[~mask] = 1e6  # masked frames may hold anything
    kf = make_filter(s, l_, a, b, d, q, r)
    out = to_numpy(kf(garbage, mask=mask))
    ref = reference(z, mask, a, b, d, q, r)
    for key in KEYS:
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)
    assert np.all(out["nll"][~mask] == 0.0)


def test_mask_with_per_frame_noise_matches_statsmodels(rng):
    s, l_ = 2, 2
    a, b, d, q, _ = random_model(rng, s, l_)
    log_var = rng.uniform(np.log(0.05), np.log(1.0), size=(2, 25, l_))
    z = simulate(rng, 2, 25, a, b, d, q, np.exp(log_var).mean((0, 1)))
    mask = random_mask(rng, 2, 25)
    kf = make_filter(s, l_, a, b, d, q, None, cell={"observation_noise": "input"})
    out = to_numpy(kf(np.concatenate([z, log_var.astype("float32")], -1), mask=mask))
    ref = reference(z, mask, a, b, d, q, np.exp(log_var))
    for key in KEYS:
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)


def test_nan_as_missing_equals_mask(rng):
    s = l_ = 2
    a, b, d, q, r = random_model(rng, s, l_)
    z = simulate(rng, 2, 20, a, b, d, q, r)
    mask = random_mask(rng, 2, 20)
    with_nan = z.copy()
    with_nan[~mask, 0] = np.nan  # one NaN feature makes the whole frame missing
    want = to_numpy(make_filter(s, l_, a, b, d, q, r)(z, mask=mask))
    got = to_numpy(make_filter(s, l_, a, b, d, q, r, nan_as_missing=True)(with_nan))
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6, err_msg=key)


def test_keras_masking_layer_upstream(rng):
    """``keras.layers.Masking`` → KalmanFilter: Keras passes its mask on (compiled path)."""
    s = l_ = 2
    a, b, d, q, r = random_model(rng, s, l_)
    z = simulate(rng, 3, 16, a, b, d, q, r)
    mask = random_mask(rng, 3, 16)
    padded = np.where(mask[..., None], z, 0.0).astype("float32")
    kf = make_filter(s, l_, a, b, d, q, r)
    inp = keras.Input((16, l_))
    model = keras.Model(inp, kf(keras.layers.Masking(0.0)(inp)))
    got = model.predict(padded, verbose=0)
    want = to_numpy(kf(z, mask=mask))
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_masked_frames_do_not_reach_the_gradient(rng):
    s = l_ = 2
    a, b, d, q, r = random_model(rng, s, l_)
    z = simulate(rng, 2, 12, a, b, d, q, r)
    mask = random_mask(rng, 2, 12)
    kf = make_filter(s, l_, a, b, d, q, r)
    (g,) = gradients(lambda x: kf(x, mask=mask)["nll"], (z,))
    assert np.all(g[~mask] == 0.0)
    # an observed frame reaches the NLL of every later observed frame (through the past)
    later = np.cumsum(mask[:, ::-1], axis=1)[:, ::-1] > 1
    assert np.all(np.abs(g[mask & later]).sum(-1) > 0.0)


def test_bad_mask_raises(rng):
    kf = KalmanFilter({"state_dim": 2})
    z = rng.normal(size=(2, 5, 2)).astype("float32")
    with pytest.raises(ValueError, match="boolean"):
        kf(z, mask=np.ones((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        kf(z, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        kf(z, mask=np.ones((2, 5, 1), bool))
    mask = np.ones((2, 5), bool)
    mask[1] = False
    with pytest.raises(ValueError, match=r"at least one observed frame.*\[1\]"):
        kf(z, mask=mask)
    all_nan = z.copy()
    all_nan[0] = np.nan
    with pytest.raises(ValueError, match="at least one observed frame"):
        KalmanFilter({"state_dim": 2}, nan_as_missing=True)(all_nan)


# --------------------------------------------------------------------------- smoothing


@pytest.mark.parametrize("masked", [False, True], ids=["complete", "missing"])
def test_smoother_matches_statsmodels(rng, masked):
    s, l_ = 3, 2
    a, b, d, q, r = random_model(rng, s, l_)
    z = simulate(rng, 2, 24, a, b, d, q, r)
    mask = random_mask(rng, 2, 24) if masked else np.ones((2, 24), bool)
    kf = make_filter(s, l_, a, b, d, q, r)
    out = to_numpy(kf.smooth(z, mask=mask if masked else None))
    ref = reference(z, mask, a, b, d, q, r)
    for key in KEYS + ("smoothed_mean", "smoothed_cov", "lag_one_cov"):
        np.testing.assert_allclose(out[key], ref[key], err_msg=key, **TOL)


def test_predictive_smooth_is_the_filter_smoother(rng):
    x = rng.normal(size=(3, 10, 6)).astype("float32")
    mask = random_mask(rng, 3, 10)
    model = PredictiveLDM(mlp(6, [8], 2, batch_norm=False),
                          KalmanFilter(KalmanCell(state_dim=3, observation_dim=2, seed=0)))
    sm = to_numpy(model.smooth({"frames": x, "mask": mask}))
    z = to_numpy(model.encode(x))
    want = to_numpy(model.predictor.smooth(z, mask=mask))
    np.testing.assert_allclose(sm["latents"], z, rtol=1e-6, atol=1e-6)
    for key in want:
        np.testing.assert_allclose(sm[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)


# --------------------------------------------------------------------------- PredictiveLDM


def _predictive(entropy=None, **kwargs):
    cell = KalmanCell(state_dim=2, observation_dim=2, seed=0,
                      stop_gradient_targets=entropy is None)
    return PredictiveLDM(mlp(6, [8], 2, batch_norm=False),
                         KalmanFilter(cell, return_covariances=False), entropy=entropy,
                         **kwargs)


def test_predictive_loss_excludes_missing_frames(rng):
    x = rng.normal(size=(4, 12, 6)).astype("float32")
    mask = random_mask(rng, 4, 12)
    model = _predictive(skip_first=1)
    logs = to_numpy(model.compute_ldm_loss({"frames": x, "mask": mask}))
    nll = to_numpy(model.predictor(model.encode(x), mask=mask)["nll"])
    m = mask[:, 1:]
    np.testing.assert_allclose(-logs["alignment"], nll[:, 1:][m].mean(), rtol=1e-5)
    # the values of missing frames change nothing, not even a gradient
    other = x.copy()
    other[~mask] = rng.normal(size=other[~mask].shape) * 100.0
    again = to_numpy(model.compute_ldm_loss({"frames": other, "mask": mask}))
    np.testing.assert_allclose(again["loss"], logs["loss"], rtol=1e-6)

    def loss(frames):
        return model.compute_ldm_loss({"frames": frames, "mask": mask})["loss"]

    g1 = gradients(loss, (x,), model.encoder.trainable_variables)
    g2 = gradients(loss, (other,), model.encoder.trainable_variables)
    assert np.all(g1[0][~mask] == 0.0)
    for a, b in zip(g1[1:], g2[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_predictive_fit_with_mask_and_nan_frames(rng):
    x = rng.normal(size=(8, 10, 6)).astype("float32")
    mask = random_mask(rng, 8, 10)
    model = _predictive()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit({"frames": x, "mask": mask}, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    with_nan = x.copy()
    with_nan[~mask] = np.nan
    nan_model = _predictive(nan_as_missing=True)
    nan_model.compile(optimizer=keras.optimizers.Adam(1e-3))
    nan_model.build((None, 10, 6))
    nan_model.set_weights(model.get_weights())
    a = to_numpy(model.compute_ldm_loss({"frames": x, "mask": mask}))
    b = to_numpy(nan_model.compute_ldm_loss(with_nan))
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-6)
    history = nan_model.fit(with_nan, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_predictive_entropy_pools_observed_frames_only(rng):
    x = rng.normal(size=(4, 10, 6)).astype("float32")
    mask = random_mask(rng, 4, 10)
    model = _predictive(entropy=KNNEntropy(k=3))
    logs = to_numpy(model.compute_ldm_loss({"frames": x, "mask": mask}))
    z = to_numpy(model.encode(x))
    want = to_numpy(KNNEntropy(k=3)(z[mask]))
    np.testing.assert_allclose(logs["entropy"], want, rtol=1e-5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    history = model.fit({"frames": x, "mask": mask}, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    if BACKEND != "torch":  # a compiled step cannot pool a data-dependent number of rows
        compiled = _predictive(entropy=KNNEntropy(k=3))
        compiled.compile(optimizer=keras.optimizers.Adam(1e-3))
        with pytest.raises(ValueError, match="run_eagerly=True"):
            compiled.fit({"frames": x, "mask": mask}, epochs=1, batch_size=4, verbose=0)


def test_predictive_mask_needs_a_kalman_filter(rng):
    from ldm_keras.predictors import RecurrentPredictor

    model = PredictiveLDM(mlp(6, [8], 2, batch_norm=False), RecurrentPredictor(units=4))
    with pytest.raises(ValueError, match="KalmanFilter"):
        model.compute_ldm_loss({"frames": rng.normal(size=(2, 5, 6)).astype("float32"),
                                "mask": np.ones((2, 5), bool)})
    with pytest.raises(ValueError, match="'frames'"):
        model.compute_ldm_loss({"x": np.zeros((2, 5, 6), "float32")})
