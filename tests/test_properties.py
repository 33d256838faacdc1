"""Property-based checks (hypothesis) and the safe-loading source check.

* Every entropy estimator and prior returns a finite float32 value for valid random
  inputs (batch sizes 1–12, widths 1–5, scales 1e-3–1e3) and, for invalid ones (a wrong
  rank, a batch too small for the estimator), raises the ``ValueError`` that names the
  argument (`` `z` ``), what it expected and what it received. Derandomised: the
  examples are the same on every run (``derandomize=True``).
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
#: The smallest batch each estimator accepts (a smaller one is a ValueError naming `z`).
MIN_BATCH = {"GaussianKDE": 1, "VonMisesFisherKDE": 1, "GaussianLogDet": 2,
             "LogDetSecondOrder": 2, "VICRegSurrogate": 2, "KNNEntropy": 4,
             "CategoricalEntropy": 1}

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


#: The name the estimators give their input (in their messages).
ARG = {"CategoricalEntropy": "q"}


def _expected_error(p, min_batch, arg="z"):
    """The message the input ``p`` must be refused with, or None if it is valid."""
    shape = {1: (p["n"],), 2: (p["n"], p["d"]), 3: (p["n"], p["d"], 2)}[p["rank"]]
    if p["rank"] != 2:
        return (rf"`{arg}` must be a rank-2 tensor of shape \(batch, [a-z_]+\); received "
                rf"shape {re.escape(str(shape))} \(rank {p['rank']}\)")
    if p["n"] < min_batch:
        return (rf"`{arg}` needs a batch of at least {min_batch} samples.*; "
                rf"received a batch of {p['n']}\.")
    return None


def _value_or_named_error(fn, expected):
    """``fn()`` must raise a ValueError matching ``expected`` (which names the argument,
    what it expected and what it received), or, when ``expected`` is None, return a
    finite float32 value."""
    if expected is not None:
        with pytest.raises(ValueError, match=expected):
            fn()
        return None
    value = fn()
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    value = keras.ops.convert_to_numpy(value)
    assert np.all(np.isfinite(value)), value
    return value


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@settings(max_examples=10, deadline=None, derandomize=True)
@given(p=inputs)
def test_estimator_finite_or_value_error(name, p):
    z = _sample(p)
    if name == "CategoricalEntropy" and p["rank"] == 2:
        z = keras.ops.convert_to_numpy(keras.ops.softmax(z, axis=-1))
    _value_or_named_error(lambda: ESTIMATORS[name]()(z), _expected_error(p, MIN_BATCH[name], ARG.get(name, "z")))


@pytest.mark.parametrize("name", sorted(PRIORS))
@settings(max_examples=10, deadline=None, derandomize=True)
@given(p=inputs)
def test_prior_finite_or_value_error(name, p):
    z = _sample(p)
    context = _sample({**p, "seed": p["seed"] + 1})
    value = _value_or_named_error(lambda: PRIORS[name]()(z, context=context),
                                  _expected_error(p, 1))
    if value is not None:
        assert value.shape == (p["n"],)          # one log density per sample


@settings(max_examples=10, deadline=None, derandomize=True)
@given(d=st.integers(1, 5), seed=st.integers(0, 2**16), square=st.booleans())
def test_linear_jacobian_finite_or_value_error(d, seed, square):
    w = np.random.default_rng(seed).normal(size=(d, d if square else d + 1)).astype("float32")
    expected = None if square else (
        rf"`w` must be a square matrix \(d, d\); received shape \({d}, {d + 1}\)\.")
    value = _value_or_named_error(lambda: E.LinearJacobian()(w), expected)
    if square:
        np.testing.assert_allclose(value, np.linalg.slogdet(w.astype("float64"))[1],
                                   rtol=1e-4, atol=1e-4)


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
