import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests draw the same examples on every run (a failure is reproducible, CI is
# not flaky); the tests also say derandomize=True themselves.
settings.register_profile("ldm_keras", derandomize=True, deadline=None)
settings.load_profile("ldm_keras")

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _reset_policy_and_seed():
    """Each test starts with the float32 policy and a fixed seed."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
