"""Property-based checks (hypothesis) and the safe-loading source check.

* Every entropy estimator and prior returns a finite float32 value, or raises a clear
  ``ValueError``, for random inputs: batch sizes 1–12 (including too small for the
  estimator), widths 1–5, scales 1e-3–1e3, and invalid ranks.
* The package never unpickles: no ``pickle``, ``np.load(allow_pickle=True)``, ``torch.load``.
"""

import pathlib
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ldm_keras as ldm

E, P = ldm.entropy, ldm.priors
ESTIMATORS = {
    "GaussianKDE": lambda: E.GaussianKDE(precision=5.0),
    "VonMisesFisherKDE": lambda: E.VonMisesFisherKDE(precision=5.0),
    "GaussianLogDet": lambda: E.GaussianLogDet(),
    "LogDetSecondOrder": lambda: E.LogDetSecondOrder(),
    "VICRegSurrogate": lambda: E.VICRegSurrogate(),
    "KNNEntropy": lambda: E.KNNEntropy(k=3),
    "CategoricalEntropy": lambda: E.CategoricalEntropy(),
}
PRIORS = {
    "IsotropicGaussian": lambda: P.IsotropicGaussian(2.0),
    "VonMisesFisher": lambda: P.VonMisesFisher(2.0),
    "GeneralizedGaussian": lambda: P.GeneralizedGaussian(beta=1.5),
    "Laplace": lambda: P.Laplace(),
    "Logistic": lambda: P.Logistic(),
    "StudentT": lambda: P.StudentT(),
}
CLEAR = re.compile(r"must|needs|expected|received")

inputs = st.fixed_dictionaries({
    "n": st.integers(1, 12),
    "d": st.integers(1, 5),
    "log_scale": st.floats(-3.0, 3.0),
    "rank": st.sampled_from([2, 2, 2, 1, 3]),
    "seed": st.integers(0, 2**16),
})


def _sample(p):
    rng = np.random.default_rng(p["seed"])
    shape = {1: (p["n"],), 2: (p["n"], p["d"]), 3: (p["n"], p["d"], 2)}[p["rank"]]
    return (10.0 ** p["log_scale"] * rng.normal(size=shape)).astype("float32")


def _finite_or_clear_error(fn, p):
    try:
        value = keras.ops.convert_to_numpy(fn())
    except ValueError as err:
        assert CLEAR.search(str(err)), str(err)
        return
    assert p["rank"] == 2, "an input of the wrong rank was accepted"
    assert np.all(np.isfinite(value)), value


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@settings(max_examples=10, deadline=None)
@given(p=inputs)
def test_estimator_finite_or_value_error(name, p):
    z = _sample(p)
    if name == "CategoricalEntropy" and p["rank"] == 2:
        z = keras.ops.convert_to_numpy(keras.ops.softmax(z, axis=-1))
    _finite_or_clear_error(lambda: ESTIMATORS[name]()(z), p)


@pytest.mark.parametrize("name", sorted(PRIORS))
@settings(max_examples=10, deadline=None)
@given(p=inputs)
def test_prior_finite_or_value_error(name, p):
    z = _sample(p)
    context = _sample({**p, "seed": p["seed"] + 1})
    _finite_or_clear_error(lambda: PRIORS[name]()(z, context=context), p)


@settings(max_examples=10, deadline=None)
@given(d=st.integers(1, 5), seed=st.integers(0, 2**16), square=st.booleans())
def test_linear_jacobian_finite_or_value_error(d, seed, square):
    w = np.random.default_rng(seed).normal(size=(d, d if square else d + 1)).astype("float32")
    _finite_or_clear_error(lambda: E.LinearJacobian()(w), {"rank": 2 if square else 0})


FORBIDDEN = [
    (re.compile(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b", re.M), "pickle import"),
    (re.compile(r"allow_pickle\s*=\s*True"), "np.load(allow_pickle=True)"),
    (re.compile(r"torch\.load\s*\("), "torch.load"),
    (re.compile(r"\bpickle\.loads?\s*\("), "pickle.load"),
]


def test_package_never_unpickles():
    root = pathlib.Path(ldm.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern, what in FORBIDDEN:
            if pattern.search(text):
                found.append(f"{path.relative_to(root)}: {what}")
    assert len(list(root.rglob("*.py"))) > 20
    assert not found, found
