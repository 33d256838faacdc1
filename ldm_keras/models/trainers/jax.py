"""JAX training step: stateless ``value_and_grad``, like Keras' JAX trainer.

The backend-agnostic loss runs inside a ``keras.StatelessScope`` that maps every model
variable to the value carried in the training state; assignments made during the
loss (seed generators, running statistics) or after the optimizer step (EMA targets,
spectral-radius clamping) are read back from the scope into the new state.

Non-finite guard (``nonfinite != "ignore"``): the optimizer update and the post-step
hook run inside ``lax.cond(ok, update, unchanged)``, so a step with a NaN/inf loss or
gradient — or whose update makes a weight or optimizer slot non-finite (checked inside
the update branch) — returns the old weights, optimizer state (iteration counts
included) and EMA targets, and a finite step pays nothing for the check beyond the ``isfinite``
reductions (only the taken branch runs; an element-wise ``where(ok, new, old)`` over
every variable and optimizer slot costs much more, see RESULTS.md).

Data parallelism (``keras.distribution.DataParallel``): Keras jits this step over the
global batch sharded along the batch axis (GSPMD), so every batch reduction in the loss,
the entropy estimators' included, is over the global batch; no gather is needed here.
"""

import jax
import keras

from .base import LDMTrainer


def _stateless(variables, values, fn, read_back):
    """Run ``fn`` with ``variables`` bound to ``values``; return fn() and read_back's values."""
    with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
        out = fn()
    new = []
    for var, old in read_back:
        value = scope.get_current_value(var)
        new.append(old if value is None else value)
    return out, new


def _unchanged(grads, trainable, non_trainable, optimizer_values, old_non_trainable):
    """The skipped step: the training state as it was before the forward pass."""
    return list(trainable), list(old_non_trainable), list(optimizer_values)


class JAXTrainer(LDMTrainer):
    """``train_step(state, data)`` / ``test_step(state, data)`` on the JAX backend."""

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_values, metric_values = state
        tv_vars, nt_vars = self.trainable_variables, self.non_trainable_variables

        def loss_fn(tv, ntv):
            logs, new_ntv = _stateless(
                tv_vars + nt_vars, list(tv) + list(ntv),
                lambda: self.compute_logs(data, training=True),
                list(zip(nt_vars, ntv)),
            )
            # mixed precision: LossScaleOptimizer divides the gradients by its scale
            with keras.StatelessScope(state_mapping=list(zip(self.optimizer.variables,
                                                             optimizer_values))):
                loss = self.optimizer.scale_loss(logs["loss"])
            return loss, (logs, new_ntv)

        old_non_trainable = non_trainable  # before the forward pass (seeds, running stats)
        (_, (logs, non_trainable)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            trainable, non_trainable
        )

        def apply(grads, trainable, non_trainable, optimizer_values, old_non_trainable=None):
            trainable, optimizer_values = self.optimizer.stateless_apply(
                optimizer_values, grads, trainable
            )
            _, new = _stateless(
                tv_vars + nt_vars, list(trainable) + list(non_trainable),
                self.after_optimizer_step,
                list(zip(tv_vars, trainable)) + list(zip(nt_vars, non_trainable)),
            )
            trainable, non_trainable = new[: len(tv_vars)], new[len(tv_vars):]
            return list(trainable), list(non_trainable), list(optimizer_values)

        def apply_checked(grads, trainable, non_trainable, optimizer_values,
                          old_non_trainable):
            # the update itself may be non-finite (a NaN or huge learning rate, an overflow)
            new_state = apply(grads, trainable, non_trainable, optimizer_values)
            finite = self.values_are_finite([v for part in new_state for v in part])
            old_state = _unchanged(grads, trainable, non_trainable, optimizer_values,
                                   old_non_trainable)
            return jax.lax.cond(finite, lambda: new_state, lambda: old_state), finite

        def skipped(grads, trainable, non_trainable, optimizer_values, old_non_trainable):
            return (_unchanged(grads, trainable, non_trainable, optimizer_values,
                               old_non_trainable), jax.numpy.zeros((), "bool"))

        ok = self.step_is_finite(logs, grads) if self.guards_nonfinite else None
        if ok is None:
            new_state = apply(grads, trainable, non_trainable, optimizer_values)
        else:
            new_state, ok = jax.lax.cond(ok, apply_checked, skipped, grads, trainable,
                                         non_trainable, optimizer_values,
                                         list(old_non_trainable))
        trainable, non_trainable, optimizer_values = new_state
        results, metric_values = _stateless(
            self.metrics_variables, metric_values,
            lambda: self.update_metrics(logs, ok),
            list(zip(self.metrics_variables, metric_values)),
        )
        return results, (trainable, non_trainable, optimizer_values, metric_values)

    def test_step(self, state, data):
        trainable, non_trainable, metric_values = state
        tv_vars, nt_vars = self.trainable_variables, self.non_trainable_variables
        logs, non_trainable = _stateless(
            tv_vars + nt_vars, list(trainable) + list(non_trainable),
            lambda: self.compute_logs(data, training=False),
            list(zip(nt_vars, non_trainable)),
        )
        results, metric_values = _stateless(
            self.metrics_variables, metric_values,
            lambda: self.update_metrics(logs),
            list(zip(self.metrics_variables, metric_values)),
        )
        return results, (trainable, non_trainable, metric_values)
