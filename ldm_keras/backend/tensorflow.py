"""TensorFlow implementation of :mod:`ldm_keras.backend`.

Under ``tf.distribute`` (e.g. ``MirroredStrategy``) Keras runs the training step once
per replica on that replica's slice of the batch; the replica context gathers and
reduces across them.
"""

import json
import os

import tensorflow as tf


def _replica_context():
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    return ctx


def all_gather(x):
    """Concatenate ``x`` over the replicas along axis 0 (identity with one replica).

    Differentiable: the gradient of the gathered tensor flows back to each replica's
    slice (TensorFlow's ``all_gather`` gradient is a reduce-scatter).
    """
    ctx = _replica_context()
    if ctx is None:
        return x
    out = ctx.all_gather(x, axis=0)
    out.set_shape([None] + list(x.shape[1:]))  # all_gather drops the static shape
    return out


def num_replicas():
    """Replicas in sync in the current replica context (1 outside ``tf.distribute``)."""
    ctx = _replica_context()
    return 1 if ctx is None else ctx.num_replicas_in_sync


def replica_index():
    """This replica's index in ``[0, num_replicas())`` in the current replica context
    (a tensor inside a ``tf.distribute`` step; 0 outside one)."""
    ctx = _replica_context()
    return 0 if ctx is None else ctx.replica_id_in_sync_group


def all_true(flag):
    """True on every replica only if ``flag`` is true on all (a summed all-reduce)."""
    ctx = _replica_context()
    if ctx is None:
        return flag
    count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(flag, tf.float32))
    return count >= ctx.num_replicas_in_sync - 0.5


def gradients(fn, variables):
    """``(fn(), d fn / d variables)`` eagerly (diagnostics; not the training step)."""
    with tf.GradientTape() as tape:
        value = fn()
    return value, tape.gradient(value, list(variables))


def outside_trace(fn):
    """Run ``fn`` eagerly even while a ``tf.function`` is being traced (one-off setup)."""
    with tf.init_scope():
        return fn()


_STRATEGY = []


def initialize(coordinator, num_processes, process_id, timeout):
    """``tf.distribute.MultiWorkerMirroredStrategy`` over the workers ``coordinator``
    (``host:port,host:port,...``, one address per process, this process's at
    ``process_id``), written to ``TF_CONFIG``; collectives that wait longer than
    ``timeout`` seconds for a peer raise. Returns the strategy: build and compile the
    model inside ``strategy.scope()``. Call it before any other TensorFlow work."""
    if _STRATEGY:
        return _STRATEGY[0]
    workers = [a.strip() for a in coordinator.split(",") if a.strip()]
    if len(workers) != num_processes:
        raise ValueError(
            "On TensorFlow every worker needs its own address: pass `coordinator` as "
            f"{num_processes} comma-separated host:port addresses (one per process); "
            f"received {coordinator!r}.")
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": process_id}})
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
    _STRATEGY.append(tf.distribute.MultiWorkerMirroredStrategy(communication_options=options))
    return _STRATEGY[0]


def process_index():
    """This worker's index (0 without :func:`initialize`)."""
    return int(_STRATEGY[0].cluster_resolver.task_id) if _STRATEGY else 0


def process_count():
    """The number of workers (1 without :func:`initialize`)."""
    if not _STRATEGY:
        return 1
    return len(_STRATEGY[0].cluster_resolver.cluster_spec().as_dict().get("worker", [1]))
