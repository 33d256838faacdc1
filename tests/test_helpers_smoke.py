import numpy as np
import pytest
from helpers import run_layer_test

from ldm_keras.priors import IsotropicGaussian


def test_isotropic_gaussian_layer(rng):
    z = rng.normal(size=(8, 4)).astype("float32")
    c = rng.normal(size=(8, 4)).astype("float32")
    _, out = run_layer_test(IsotropicGaussian, {"precision": 5.0}, (z, c), (8,))
    np.testing.assert_allclose(np.asarray(out), -5.0 * np.mean((z - c) ** 2, -1), rtol=1e-5)


def test_isotropic_gaussian_rejects_bad_precision():
    with pytest.raises(ValueError, match="precision"):
        IsotropicGaussian(precision=-1.0)
