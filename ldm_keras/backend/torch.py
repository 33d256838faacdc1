"""PyTorch implementation of :mod:`ldm_keras.backend`.

One process is one replica. Data parallelism is ``torch.distributed`` (gloo on CPUs,
NCCL on GPUs): once a process group is initialised
(:func:`ldm_keras.distributed.initialize`, or the user's own
``torch.distributed.init_process_group``), every process runs the training step on its
own shard of the batch; :func:`all_gather` concatenates the embeddings of all processes
(with gradient) so that every batch statistic sees the global batch, and the trainer
(:mod:`ldm_keras.models.trainers.torch`) all-reduces the gradients with DDP semantics.
"""

import datetime

import torch
import torch.distributed as dist


class PeerLostError(RuntimeError):
    """A collective of a data-parallel run failed: a peer process stopped or timed out."""


def collective(fn, *args, **kwargs):
    """Run the ``torch.distributed`` collective ``fn``; a failure (a peer that exited,
    crashed or exceeded the group's timeout) raises :class:`PeerLostError` naming this
    rank, instead of the transport's message alone."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as err:
        raise PeerLostError(
            f"A collective ({fn.__name__}) of the data-parallel run failed on rank "
            f"{dist.get_rank()} of {dist.get_world_size()}: another process probably "
            f"stopped, crashed or exceeded the timeout. Check its log. ({err})") from err


def _world():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _AllGather(torch.autograd.Function):
    """Concatenate every process's ``x`` along axis 0; the gradient of the result is
    summed over the processes and each process keeps its own rows (a reduce-scatter,
    written as an all-reduce so that it runs on gloo). The processes may hold different
    numbers of rows (a last partial batch)."""

    @staticmethod
    def forward(ctx, x):
        world, rank = dist.get_world_size(), dist.get_rank()
        n = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
        sizes = [torch.zeros_like(n) for _ in range(world)]
        collective(dist.all_gather, sizes, n)
        sizes = [int(s) for s in sizes]
        most = max(sizes)
        padded = x.detach().contiguous()
        if x.shape[0] < most:
            padded = torch.cat([padded, padded.new_zeros((most - x.shape[0],) + x.shape[1:])])
        parts = [torch.empty_like(padded) for _ in range(world)]
        collective(dist.all_gather, parts, padded)
        ctx.rows = (sum(sizes[:rank]), sizes[rank])
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        collective(dist.all_reduce, grad)
        start, rows = ctx.rows
        return grad[start:start + rows]


def all_gather(x):
    """Concatenate ``x`` over the processes of the ``torch.distributed`` group along
    axis 0, with gradient (the identity with one process). Integer and boolean tensors
    are gathered without gradient."""
    if _world() == 1:
        return x
    if x.dtype == torch.bool:  # gloo has no boolean collectives
        return _AllGather.apply(x.to(torch.uint8)).bool()
    return _AllGather.apply(x)


def num_replicas():
    """The number of processes of the ``torch.distributed`` group (1 without one)."""
    return _world()


def replica_index():
    """This process's rank in the ``torch.distributed`` group (0 without one): the
    replica whose slice of the global batch this process's step holds."""
    return dist.get_rank() if _world() > 1 else 0


def all_true(flag):
    """True on every process only if ``flag`` is true on all (a MIN all-reduce)."""
    if _world() == 1:
        return flag
    value = torch.as_tensor(flag).to(torch.int32).reshape(()).clone()
    collective(dist.all_reduce, value, op=dist.ReduceOp.MIN)
    return value.bool()


def gradients(fn, variables):
    """``(fn(), d fn / d variables)`` eagerly (diagnostics; not the training step)."""
    value = fn()
    grads = torch.autograd.grad(value, [v.value for v in variables], allow_unused=True)
    return value.detach(), list(grads)


def outside_trace(fn):
    """Run ``fn`` now (this backend builds models eagerly)."""
    return fn()


def initialize(coordinator, num_processes, process_id, timeout):
    """``torch.distributed.init_process_group`` over TCP at ``coordinator``
    (``host:port``): NCCL when CUDA is available, else gloo. A collective that waits
    longer than ``timeout`` seconds for a peer (a rank that died) raises. Returns
    ``None``."""
    if dist.is_initialized():
        return None
    dist.init_process_group(
        "nccl" if torch.cuda.is_available() else "gloo",
        init_method=f"tcp://{coordinator}", world_size=num_processes, rank=process_id,
        timeout=datetime.timedelta(seconds=timeout))
    return None


def process_index():
    """This process's rank in the ``torch.distributed`` group (0 without one)."""
    return dist.get_rank() if _world() > 1 else 0


def process_count():
    """The number of processes (1 without a ``torch.distributed`` group)."""
    return _world()
