"""PredictiveLDM: few-step training with each predictor and uniformity choice; skip_first."""

import re

import keras
import numpy as np
import pytest
from helpers import to_numpy

import ldm_keras as ldm
from ldm_keras.data import dot_motion
from ldm_keras.models.encoders import mlp
from ldm_keras.predictors import KalmanCell, KalmanFilter, RecurrentPredictor, spectral_radius


def _frames(n=32, t=20):
    d = dot_motion.generate("circular", num_sequences=n, length=t, dt=0.1, period=2.0, seed=3)
    return d.frames, d.positions


def _predictor(kind, stop_gradient):
    if kind == "kalman":
        return KalmanFilter(KalmanCell(state_dim=2, observation_dim=2, seed=0,
                                       stop_gradient_targets=stop_gradient),
                            return_covariances=False)
    return RecurrentPredictor(units=8, hidden_units=(), stop_gradient_targets=stop_gradient)


UNIFORMITY = {
    "stop-gradient": None,
    "knn": lambda: ldm.entropy.KNNEntropy(k=3),
    "kde": lambda: ldm.entropy.GaussianKDE(precision=5.0),
    "logdet": lambda: ldm.entropy.GaussianLogDet(),
}


@pytest.mark.parametrize("kind", ["kalman", "recurrent"])
@pytest.mark.parametrize("uniformity", list(UNIFORMITY))
def test_few_step_training(kind, uniformity):
    frames, _ = _frames(32, 10)
    make = UNIFORMITY[uniformity]
    keras.utils.set_random_seed(0)
    model = ldm.models.PredictiveLDM(
        mlp(100, [16], 2, batch_norm=False), _predictor(kind, make is None),
        entropy=None if make is None else make())
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    hist = model.fit(frames, epochs=4, batch_size=16, verbose=0)
    loss = hist.history["loss"]
    assert np.all(np.isfinite(loss)), loss
    assert loss[-1] < loss[0], f"{kind}/{uniformity}: loss did not decrease: {loss}"
    out = model.predict(frames[:4], verbose=0)
    assert out["latents"].shape == (4, 10, 2)
    assert out["prediction"].shape == (4, 10, 2)


