""":mod:`ldm_keras.backend` for a Keras backend that ldm_keras does not train on.

The package imports (so that configs can be read and layers called), but gradients
are refused with a clear error; training fails the same way (see
:mod:`ldm_keras.models.trainers`).
"""

import keras


def _refuse(what):
    raise ValueError(
        f"ldm_keras supports the tensorflow, jax and torch backends; KERAS_BACKEND is "
        f"{keras.backend.backend()!r}, which cannot {what}."
    )


def all_gather(x):
    """The identity (no data parallelism)."""
    return x


def num_replicas():
    """1 (no data parallelism)."""
    return 1


def replica_index():
    """0 (no data parallelism)."""
    return 0


def all_true(flag):
    """``flag`` itself."""
    return flag


def gradients(fn, variables):
    """Refused: this backend has no gradients."""
    _refuse("compute gradients")


def outside_trace(fn):
    """Run ``fn`` now."""
    return fn()


def initialize(coordinator, num_processes, process_id, timeout):
    """Refused: no multi-process training on this backend."""
    _refuse("train across processes")


def process_index():
    """0 (one process)."""
    return 0


def process_count():
    """1 (one process)."""
    return 1
