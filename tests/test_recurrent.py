"""RecurrentPredictor: causality (shift by one), Gaussian NLL vs NumPy, stop-gradient semantics."""

import keras
import numpy as np
import pytest
from helpers import gradients, run_layer_test, to_numpy

from ldm_keras.predictors import RecurrentPredictor


def numpy_nll(z, pred, var):
    return 0.5 * np.sum((z - pred) ** 2 / var + np.log(var), axis=-1)


@pytest.mark.parametrize("cell,variance,initial", [
    ("gru", "softplus", "zeros"),
    ("lstm", "constant", "learned"),
])
def test_recurrent_predictor_layer(rng, cell, variance, initial):
    z = rng.normal(size=(4, 5, 3)).astype("float32")
    shapes = {"prediction": (4, 5, 3), "variance": (4, 5, 3), "nll": (4, 5)}
    run_layer_test(RecurrentPredictor,
                   {"units": 8, "cell": cell, "hidden_units": [8], "variance": variance,
                    "initial_input": initial},
                   z, shapes)


def test_nll_matches_numpy_gaussian(rng):
    z = rng.normal(size=(3, 6, 2)).astype("float32")
    layer = RecurrentPredictor(units=8, hidden_units=(), include_constant=True)
    out = to_numpy(layer(z))
    var = out["variance"]
    assert np.all(var >= 1e-4)
    # ½ Σ (z - ẑ)²/v + ½ Σ log v + L/2 log 2π  ==  -log N(z; ẑ, diag v)
    want = numpy_nll(z, out["prediction"], var) + np.log(2 * np.pi)
    np.testing.assert_allclose(out["nll"], want, rtol=1e-5, atol=1e-5)
    from scipy.stats import norm
    scipy_nll = -norm.logpdf(z, out["prediction"], np.sqrt(var)).sum(-1)
    np.testing.assert_allclose(out["nll"], scipy_nll, rtol=1e-4, atol=1e-4)


def test_constant_variance_is_half_squared_error(rng):
    z = rng.normal(size=(2, 4, 3)).astype("float32")
    out = to_numpy(RecurrentPredictor(units=4, variance="constant")(z))
    np.testing.assert_array_equal(out["variance"], np.ones_like(z))
    np.testing.assert_allclose(out["nll"], 0.5 * np.sum((z - out["prediction"]) ** 2, -1),
                               rtol=1e-5, atol=1e-6)


def test_prediction_is_causal_and_shifted(rng):
    z = rng.normal(size=(2, 6, 2)).astype("float32")
    layer = RecurrentPredictor(units=8, initial_input="learned")
    base = to_numpy(layer(z))
    # The first prediction comes from the initial input alone: the same for every sequence.
    np.testing.assert_allclose(base["prediction"][0, 0], base["prediction"][1, 0], rtol=1e-6)
    t = 3
    changed = z.copy()
    changed[:, t] += 1.0
    out = to_numpy(layer(changed))
    np.testing.assert_array_equal(out["prediction"][:, :t + 1], base["prediction"][:, :t + 1])
    assert np.all(np.abs(out["prediction"][:, t + 1:] - base["prediction"][:, t + 1:]) > 0)


@pytest.mark.parametrize("stop", [True, False])
def test_stop_gradient_target_semantics(rng, stop):
    z = rng.normal(size=(2, 5, 3)).astype("float32")
    layer = RecurrentPredictor(units=6, stop_gradient_targets=stop)
    out = to_numpy(layer(z))
    (g,) = gradients(lambda x: layer(x)["nll"][:, -1], (z,))
    assert np.all(np.abs(g[:, -2]) > 0)  # the past always reaches the prediction
    # d nll_T / d z_T (target path only) = (z_T - ẑ_T) / v_T
    want = (z[:, -1] - out["prediction"][:, -1]) / out["variance"][:, -1]
    np.testing.assert_allclose(g[:, -1], 0.0 if stop else want, rtol=1e-4, atol=1e-5)


def test_mixed_precision_outputs_float32(rng):
    z = rng.normal(size=(2, 4, 3)).astype("float32")
    layer = RecurrentPredictor(units=4, dtype="mixed_float16")
    out = layer(z)
    for key, value in out.items():
        assert keras.backend.standardize_dtype(value.dtype) == "float32", key


def test_symbolic_unknown_batch_and_time():
    inp = keras.Input((None, 3))
    out = RecurrentPredictor(units=4)(inp)
    assert tuple(out["nll"].shape) == (None, None)
    assert out["prediction"].dtype == "float32"


def test_bad_input_raises(rng):
    layer = RecurrentPredictor(units=4)
    with pytest.raises(ValueError, match="rank-3"):
        layer(np.zeros((4, 3), "float32"))
    with pytest.raises(ValueError, match="at least 2 time steps"):
        layer(np.zeros((4, 1, 3), "float32"))
    bad = rng.normal(size=(2, 4, 3)).astype("float32")
    bad[0, 2, 1] = np.inf
    with pytest.raises(ValueError, match="finite"):
        layer(bad)
    layer(np.zeros((2, 4, 3), "float32"))
    with pytest.raises(ValueError, match="built for 3 features"):
        layer(np.zeros((2, 4, 5), "float32"))
    with pytest.raises(ValueError, match="variance"):
        RecurrentPredictor(variance="learned")
    with pytest.raises(ValueError, match="cell"):
        RecurrentPredictor(cell="rnn")
