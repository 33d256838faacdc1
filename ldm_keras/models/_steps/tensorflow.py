"""TensorFlow gradient step: ``tf.GradientTape``, like Keras' TensorFlow trainer.

Non-finite guard (``model.nonfinite != "ignore"``): the step snapshots the weights and
optimizer state, applies the update, then assigns back ``where(ok, new, old)``. A
``tf.cond`` around the update would avoid the copy but cannot hold the optimizer's
cross-replica ``merge_call`` under a ``tf.distribute`` strategy.

Under ``tf.distribute`` (e.g. ``MirroredStrategy``) Keras runs this step once per replica
on the replica's slice of the batch. A model whose loss calls ``all_gather`` (below) on its
embeddings (gathered with gradient, so an entropy over the batch sees the global batch)
sets ``gathers_across_replicas = True`` (``MultiViewLDM``); the step refuses any other
model under more than one replica. The loss, then the same global value on every replica,
is divided by the number of replicas before the gradient, as the optimizer sums the
replicas' gradients; the finiteness flag is all-reduced so that every replica skips the
same steps.
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


def _check_gathers(model):
    """Refuse a multi-replica step for a model whose loss does not gather its embeddings."""
    if num_replicas() > 1 and not getattr(model, "gathers_across_replicas", False):
        raise NotImplementedError(
            f"{type(model).__name__} does not gather its embeddings across the "
            f"{num_replicas()} replicas of the tf.distribute strategy, so its entropy "
            "would be estimated per replica (on the local batch), not on the global "
            "batch. Train it on one device, or with the JAX backend and "
            "keras.distribution.DataParallel. MultiViewLDM supports MirroredStrategy."
        )
    if num_replicas() > 1 and not model.built:
        # built inside a replica, EMA targets would not start as copies of the online nets
        raise ValueError(
            f"Under a tf.distribute strategy with {num_replicas()} replicas, build "
            f"{type(model).__name__} inside `strategy.scope()` before `fit`/`evaluate` "
            "(e.g. `model.build(input_shape)`); received an unbuilt model."
        )


def train_step(model, data):
    _check_gathers(model)
    guard = model._guards_nonfinite
    if guard:  # snapshot before the forward pass (it updates BatchNorm statistics)
        model._ensure_built(data)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        guarded = model._guarded_variables()
        old = [tf.identity(v.value) for v in guarded]
    with tf.GradientTape() as tape:
        logs = model._compute_logs(data, training=True)
        # the optimizer sums the replicas' gradients and the loss is global (MultiViewLDM
        # gathers the embeddings), so each replica contributes 1/R of it
        scaled = logs["loss"] / num_replicas()
    variables = model.trainable_variables
    grads = tape.gradient(scaled, variables)
    if not guard:
        model._apply_update(grads, variables, logs)
        return model._update_trackers(logs)
    ok = model._step_is_finite(logs, grads)
    ctx = _replica_context()
    if ctx is not None:  # every replica must take the same decision
        ok = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(ok, tf.float32)) >= (
            ctx.num_replicas_in_sync - 0.5)
    safe = [g if g is None or isinstance(g, tf.IndexedSlices)
            else tf.where(ok, g, tf.zeros_like(g)) for g in grads]
    with tf.control_dependencies(old):
        model._apply_update(safe, variables, logs)
    for v, o in zip(guarded, old):
        v.assign(tf.where(ok, v.value, o))
    return model._update_trackers(logs, ok)


def test_step(model, data):
    _check_gathers(model)
    logs = model._compute_logs(data, training=False)
    return model._update_trackers(logs)


def outside_trace(fn):
    """Run ``fn`` eagerly even while a ``tf.function`` is being traced (one-off setup)."""
    with tf.init_scope():
        return fn()


def gradients(fn, variables):
    """``(fn(), d fn / d variables)`` eagerly (diagnostics; not the training step)."""
    with tf.GradientTape() as tape:
        value = fn()
    return value, tape.gradient(value, list(variables))
