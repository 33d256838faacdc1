"""Backend utilities for backend-agnostic code: the few things ``keras.ops`` cannot say.

Everything else in ldm_keras is written once, in ``keras.ops``. What differs per
backend, and is needed outside the training step, is collected here with one
implementation per backend (``backend/jax.py``, ``backend/tensorflow.py``,
``backend/torch.py``); this module picks the one of the active Keras backend once, at
import. Each implementation defines every name of :data:`INTERFACE`:

* :func:`all_gather` ``(x)`` — concatenate ``x`` over the replicas of a data-parallel
  step along axis 0, with gradient (each replica's slice receives its part), so that a
  batch statistic such as an entropy estimate sees the global batch. The identity where
  there is nothing to gather (one replica, or JAX, where the step already runs on the
  global batch).
* :func:`num_replicas` ``()`` — the number of replicas whose batches form the global
  batch of the current step (1 outside a data-parallel step).
* :func:`replica_index` ``()`` — this replica's index among them (0 outside a
  data-parallel step, and on JAX); a tensor inside a TensorFlow replica step.
* :func:`all_true` ``(flag)`` — a boolean scalar that is true on every replica only if
  ``flag`` is true on all of them (so that every replica skips the same steps).
* :func:`gradients` ``(fn, variables)`` — ``(fn(), d fn / d variables)``, computed now
  (diagnostics; not the training step, which lives in
  :mod:`ldm_keras.models.trainers`).
* :func:`outside_trace` ``(fn)`` — run ``fn`` eagerly even while a compiled step is being
  traced (one-off set-up such as copying weights into an EMA target).
* :func:`initialize` ``(coordinator, num_processes, process_id, timeout)`` — join a
  multi-process run (``torch.distributed`` process group, ``jax.distributed``, or a
  ``MultiWorkerMirroredStrategy``, which it returns); used by
  :func:`ldm_keras.distributed.initialize`.
* :func:`process_index` ``()`` / :func:`process_count` ``()`` — this process's index
  and the number of processes (0 and 1 in a single-process run).

Adding a utility: define it, with the same signature and docstring, in each of the three
backend files (and in ``unsupported.py``), then add its name to :data:`INTERFACE` and
bind it below; ``tests/test_architecture.py`` checks that every backend file defines
every name of the interface.

Example:
    >>> from ldm_keras import backend
    >>> z = backend.all_gather(z)            # global batch under tf.distribute
    >>> value, grads = backend.gradients(lambda: loss(model(x)), model.trainable_variables)
"""

import importlib

import keras

#: The functions every backend implementation defines.
INTERFACE = ("all_gather", "num_replicas", "replica_index", "all_true", "gradients",
             "outside_trace", "initialize", "process_index", "process_count")

#: Keras backend name -> implementation module (anything else: ``unsupported``).
IMPLEMENTATIONS = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}

#: The active Keras backend.
name = keras.backend.backend()

_impl = importlib.import_module(f"{__name__}.{IMPLEMENTATIONS.get(name, 'unsupported')}")

all_gather = _impl.all_gather
num_replicas = _impl.num_replicas
replica_index = _impl.replica_index
all_true = _impl.all_true
gradients = _impl.gradients
outside_trace = _impl.outside_trace
initialize = _impl.initialize
process_index = _impl.process_index
process_count = _impl.process_count

__all__ = ["INTERFACE", "IMPLEMENTATIONS", "name", *INTERFACE]
