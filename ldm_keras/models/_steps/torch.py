"""PyTorch gradient step: autograd, like Keras' torch trainer."""

import torch


def train_step(model, data):
    model.zero_grad()
    logs = model._compute_logs(data, training=True)
    logs["loss"].backward()
    variables = model.trainable_variables
    grads = [v.value.grad for v in variables]
    with torch.no_grad():
        model._apply_update(grads, variables, logs)
    return model._update_trackers(logs)


def test_step(model, data):
    with torch.no_grad():
        logs = model._compute_logs(data, training=False)
    return model._update_trackers(logs)


def outside_trace(fn):
    """Run ``fn`` now (this backend builds models eagerly)."""
    return fn()


def gradients(fn, variables):
    """``(fn(), d fn / d variables)`` eagerly (diagnostics; not the training step)."""
    value = fn()
    grads = torch.autograd.grad(value, [v.value for v in variables], allow_unused=True)
    return value.detach(), list(grads)
