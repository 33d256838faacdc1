import keras
import numpy as np
import pytest
from helpers import assert_allclose, run_layer_test

from ldm_keras.priors import IsotropicGaussian


def test_isotropic_gaussian_layer(rng):
    z = rng.normal(size=(8, 4)).astype("float32")
    c = rng.normal(size=(8, 4)).astype("float32")
    _, out = run_layer_test(IsotropicGaussian, {"precision": 5.0}, (z, c), (8,))
    np.testing.assert_allclose(np.asarray(out), -5.0 * np.mean((z - c) ** 2, -1), rtol=1e-5)


def test_isotropic_gaussian_rejects_bad_precision():
    with pytest.raises(ValueError, match="precision"):
        IsotropicGaussian(precision=-1.0)


def test_assert_allclose_fails_on_a_missing_or_extra_output():
    a = {"x": np.zeros(3), "y": np.ones(2)}
    assert_allclose(a, {"x": np.zeros(3), "y": np.ones(2)})
    with pytest.raises(AssertionError, match="structure"):
        assert_allclose(a, {"x": np.zeros(3)})            # an output missing
    with pytest.raises(AssertionError, match="structure"):
        assert_allclose([np.zeros(3)], [np.zeros(3), np.ones(1)])   # an extra output
    with pytest.raises(AssertionError, match="structure"):
        assert_allclose(a, {"x": np.zeros(3), "z": np.ones(2)})     # another name
    with pytest.raises(AssertionError):
        assert_allclose(a, {"x": np.zeros(3), "y": np.ones(2) + 1e-3})


class _DropsAnOutputAfterReload(keras.layers.Layer):
    """A layer whose reloaded copy (``from_config``) returns one output fewer."""

    def __init__(self, full=True, **kwargs):
        super().__init__(**kwargs)
        self.full = full

    def call(self, x):
        out = {"a": x * 2.0}
        if self.full:
            out["b"] = x + 1.0
        return out

    def get_config(self):
        return {**super().get_config(), "full": False}   # the bug: the flag is lost


def test_run_layer_test_fails_when_an_output_goes_missing(rng):
    x = rng.normal(size=(4, 3)).astype("float32")
    with pytest.raises(AssertionError):
        run_layer_test(_DropsAnOutputAfterReload, {}, x, {"a": (4, 3), "b": (4, 3)},
                       check_saving=False, check_gradients=False,
                       check_mixed_precision=False)
    with pytest.raises(AssertionError, match="expected the keys"):
        run_layer_test(_DropsAnOutputAfterReload, {}, x, {"a": (4, 3), "c": (4, 3)},
                       check_saving=False, check_gradients=False,
                       check_mixed_precision=False)
