"""PyTorch implementation of :mod:`ldm_keras.backend` (one process, eager).

Keras' PyTorch trainer runs one process on one device, so there is nothing to gather;
``torch.distributed`` support is where :func:`all_gather` and :func:`num_replicas`
would differ.
"""

import torch


def all_gather(x):
    """The identity (one process)."""
    return x


def num_replicas():
    """1 (one process)."""
    return 1


def all_true(flag):
    """``flag`` itself (one process)."""
    return flag


def gradients(fn, variables):
    """``(fn(), d fn / d variables)`` eagerly (diagnostics; not the training step)."""
    value = fn()
    grads = torch.autograd.grad(value, [v.value for v in variables], allow_unused=True)
    return value.detach(), list(grads)


def outside_trace(fn):
    """Run ``fn`` now (this backend builds models eagerly)."""
    return fn()
