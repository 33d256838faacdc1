"""TensorFlow gradient step: ``tf.GradientTape``, like Keras' TensorFlow trainer."""

import tensorflow as tf


def train_step(model, data):
    with tf.GradientTape() as tape:
        logs = model._compute_logs(data, training=True)
    variables = model.trainable_variables
    grads = tape.gradient(logs["loss"], variables)
    model._apply_update(grads, variables, logs)
    return model._update_trackers(logs)


def test_step(model, data):
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
