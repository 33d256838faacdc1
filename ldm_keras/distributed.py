"""Multi-process data-parallel training: joining a run, sharding the data, who writes.

An LDM entropy is a statistic of the whole batch, so data-parallel training must
estimate it on the *global* batch: every built-in model passes its per-sample outputs
through :meth:`~ldm_keras.models.LDMModel.gather_batch` before the latent model and the
entropy (see docs/scaling.md). This module starts the processes' collective layer on
each backend and splits the data:

* PyTorch — one process per device, a ``torch.distributed`` process group (gloo on
  CPUs, NCCL on GPUs); the training step all-gathers the embeddings with gradient and
  all-reduces the gradients (DDP semantics).
* JAX — ``jax.distributed`` (gloo collectives on CPUs); then
  ``keras.distribution.set_distribution(keras.distribution.DataParallel())`` spans the
  devices of every process and each process feeds its own shard of every batch.
* TensorFlow — a ``MultiWorkerMirroredStrategy`` (returned by :func:`initialize`);
  build and compile the model inside ``strategy.scope()``.

Settings come from the arguments or the environment: ``LDM_KERAS_COORDINATOR``
(``host:port`` of process 0; on TensorFlow every worker's ``host:port``,
comma-separated), ``LDM_KERAS_NUM_PROCESSES``, ``LDM_KERAS_PROCESS_ID``; ``torchrun``'s
``MASTER_ADDR``/``MASTER_PORT``/``WORLD_SIZE``/``RANK`` are read too.

Example (each of 2 processes, PyTorch; see docs/scaling.md for JAX and TensorFlow):
    >>> from ldm_keras import distributed
    >>> distributed.initialize("127.0.0.1:29500", num_processes=2, process_id=rank)
    >>> x_local = distributed.shard(x)                 # this process's rows
    >>> model.fit(x_local, batch_size=128)             # global batch 2 × 128
    >>> if distributed.is_chief():
    ...     model.save("model.keras")
"""

import os
import warnings

from . import backend

#: Environment variables read by :func:`initialize` when an argument is not given.
ENVIRONMENT = {"coordinator": "LDM_KERAS_COORDINATOR",
               "num_processes": "LDM_KERAS_NUM_PROCESSES",
               "process_id": "LDM_KERAS_PROCESS_ID"}


def _from_environment():
    env = os.environ
    coordinator = env.get(ENVIRONMENT["coordinator"])
    if coordinator is None and "MASTER_ADDR" in env and "MASTER_PORT" in env:
        coordinator = f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}"
    count = env.get(ENVIRONMENT["num_processes"], env.get("WORLD_SIZE"))
    index = env.get(ENVIRONMENT["process_id"], env.get("RANK"))
    return coordinator, count, index


def _int(value, name, low):
    try:
        out = int(value)
    except (TypeError, ValueError):
        out = None
    if out is None or out < low or str(value).strip() != str(out):
        raise ValueError(f"`{name}` must be an integer >= {low}; received {value!r}.")
    return out


def initialize(coordinator=None, num_processes=None, process_id=None, timeout=300):
    """Join a multi-process data-parallel run (call once per process, before building
    the model; on JAX and TensorFlow before any other work of the backend).

    Args:
        coordinator: ``"host:port"`` of process 0 (TensorFlow: every worker's
            ``host:port``, comma-separated, in process order).
        num_processes: the number of processes ``R``.
        process_id: this process's index in ``[0, R)``.
        timeout: seconds a collective waits for a peer before raising (a process that
            died makes the others fail with an error, not hang).

    Returns:
        The ``MultiWorkerMirroredStrategy`` on TensorFlow, else ``None``. With one
        process nothing is started and ``None`` is returned.

    Example:
        >>> distributed.initialize("127.0.0.1:29500", num_processes=2, process_id=0)
    """
    env_coordinator, env_count, env_index = _from_environment()
    coordinator = env_coordinator if coordinator is None else coordinator
    if num_processes is None:
        num_processes = env_count
    num_processes = 1 if num_processes is None else _int(num_processes, "num_processes", 1)
    if num_processes == 1:
        return None
    if coordinator is None or ":" not in str(coordinator):
        raise ValueError(
            "`coordinator` must be 'host:port' (or set LDM_KERAS_COORDINATOR); received "
            f"{coordinator!r}.")
    if process_id is None and env_index is None:
        raise ValueError("`process_id` is needed (or set LDM_KERAS_PROCESS_ID) for a run "
                         f"of {num_processes} processes.")
    process_id = _int(env_index if process_id is None else process_id, "process_id", 0)
    if process_id >= num_processes:
        raise ValueError(f"`process_id` must be in [0, {num_processes}); received {process_id}.")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"`timeout` must be a positive number of seconds; received {timeout!r}.")
    return backend.initialize(str(coordinator), num_processes, process_id, timeout)


def process_index():
    """This process's index (0 in a single-process run)."""
    return int(backend.process_index())


def process_count():
    """The number of processes (1 in a single-process run)."""
    return int(backend.process_count())


def is_chief():
    """True on process 0, the one that writes checkpoints, zoo files and reports."""
    return process_index() == 0


def shard(*arrays):
    """This process's contiguous share of each array along axis 0: process ``i`` of
    ``R`` gets rows ``[i n, (i + 1) n)`` with ``n = len // R``, so every process runs
    the same number of steps. Rows left over (``len mod R``) are dropped with a warning.

    For a ``tf.data.Dataset`` use ``dataset.shard(R, i)`` (before batching); for a torch
    ``DataLoader``, a ``torch.utils.data.DistributedSampler``.

    Example:
        >>> x_local, y_local = distributed.shard(x, y)
    """
    if not arrays:
        raise ValueError("`shard` needs at least one array.")
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"`shard` needs arrays of one length; received lengths {sorted(lengths)}.")
    total, count, index = lengths.pop(), process_count(), process_index()
    per = total // count
    if per == 0:
        raise ValueError(f"{total} rows cannot be shared by {count} processes.")
    if total % count:
        warnings.warn(f"Dropping the last {total - per * count} of {total} rows so that each "
                      f"of the {count} processes gets {per}.", stacklevel=2)
    out = tuple(a[index * per:(index + 1) * per] for a in arrays)
    return out if len(out) > 1 else out[0]
