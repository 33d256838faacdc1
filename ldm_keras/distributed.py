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

import contextlib
import os
import tempfile
import warnings

import keras

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
    started = backend.initialize(str(coordinator), num_processes, process_id, timeout)
    if started is not None and not _STRATEGY:
        _STRATEGY.append(started)
    return started


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


# -- what a training job needs beyond initialize ------------------------------------------

_STRATEGY = []  # the MultiWorkerMirroredStrategy initialize returned (TensorFlow)


def strategy():
    """The ``tf.distribute`` strategy :func:`initialize` started (TensorFlow, more than
    one process), else ``None``."""
    return _STRATEGY[0] if _STRATEGY else None


@contextlib.contextmanager
def model_scope():
    """The context in which to build and compile a model for this run.

    * TensorFlow, more than one process: ``strategy().scope()``;
    * JAX, more than one process: sets ``keras.distribution.DataParallel`` over every
      device of every process, each process feeding its own shard
      (``auto_shard_dataset = False``), unless a distribution is already set;
    * otherwise: nothing.

    Example:
        >>> with distributed.model_scope():
        ...     model = recipes.build("simclr", encoder); model.build(shape)
        ...     model.compile(optimizer="adam")
    """
    if process_count() > 1 and keras.backend.backend() == "tensorflow" and strategy():
        with strategy().scope():
            yield
        return
    if process_count() > 1 and keras.backend.backend() == "jax" \
            and keras.distribution.distribution() is None:
        layout = keras.distribution.DataParallel()
        layout.auto_shard_dataset = False
        keras.distribution.set_distribution(layout)
    yield


def fit_share(x, batch_size):
    """``(x_here, batch_here)``: what this process passes to ``model.fit`` for a run whose
    **global** batch is ``batch_size``.

    With ``R`` processes, ``batch_size`` must be a multiple of ``R``. TensorFlow's
    strategy shards the data itself, so every worker passes all of ``x`` (trimmed to a
    multiple of ``R`` rows, so that every batch splits evenly) and the global batch size;
    on JAX and PyTorch each process passes its :func:`shard` and ``batch_size / R``. ``x``
    is an array or a tuple of arrays. With one process: ``(x, batch_size)``.

    Example:
        >>> x_here, batch_here = distributed.fit_share(x, 256)
        >>> model.fit(x_here, batch_size=batch_here)
    """
    count = process_count()
    if count == 1:
        return x, batch_size
    if batch_size % count:
        raise ValueError(f"The global `batch_size` must be a multiple of the {count} "
                         f"processes; received {batch_size}.")
    arrays = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    if keras.backend.backend() == "tensorflow":
        keep = len(arrays[0]) // count * count
        out, batch = tuple(a[:keep] for a in arrays), batch_size
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the rows dropped are said by the caller
            out = shard(*arrays)
        out, batch = (out if len(arrays) > 1 else (out,)), batch_size // count
    return (out if isinstance(x, (tuple, list)) else out[0]), batch


@contextlib.contextmanager
def local_scope():
    """A context in which work is this process's alone: on JAX the distribution (if any)
    is unset inside and restored after, so ``predict`` of a :func:`local_copy` runs on
    this process's devices; elsewhere nothing changes.

    Example:
        >>> with distributed.local_scope():
        ...     z = distributed.local_copy(model.encoder).predict(x)
    """
    previous = keras.distribution.distribution() if keras.backend.backend() == "jax" \
        else None
    if previous is not None:
        keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        if previous is not None:
            keras.distribution.set_distribution(previous)


def local_copy(model):
    """A copy of ``model`` that computes on this process alone (for evaluation, plots,
    embedding), with the same weights: across processes a model's variables are
    distributed (JAX) or mirrored (TensorFlow) and a call on one process alone would wait
    for the others. It goes through a ``.keras`` file, saved and reloaded (``safe_mode``)
    outside any distribution. With one process (or on PyTorch, where the variables are
    this process's own) the model itself is returned. Use it inside :func:`local_scope`.

    Example:
        >>> with distributed.local_scope():
        ...     z = distributed.local_copy(model.encoder).predict(x)
    """
    if process_count() == 1 or keras.backend.backend() == "torch":
        return model
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        keras.saving.save_model(model, path)
        with local_scope():
            return keras.saving.load_model(path, compile=False, safe_mode=True)


def weights_fingerprint(model):
    """``Σ |w|`` over every weight of ``model`` in float64: a number that processes of one
    run can print and compare (identical weights give identical fingerprints).

    Example:
        >>> print(f"process {distributed.process_index()}: {weights_fingerprint(model):.12g}")
    """
    import numpy as np

    return float(sum(np.abs(np.asarray(w, dtype="float64")).sum()
                     for w in model.get_weights()))
