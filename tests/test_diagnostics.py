"""Stop-gradient diagnostics (gradient cosines) on the active backend."""

import keras
import numpy as np
import pytest
from helpers import gradients

import ldm_keras as ldm
from ldm_keras.data import dot_motion
from ldm_keras.models.diagnostics import GradientCosineMonitor, gradient_cosines
from ldm_keras.models.encoders import mlp
from ldm_keras.predictors import KalmanCell, KalmanFilter


def _model():
    keras.utils.set_random_seed(0)
    kf = KalmanFilter(KalmanCell(state_dim=2, observation_dim=2, seed=0),
                      return_covariances=False)
    return ldm.models.PredictiveLDM(mlp(100, [16], 2, batch_norm=False), kf)


def _frames(n=8, t=10):
    return dot_motion.generate("circular", num_sequences=n, length=t, dt=0.1, period=2.0,
                               obs_noise=0.05, seed=5).frames


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_cosines_match_an_independent_gradient_computation():
    model, x = _model(), _frames()
    model.build(x.shape)
    got = gradient_cosines(model, x)
    variables = model.encoder.trainable_variables
    cell = model.predictor.cell
    est = ldm.entropy.KNNEntropy(k=3)

    def align(sg):
        def fn(xx):
            cell.stop_gradient_targets = sg
            try:
                return keras.ops.mean(model(xx)["nll"])
            finally:
                cell.stop_gradient_targets = True
        return fn

    def ent(xx):
        z = model.encode(xx)
        return -est(keras.ops.reshape(z, (-1, 2)))

    flat = [np.concatenate([g.ravel() for g in gradients(f, (x,), variables)[1:]])
            for f in (align(True), align(False), ent)]
    g_sg, g_full, g_h = flat
    assert not np.allclose(g_sg, g_full)  # stop-gradient changes the encoder gradient
    np.testing.assert_allclose(got["sg_entropy_cosine"], _cos(g_sg - g_full, g_h), atol=1e-4)
    np.testing.assert_allclose(got["sg_explicit_cosine"], _cos(g_sg, g_full + g_h), atol=1e-4)
    np.testing.assert_allclose(got["norm_sg"], np.linalg.norm(g_sg), rtol=1e-4)
    assert cell.stop_gradient_targets  # restored


def test_monitor_logs_during_fit():
    model, x = _model(), _frames(16)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    monitor = GradientCosineMonitor(x[:4])
    hist = model.fit(x, epochs=2, batch_size=8, verbose=0, callbacks=[monitor])
    assert len(monitor.history) == 2 and [h["epoch"] for h in monitor.history] == [0, 1]
    # the logged values are the diagnostics of the weights at the end of each epoch: the
    # last epoch's equal gradient_cosines of the trained model (checked against NumPy
    # gradients above), and the two epochs differ (the weights moved)
    final = gradient_cosines(model, x[:4])
    for key in ("sg_entropy_cosine", "sg_explicit_cosine"):
        assert hist.history[key] == [h[key] for h in monitor.history]
        np.testing.assert_allclose(hist.history[key][-1], final[key], rtol=1e-4, atol=1e-6)
    assert hist.history["sg_entropy_cosine"][0] != hist.history["sg_entropy_cosine"][1]


def test_diagnostics_need_a_predictive_model():
    enc = mlp(4, [], 2)
    with pytest.raises(ValueError, match="PredictiveLDM"):
        gradient_cosines(ldm.recipes.build("plane-kde", enc), np.zeros((4, 4), "float32"))
