"""Choose an installed Keras backend when Keras' default one is missing.

Keras reads ``KERAS_BACKEND`` (or ``~/.keras/keras.json``) once, at import, and falls
back to TensorFlow. A user who installed only ``ldm-keras[jax]`` (or ``[torch]``) would
then get an import error from Keras. Before Keras is imported, and only when neither the
variable nor the config file names a backend and TensorFlow is not installed, this sets
``KERAS_BACKEND`` to the first installed of JAX and PyTorch.
"""

import json
import os
import sys
from importlib.util import find_spec


def _configured_backend():
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend")
    except (OSError, ValueError):
        return None


def choose_backend():
    """Set ``KERAS_BACKEND`` to an installed backend if Keras' default is unavailable."""
    if "keras" in sys.modules or _configured_backend():
        return
    if find_spec("tensorflow") is not None:
        return
    for name in ("jax", "torch"):
        if find_spec(name) is not None:
            os.environ["KERAS_BACKEND"] = name
            return
