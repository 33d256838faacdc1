"""Smoke test of benchmarks/identifiability.py: windows, models and the R² read-out run."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
import identifiability as ident  # noqa: E402

from ldm_keras.data import state_space  # noqa: E402


def test_windows_cut_the_preset_sequences():
    x, s = ident.load_windows("nonlinear-2d", "train", window=50, num_sequences=3)
    ref = state_space.load("nonlinear-2d", "train", num_sequences=3)
    assert x.shape == (12, 50, 20) and s.shape == (12, 50, 2)
    np.testing.assert_array_equal(x[4], ref.observations[1, :50])
    np.testing.assert_array_equal(s[5], ref.latents[1, 50:100])


def test_one_short_run_reports_the_readout_r2_of_its_latents(monkeypatch):
    """The reported R² is that of an affine read-out of the true state from the trained
    encoder's latents: recomputed here with scikit-learn from the latents the run
    computed (captured from ``encode``), fitted on the same 250 of the 400 training
    frames (the run's seed draws them) and scored on every test frame."""
    import keras
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    seen = []
    encode = ident.encode
    monkeypatch.setattr(ident, "encode", lambda enc, x: seen.append(encode(enc, x)) or seen[-1])
    out = ident.run("knn", "nonlinear-2d", seed=0, epochs=1, window=10, batch_size=8,
                    num_sequences=2, readout_frames=250)
    z_tr, z_te = seen
    _, s_tr = ident.load_windows("nonlinear-2d", "train", 10, num_sequences=2)
    _, s_te = ident.load_windows("nonlinear-2d", "test", 10)
    s_tr, s_te = s_tr.reshape(-1, 2), s_te.reshape(-1, 2)
    assert z_tr.shape == (len(s_tr), 2) and z_te.shape == (len(s_te), 2)
    idx = np.random.default_rng(0).choice(len(z_tr), 250, replace=False)
    want = r2_score(s_te, LinearRegression().fit(z_tr[idx], s_tr[idx]).predict(z_te))
    assert out["method"] == "knn" and out["backend"] == keras.backend.backend()
    np.testing.assert_allclose(out["r2_test"], want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out["latent_std"], z_te.std(axis=0), rtol=1e-6)


def test_raw_readout_baseline_matches_sklearn():
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    tr = state_space.load("nonlinear-2d", "train")
    te = state_space.load("nonlinear-2d", "test")
    x, s = tr.observations.reshape(-1, 20), tr.latents.reshape(-1, 2)
    idx = np.random.default_rng(0).choice(len(x), 20000, replace=False)
    ref = r2_score(te.latents.reshape(-1, 2),
                   LinearRegression().fit(x[idx], s[idx]).predict(te.observations.reshape(-1, 20)))
    np.testing.assert_allclose(ident.raw_readout_r2("nonlinear-2d"), ref, atol=1e-4)


def test_skip_first_drops_the_first_step_from_the_alignment():
    import keras

    x, _ = ident.load_windows("nonlinear-2d", "train", window=6, num_sequences=1)
    x = x[:8]
    model = ident.build_ldm("knn", 20, 2, seed=0, variance="constant", skip_first=1)
    losses = model.compute_ldm_loss(keras.ops.convert_to_tensor(x))
    nll = np.asarray(keras.ops.convert_to_numpy(model(x)["nll"]))
    # constant unit variance: nll_t = ½‖z_t - ẑ_t‖², recomputed from the outputs
    out = model(x)
    z, zhat = (np.asarray(keras.ops.convert_to_numpy(out[k])) for k in ("latents", "prediction"))
    np.testing.assert_allclose(nll, 0.5 * ((z - zhat) ** 2).sum(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(losses["alignment"])), -nll[:, 1:].mean(), rtol=1e-5)
    assert not np.isclose(nll[:, 1:].mean(), nll.mean())
