"""PyTorch training step: autograd, like Keras' torch trainer.

Non-finite guard (``nonfinite != "ignore"``): eager, so the step reads the finiteness
flag (one device sync) and does not call the optimizer at all when it is false —
weights, optimizer state and EMA targets stay unchanged. The non-trainable variables
(BatchNorm statistics, seed states) are updated by the forward pass itself, so they are
copied before it and put back after a skipped step.
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
            frozen = list(self.non_trainable_variables)
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
                else:
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
