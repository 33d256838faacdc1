"""JAX implementation of :mod:`ldm_keras.backend`.

Data parallelism on JAX is ``keras.distribution.DataParallel``: Keras jits the step over
the global batch sharded along the batch axis (GSPMD), so every batch reduction in the
loss is already over the global batch and there is nothing to gather.
"""

import jax
import keras


def all_gather(x):
    """The identity: under GSPMD the step already sees the global batch."""
    return x


def num_replicas():
    """1: the jitted step is one program over the global batch."""
    return 1


def replica_index():
    """0: the jitted step is one program over the global batch."""
    return 0


def all_true(flag):
    """``flag`` itself (one program, one decision)."""
    return flag


def gradients(fn, variables):
    """``(fn(), d fn / d variables)`` (diagnostics; not the training step)."""
    variables = list(variables)

    def f(values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn()

    value, grads = jax.value_and_grad(f)([v.value for v in variables])
    return value, list(grads)


def outside_trace(fn):
    """Run ``fn`` now (this backend builds models eagerly)."""
    return fn()



_STARTED = []


def initialize(coordinator, num_processes, process_id, timeout):
    """``jax.distributed.initialize`` with the coordinator at ``coordinator``
    (``host:port``), before any other JAX work; the cross-process collectives of CPU
    devices use gloo. Then ``keras.distribution.DataParallel()`` spans the devices of
    every process. Returns ``None``."""
    if _STARTED:
        return None
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=int(timeout),
                               heartbeat_timeout_seconds=int(timeout),
                               shutdown_timeout_seconds=int(timeout))
    _STARTED.append(True)
    return None


def process_index():
    """``jax.process_index()``."""
    return jax.process_index()


def process_count():
    """``jax.process_count()``."""
    return jax.process_count()
