"""Choose an installed Keras backend when Keras' default one is missing.

Keras reads ``KERAS_BACKEND`` (or ``~/.keras/keras.json``) once, at import, and falls
back to TensorFlow. A user who installed only ``ldm-keras[jax]`` (or ``[torch]``) would
then get an import error from Keras (Keras also writes ``"tensorflow"`` into
``keras.json`` on its first import). Before Keras is imported, when ``KERAS_BACKEND`` is
not set and the backend that ``keras.json`` names (TensorFlow when there is none) is not
installed, this sets ``KERAS_BACKEND`` to the first installed of TensorFlow, JAX and
PyTorch. An explicit ``KERAS_BACKEND`` is never changed.

:func:`check_keras_version` refuses, at import, a Keras older than :data:`MIN_KERAS`.
"""

import json
import os
import re
import sys
from importlib.util import find_spec

#: The oldest Keras ldm_keras runs on (also the bound in ``pyproject.toml``). Older
#: releases cannot read the zoo's configs (written with Keras 3.15: the initializers'
#: ``input_axes``/``output_axes``), and the releases tested below 3.14 lack safe-mode
#: protections that loading ``.keras`` files relies on (docs/reliability.md, "Zoo
#: confinement", lists which release failed which test).
MIN_KERAS = (3, 15, 0)


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


def _version_tuple(text):
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", str(text))
    return tuple(int(g or 0) for g in m.groups()) if m else None


def check_keras_version(version=None):
    """Raise ``ImportError`` if Keras (``version``, default the installed one) is older
    than :data:`MIN_KERAS`.

    Example:
        >>> check_keras_version("3.8.0")     # ImportError: ldm_keras needs keras>=3.15.0 ...
    """
    if version is None:
        import keras

        version = keras.__version__
    found = _version_tuple(version)
    if found is not None and found < MIN_KERAS:
        need = ".".join(map(str, MIN_KERAS))
        raise ImportError(
            f"ldm_keras needs keras>={need}; found keras {version}. Older releases cannot "
            "read the model zoo's configs and lack safe-mode protections that loading "
            f"relies on. Upgrade with: pip install -U 'keras>={need}'")