def test_kalman_predict_returns_uncertainty_and_clamps_radius():
    frames, _ = _frames(16, 10)
    kf = KalmanFilter(KalmanCell(state_dim=2, observation_dim=2, seed=0))
    model = ldm.models.PredictiveLDM(mlp(100, [16], 2, batch_norm=False), kf,
                                     clamp_radius=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(frames, epochs=1, batch_size=16, verbose=0)
    rho = float(to_numpy(spectral_radius(kf.transition_matrix)))
    np.testing.assert_allclose(rho, 0.5, rtol=1e-3)  # the initial radius 1/1.1 > 0.5
    out = model.predict(frames[:2], verbose=0)
    assert out["prediction_cov"].shape == (2, 10, 2, 2)
    assert out["state_cov"].shape == (2, 10, 2, 2)
    # S_t must be symmetric positive definite
    s = out["prediction_cov"].reshape(-1, 2, 2)
    np.testing.assert_allclose(s, np.swapaxes(s, 1, 2), atol=1e-5)
    assert np.all(np.linalg.eigvalsh(s) > 0)


def test_dynamics_group_uses_its_multiplier():
    frames, _ = _frames(16, 10)
    kf = KalmanFilter(KalmanCell(state_dim=2, observation_dim=2, seed=0))
    model = ldm.models.PredictiveLDM(mlp(100, [16], 2, batch_norm=False), kf,
                                     clamp_radius=None,
                                     lr_multipliers={"dynamics": 50.0})
    model.compile(optimizer=keras.optimizers.SGD(1e-3))
    model.build(frames.shape)
    groups = model.variable_groups()
    assert any(v is kf.cell.transition for v in groups["dynamics"])
    opts = {o.name: o for o in model.optimizer._optimizers}
    lrs = {name: float(to_numpy(o.learning_rate)) for name, o in opts.items()}
    np.testing.assert_allclose(lrs["grouped_optimizer_dynamics"], 0.05, rtol=1e-6)
    np.testing.assert_allclose(lrs["grouped_optimizer_default"], 1e-3, rtol=1e-6)


def test_bad_sequences_are_clear_errors():
    model = ldm.models.PredictiveLDM(mlp(100, [16], 2, batch_norm=False),
                                     _predictor("kalman", True))
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="batch, time"):
        model.fit(np.zeros((8, 100), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="at least 2 time steps"):
        model.fit(np.zeros((8, 1, 100), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="do not match the encoder"):
        model.fit(np.zeros((8, 5, 64), "float32"), epochs=1, verbose=0)


def test_inconsistent_uniformity_is_an_error():
    with pytest.raises(ValueError, match="collapse"):
        ldm.models.PredictiveLDM(mlp(100, [16], 2), _predictor("kalman", False))
    with pytest.raises(ValueError, match="stop_gradient_targets=False"):
        ldm.models.PredictiveLDM(mlp(100, [16], 2), _predictor("recurrent", True),
                                 entropy=ldm.entropy.KNNEntropy())


def _skip_model(kind, skip_first):
    keras.utils.set_random_seed(0)
    sg = kind == "kalman"
    return ldm.models.PredictiveLDM(
        mlp(100, [16], 2, batch_norm=False), _predictor(kind, sg),
        entropy=None if sg else ldm.entropy.KNNEntropy(k=3), skip_first=skip_first)


@pytest.mark.parametrize("kind", ["kalman", "recurrent"])
@pytest.mark.parametrize("skip_first", [1, 3])
def test_skip_first_averages_the_nll_over_the_later_steps(kind, skip_first):
    frames, _ = _frames(8, 6)
    model = _skip_model(kind, skip_first)
    nll = to_numpy(model(frames)["nll"]).astype("float64")  # (B, T) per-step NLL
    assert nll.shape == (8, 6)
    x = keras.ops.convert_to_tensor(frames)
    logs = {k: float(to_numpy(v)) for k, v in model.compute_ldm_loss(x).items()}
    expected = nll[:, skip_first:].mean()
    np.testing.assert_allclose(-logs["alignment"], expected, rtol=1e-5, atol=1e-6)
    # The first steps really are left out (their NLL differs from the later steps')...
    assert not np.isclose(expected, nll.mean(), rtol=1e-4)
    # ... and the loss is built from that alignment and the entropy of every step.
    np.testing.assert_allclose(logs["loss"], -(logs["alignment"] + logs["entropy"]),
                               rtol=1e-5, atol=1e-6)
    # skip_first=0 (the default) is the plain mean over all steps.
    full = ldm.models.PredictiveLDM.from_config({**model.get_config(), "skip_first": 0})
    full.set_weights(model.get_weights())
    np.testing.assert_allclose(
        -float(to_numpy(full.compute_ldm_loss(x)["alignment"])),
        to_numpy(full(frames)["nll"]).astype("float64").mean(), rtol=1e-5, atol=1e-6)


def test_skip_first_config_round_trip_and_saving(tmp_path):
    frames, _ = _frames(8, 6)
    model = _skip_model("recurrent", 2)
    x = keras.ops.convert_to_tensor(frames)
    model(x)
    assert model.get_config()["skip_first"] == 2
    again = ldm.models.PredictiveLDM.from_config(model.get_config())
    assert again.skip_first == 2
    assert ldm.models.PredictiveLDM(mlp(100, [16], 2), _predictor("kalman", True)
                                    ).get_config()["skip_first"] == 0
    path = str(tmp_path / "skip.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.skip_first == 2
    np.testing.assert_allclose(
        float(to_numpy(loaded.compute_ldm_loss(x)["alignment"])),
        float(to_numpy(model.compute_ldm_loss(x)["alignment"])), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [-1, 1.5, "1", True])
def test_skip_first_must_be_a_non_negative_integer(bad):
    with pytest.raises(ValueError, match=rf"`skip_first` must be an integer >= 0; "
                                         rf"received {re.escape(repr(bad))}"):
        ldm.models.PredictiveLDM(mlp(100, [16], 2), _predictor("kalman", True),
                                 skip_first=bad)


def test_skip_first_must_leave_a_step():
    frames, _ = _frames(8, 4)
    model = _skip_model("kalman", 4)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"skip_first=4 for sequences of T=4 steps"):
        model.fit(frames, epochs=1, batch_size=8, verbose=0)
    assert model.predict(frames, verbose=0)["latents"].shape == (8, 4, 2)  # inference is fine
    ok = _skip_model("kalman", 3)  # T - 1: only the last step is scored
    ok.compile(optimizer="adam")
    assert np.isfinite(ok.fit(frames, epochs=1, batch_size=8, verbose=0).history["loss"][0])
