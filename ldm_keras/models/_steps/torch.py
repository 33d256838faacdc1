"""PyTorch gradient step: autograd, like Keras' torch trainer.

Non-finite guard (``model.nonfinite != "ignore"``): eager, so the step reads the
finiteness flag (one device sync) and does not call the optimizer at all when it is
false — weights, optimizer state and EMA targets stay unchanged. The non-trainable
variables (BatchNorm statistics, seed states) are updated by the forward pass itself, so
they are copied before it and put back after a skipped step.
"""

import torch


def train_step(model, data):
    model.zero_grad()
    guard = model._guards_nonfinite
    if guard:
        model._ensure_built(data)
        frozen = list(model.non_trainable_variables)
        with torch.no_grad():
            old = [v.value.detach().clone() for v in frozen]
    logs = model._compute_logs(data, training=True)
    logs["loss"].backward()
    variables = model.trainable_variables
    grads = [v.value.grad for v in variables]
    ok = None
    with torch.no_grad():
        if guard:
            ok = model._step_is_finite(logs, grads)
            if bool(ok):
                model._apply_update(grads, variables, logs)
            else:
                for v, o in zip(frozen, old):
                    v.assign(o)
        else:
            model._apply_update(grads, variables, logs)
        logs = {k: v.detach() for k, v in logs.items()}
        return model._update_trackers(logs, ok)


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
