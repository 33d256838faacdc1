"""PyTorch training step: autograd, like Keras' torch trainer.

Non-finite guard (``nonfinite != "ignore"``): eager, so the step reads the finiteness
flag (one device sync) and does not call the optimizer at all when it is false. The
model and optimizer state are copied before the forward pass (which itself updates
BatchNorm statistics and seed states) and put back after a skipped step: one with a
NaN/inf loss or gradient, or whose update made a weight or optimizer slot non-finite.
"""

import torch

from .base import LDMTrainer


class TorchTrainer(LDMTrainer):
    """``train_step(data)`` / ``test_step(data)`` on the PyTorch backend."""

    def train_step(self, data):
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
        logs["loss"].backward()
        variables = self.trainable_variables
        grads = [v.value.grad for v in variables]
        ok = None
        with torch.no_grad():
            if guard:
                ok = self.step_is_finite(logs, grads)
                if bool(ok):
                    self.apply_update(grads, variables)
                    # the update itself may be non-finite (a NaN or huge learning rate)
                    ok = self.values_are_finite([v.value for v in frozen])
                if not bool(ok):
                    for v, o in zip(frozen, old):
                        v.assign(o)
            else:
                self.apply_update(grads, variables)
            logs = {k: v.detach() for k, v in logs.items()}
            return self.update_metrics(logs, ok)

    def test_step(self, data):
        with torch.no_grad():
            logs = self.compute_logs(data, training=False)
        return self.update_metrics(logs)
