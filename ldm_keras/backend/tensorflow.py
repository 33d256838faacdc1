"""TensorFlow implementation of :mod:`ldm_keras.backend`.

Under ``tf.distribute`` (e.g. ``MirroredStrategy``) Keras runs the training step once
per replica on that replica's slice of the batch; the replica context gathers and
reduces across them.
"""

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
