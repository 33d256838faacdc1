"""PyTorch training step: autograd, like Keras' torch trainer.

Non-finite guard (``nonfinite != "ignore"``): eager, so the step reads the finiteness
flag (one device sync) and does not call the optimizer at all when it is false. The
model and optimizer state are copied before the forward pass (which itself updates
BatchNorm statistics and seed states) and put back after a skipped step: one with a
NaN/inf loss or gradient, or whose update made a weight or optimizer slot non-finite.

Data parallelism (``torch.distributed``, one process per replica; see
docs/scaling.md): every process runs this step on its own shard of the batch, with DDP
semantics written out here:

* at the first step, every weight, non-trainable variable and optimizer slot is
  broadcast from rank 0, so all ranks start from the same state;
* the loss passes its per-sample outputs through ``gather_batch`` (an all-gather with
  gradient), so its batch statistics are those of the global batch and its value is
  the same on every rank; the step back-propagates ``loss / R`` and all-reduces (sums)
  the gradients, as the gather's backward sums each rank's share — the result is the
  gradient of the global loss;
* the skip decision of the non-finite guard is all-reduced (every rank skips the same
  steps), the optimizer step and the EMA targets then move identically;
* BatchNorm moving statistics, computed on each rank's shard, are averaged over the
  ranks after every step (normalisation itself uses each rank's batch statistics, as
  DDP without SyncBatchNorm), and the logged metrics are averaged over the ranks.
"""

import torch
import torch.distributed as dist

from ... import backend
from ...backend.torch import collective
from .base import LDMTrainer


def _all_reduce(tensors, average=False):
    """Sum (or average) a list of tensors over the processes in place, as one buffer."""
    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1).to(torch.float32) for t in tensors])
    collective(dist.all_reduce, flat)
    if average:
        flat /= dist.get_world_size()
    start = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[start:start + n].reshape(t.shape).to(t.dtype))
        start += n


def _average_logs(logs):
    """Replace each scalar of ``logs`` by its mean over the processes (same key order)."""
    keys = sorted(logs)
    values = [logs[k].reshape(()).clone() for k in keys]
    _all_reduce(values, average=True)
    logs.update(zip(keys, values))


def _all_finite(tensors):
    """One boolean tensor: every floating-point tensor of ``tensors`` is finite.

    One concatenation and one ``isfinite`` instead of three Keras operations per
    tensor (in an eager step of a small model those dispatches cost milliseconds)."""
    by_dtype = {}
    for t in tensors:
        if t is not None and torch.is_floating_point(t):
            by_dtype.setdefault((t.dtype, t.device), []).append(t.detach().reshape(-1))
    ok = torch.ones((), dtype=torch.bool)
    for flat in by_dtype.values():
        ok = ok & torch.isfinite(torch.cat(flat)).all().to(ok.device)
    return ok


class TorchTrainer(LDMTrainer):
    """``train_step(data)`` / ``test_step(data)`` on the PyTorch backend."""

    def step_is_finite(self, logs, grads):
        """See :meth:`.base.LDMTrainer.step_is_finite` (the same test, fused)."""
        import keras

        if isinstance(getattr(self, "optimizer", None), keras.optimizers.LossScaleOptimizer):
            return super().step_is_finite(logs, grads)
        return _all_finite([logs["loss"]] + list(grads))

    @staticmethod
    def values_are_finite(values):
        """See :meth:`.base.LDMTrainer.values_are_finite` (the same test, fused)."""
        return _all_finite(values)

    def _start_replicas(self, data):
        """First step of a multi-process run: every rank takes rank 0's state."""
        self.check_replicas()
        if getattr(self, "_replicas_started", False):
            return
        self.build_from_data(data)
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        with torch.no_grad():
            for v in self.guarded_variables():
                value = v.value.detach().clone()
                collective(dist.broadcast, value, src=0)
                v.assign(value)
        self._replicas_started = True

    def train_step(self, data):
        world = backend.num_replicas()
        if world > 1:
            self._start_replicas(data)
        self.zero_grad()
        guard = self.guards_nonfinite
        if guard:
            self.build_from_data(data)
            if not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)
            frozen = self.guarded_variables()
            with torch.no_grad():
                old = [v.value.detach().clone() for v in frozen]
        logs = self.compute_logs(data, training=True)
        # mixed precision: LossScaleOptimizer divides the gradients by its scale
        self.optimizer.scale_loss(logs["loss"] / world).backward()
        variables = self.trainable_variables
        grads = [v.value.grad for v in variables]
        ok = None
        with torch.no_grad():
            if world > 1:
                _all_reduce(grads)
            if guard:
                ok = backend.all_true(self.step_is_finite(logs, grads))
                if bool(ok):
                    self.apply_update(grads, variables)
                    # the update itself may be non-finite (a NaN or huge learning rate)
                    ok = backend.all_true(self.values_are_finite([v.value for v in frozen]))
                if not bool(ok):
                    for v, o in zip(frozen, old):
                        v.assign(o)
            else:
                self.apply_update(grads, variables)
            logs = {k: v.detach() for k, v in logs.items()}
            if world > 1:
                self._average_over_ranks(logs)
            return self.update_metrics(logs, ok)

    def _average_over_ranks(self, logs):
        """Average the BatchNorm moving statistics and the logs over the ranks."""
        stats = self.moving_statistics()
        values = [s.value for s in stats]
        _all_reduce(values, average=True)  # in place
        _average_logs(logs)

    def test_step(self, data):
        if backend.num_replicas() > 1:
            self.check_replicas()
        with torch.no_grad():
            logs = self.compute_logs(data, training=False)
            logs = {k: v.detach() for k, v in logs.items()}
            if backend.num_replicas() > 1:
                _average_logs(logs)
        return self.update_metrics(logs)
