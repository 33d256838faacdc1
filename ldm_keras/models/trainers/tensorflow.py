"""TensorFlow training step: ``tf.GradientTape``, like Keras' TensorFlow trainer.

Non-finite guard (``nonfinite != "ignore"``): the step snapshots the weights and
optimizer state, applies the update, then assigns back ``where(ok, new, old)``, ``ok``
meaning a finite loss and gradients *and* finite new weights and optimizer state. A
``tf.cond`` around the update would avoid the copy but cannot hold the optimizer's
cross-replica ``merge_call`` under a ``tf.distribute`` strategy.

Under ``tf.distribute`` (e.g. ``MirroredStrategy``) Keras runs this step once per replica
on the replica's slice of the batch. A model whose loss passes its embeddings through
:meth:`~.base.LDMTrainer.gather_batch` (gathered with gradient, so an entropy over the
batch sees the global batch) sets ``loss_gathers_batch = True`` (every built-in model);
the step refuses any other model under more than one replica. The
loss, then the same global value on every replica, is divided by the number of replicas
before the gradient, as the optimizer sums the replicas' gradients; the finiteness flag
is all-reduced so that every replica skips the same steps, and BatchNorm moving
statistics are averaged over the replicas after every step (docs/scaling.md).
"""

import tensorflow as tf

from ... import backend
from .base import LDMTrainer


class TensorFlowTrainer(LDMTrainer):
    """``train_step(data)`` / ``test_step(data)`` on the TensorFlow backend."""

    def check_replicas(self):
        """Refuse a model whose loss does not gather, or one built inside a replica."""
        super().check_replicas()
        replicas = backend.num_replicas()
        if replicas > 1 and not self.built:
            # built inside a replica, EMA targets would not start as copies of the online nets
            raise ValueError(
                f"Under a tf.distribute strategy with {replicas} replicas, build "
                f"{type(self).__name__} inside `strategy.scope()` before `fit`/`evaluate` "
                "(e.g. `model.build(input_shape)`); received an unbuilt model."
            )

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (3.15) builds a model under a strategy from a first batch reduced across
        # the replicas, which fails under MultiWorkerMirroredStrategy (a PerReplica
        # value it cannot convert). An LDM model under a strategy is built before `fit`
        # (check_replicas), so only the optimizer remains to build, in the scope.
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is not None and self.built and getattr(self, "optimizer", None):
            with strategy.scope():
                if not self.optimizer.built:
                    self.optimizer.build(self.trainable_variables)
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data):
        self.check_replicas()
        guard = self.guards_nonfinite
        if guard:  # snapshot before the forward pass (it updates BatchNorm statistics)
            self.build_from_data(data)
            if not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)
            guarded = self.guarded_variables()
            old = [tf.identity(v.value) for v in guarded]
        with tf.GradientTape() as tape:
            logs = self.compute_logs(data, training=True)
            # the optimizer sums the replicas' gradients and the loss is global (the
            # embeddings are gathered), so each replica contributes 1/R of it
            scaled = logs["loss"] / backend.num_replicas()
            # mixed precision: LossScaleOptimizer divides the gradients by its scale
            scaled = self.optimizer.scale_loss(scaled)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        if not guard:
            self.apply_update(grads, variables)
            self._average_moving_statistics()
            return self._step_outputs(self.update_metrics(logs))
        ok = backend.all_true(self.step_is_finite(logs, grads))  # same decision everywhere
        safe = [g if g is None or isinstance(g, tf.IndexedSlices)
                else tf.where(ok, g, tf.zeros_like(g)) for g in grads]
        with tf.control_dependencies(old):
            self.apply_update(safe, variables)
        # the update itself may be non-finite (a NaN or huge learning rate, an overflow)
        ok = tf.logical_and(ok, backend.all_true(self.values_are_finite(
            [v.value for v in guarded])))
        for v, o in zip(guarded, old):
            v.assign(tf.where(ok, v.value, o))
        self._average_moving_statistics()
        return self._step_outputs(self.update_metrics(logs, ok))

    def test_step(self, data):
        self.check_replicas()
        logs = self.compute_logs(data, training=False)
        return self._step_outputs(self.update_metrics(logs))

    def _average_moving_statistics(self):
        # each replica updates BatchNorm moving statistics from its own slice; average
        # them so that every replica (and worker) keeps the same ones
        ctx = tf.distribute.get_replica_context()
        stats = self.moving_statistics()
        if ctx is None or ctx.num_replicas_in_sync <= 1 or not stats:
            return
        means = ctx.all_reduce(tf.distribute.ReduceOp.MEAN,
                               [tf.identity(s.value) for s in stats])
        for s, m in zip(stats, means):
            s.assign(m)

    @staticmethod
    def _step_outputs(logs):
        # Keras (3.15) reduces the step's outputs across the workers of a
        # MultiWorkerMirroredStrategy along axis 0, which a scalar does not have: give
        # each metric one element there (the reduction returns the scalar mean).
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            return {k: tf.reshape(v, (1,)) for k, v in logs.items()}
        return logs
