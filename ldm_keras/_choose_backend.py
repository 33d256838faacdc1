"""Choose an installed Keras backend when Keras' default one is missing.

Keras reads ``KERAS_BACKEND`` (or ``~/.keras/keras.json``) once, at import, and falls
back to TensorFlow. A user who installed only ``ldm-keras[jax]`` (or ``[torch]``) would
then get an import error from Keras (Keras also writes ``"tensorflow"`` into
``keras.json`` on its first import). Before Keras is imported, when ``KERAS_BACKEND`` is
not set and the backend that ``keras.json`` names (TensorFlow when there is none) is not
installed, this sets ``KERAS_BACKEND`` to the first installed of TensorFlow, JAX and
PyTorch. An explicit ``KERAS_BACKEND`` is never changed.
"""

import json
import os
import sys
from importlib.util import find_spec


def _config_file_backend():
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _installed(backend):
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch",
              "numpy": "numpy", "openvino": "openvino"}.get(backend)
    return module is not None and find_spec(module) is not None


def choose_backend():
    """Set ``KERAS_BACKEND`` to an installed backend if the configured one is missing."""
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return
    if _installed(_config_file_backend()):
        return
    for name in ("tensorflow", "jax", "torch"):
        if _installed(name):
            os.environ["KERAS_BACKEND"] = name
            return
