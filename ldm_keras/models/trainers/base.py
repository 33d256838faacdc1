"""The backend-agnostic half of the LDM training step (shared by every backend's trainer).

The per-backend trainers (:mod:`.jax`, :mod:`.tensorflow`, :mod:`.torch`) own the
gradient computation and the order of the steps; everything they need from the model
is a public method of :class:`LDMTrainer` or one of the model's hooks.
"""

import keras
from keras import ops

from ... import backend


class LDMTrainer:
    """Mixin: what every backend's training step shares.

    The model supplies the hooks ``compute_ldm_loss(x, training)``,
    ``after_optimizer_step()`` and ``variable_groups()`` (see
    :class:`~ldm_keras.models.LDMModel`) and the attribute ``nonfinite``; this class
    turns them into the pieces of a training step:

    * :meth:`compute_logs` — build from the first batch if needed, run the loss, cast
      every value to float32;
    * :meth:`step_is_finite` — the loss and every gradient are finite (a boolean scalar);
    * :meth:`guarded_variables` — what a skipped step must leave unchanged;
    * :meth:`apply_update` — the optimizer step, then ``after_optimizer_step``;
    * :meth:`update_metrics` — the epoch means of :attr:`metric_names` and the count
      of skipped steps.

    Example (what a backend's ``train_step`` does, in outline):
        >>> logs = model.compute_logs(data, training=True)
        >>> grads = ...                                 # the backend's autodiff
        >>> ok = model.step_is_finite(logs, grads)
        >>> model.apply_update(grads, model.trainable_variables)   # if ok
        >>> return model.update_metrics(logs, ok)
    """

    #: The logs of ``compute_ldm_loss`` tracked as metrics (mean over the epoch).
    metric_names = ("loss", "alignment", "entropy")

    #: Set to True in the class body that defines ``compute_ldm_loss`` when that loss
    #: passes every per-sample output through :meth:`gather_batch` before any batch
    #: statistic; a model without it (or a subclass that overrides the loss without
    #: setting it again) is refused under more than one replica.
    loss_gathers_batch = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._trackers = [keras.metrics.Mean(name=n) for n in self.metric_names]
        self._skipped_tracker = keras.metrics.Sum(name="skipped_steps")

    @property
    def metrics(self):
        extra = [] if not self.guards_nonfinite else [self._skipped_tracker]
        return list(self._trackers) + extra

    @property
    def gathers_across_replicas(self):
        """Whether the loss estimates its batch statistics on the global batch under data
        parallelism: ``loss_gathers_batch`` of the class that defines
        ``compute_ldm_loss``."""
        owner = next(c for c in type(self).__mro__ if "compute_ldm_loss" in vars(c))
        return bool(vars(owner).get("loss_gathers_batch", False))

    def gather_batch(self, *tensors):
        """Each tensor concatenated over the data-parallel replicas along axis 0, with
        gradient (:func:`ldm_keras.backend.all_gather`): the per-sample outputs of the
        networks (embeddings, masks, time gaps), so that everything after them — the
        latent model, the entropy, the means — is computed on the global batch. ``None``
        and scalars pass through; booleans are gathered as integers. The identity with
        one replica.

        Example:
            >>> z, mask = self.gather_batch(z, mask)
        """
        if backend.num_replicas() == 1:
            return tensors if len(tensors) != 1 else tensors[0]
        out = []
        for t in tensors:
            if t is None or len(t.shape) == 0:
                out.append(t)
            elif keras.backend.standardize_dtype(t.dtype) == "bool":
                out.append(ops.cast(backend.all_gather(ops.cast(t, "int32")), "bool"))
            else:
                out.append(backend.all_gather(t))
        return tuple(out) if len(out) != 1 else out[0]

    def moving_statistics(self):
        """The BatchNorm moving means and variances of every layer of the model (kept
        identical across data-parallel replicas by averaging after each step)."""
        out = []
        for layer in self._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization):
                out += [layer.moving_mean, layer.moving_variance]
        return out

    def check_replicas(self):
        """Refuse a multi-replica step for a model whose loss does not gather its batch."""
        replicas = backend.num_replicas()
        if replicas > 1 and not self.gathers_across_replicas:
            raise NotImplementedError(
                f"{type(self).__name__} does not gather its embeddings across the "
                f"{replicas} replicas of this data-parallel run, so its entropy would be "
                "estimated per replica (on the local batch), not on the global batch. "
                "Pass the per-sample outputs through `self.gather_batch(...)` in "
                "`compute_ldm_loss` and set `loss_gathers_batch = True` in the class, or "
                "train on one device.")

    @property
    def guards_nonfinite(self):
        """Whether steps with a NaN/inf loss or gradient are checked (``nonfinite``)."""
        return self.nonfinite != "ignore"

    def build_from_data(self, data):
        """Build from the first batch (TensorFlow defers building to the first trace)."""
        if not self.built:
            x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
            self.build(keras.tree.map_structure(lambda t: tuple(t.shape), x))

    def compute_logs(self, data, training):
        """``compute_ldm_loss`` on the inputs of a batch, every value cast to float32."""
        self.build_from_data(data)
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        logs = self.compute_ldm_loss(x, training=training)
        if "loss" not in logs:
            raise ValueError(f"{type(self).__name__}.compute_ldm_loss must return a 'loss'.")
        return {k: ops.cast(v, "float32") for k, v in logs.items()}

    def step_is_finite(self, logs, grads):
        """A boolean scalar: the loss and every gradient are finite.

        Under a ``keras.optimizers.LossScaleOptimizer`` (what ``compile`` makes under
        ``mixed_float16``) only the loss is checked: non-finite gradients of the scaled
        loss are that optimizer's business (it skips the update and lowers the scale;
        restoring its state here would keep the scale too high forever)."""
        ok = ops.all(ops.isfinite(logs["loss"]))
        if isinstance(getattr(self, "optimizer", None), keras.optimizers.LossScaleOptimizer):
            return ok
        for g in grads:
            if g is None:
                continue
            if hasattr(g, "dense_shape") and hasattr(g, "indices"):  # tf.IndexedSlices
                g = g.values
            ok = ops.logical_and(ok, ops.all(ops.isfinite(g)))
        return ok

    @staticmethod
    def values_are_finite(values):
        """A boolean scalar: every floating-point tensor of ``values`` is finite (the new
        weights and optimizer state after an update; integer counters and seed states
        are skipped)."""
        ok = ops.ones((), "bool")
        for v in values:
            if v is None or not keras.backend.is_float_dtype(keras.backend.standardize_dtype(
                    v.dtype)):
                continue
            ok = ops.logical_and(ok, ops.all(ops.isfinite(v)))
        return ok

    def guarded_variables(self):
        """Everything a skipped step must leave unchanged: model and optimizer state."""
        return (list(self.trainable_variables) + list(self.non_trainable_variables)
                + list(self.optimizer.variables))

    def apply_update(self, grads, variables):
        """The optimizer step on ``variables``, then the model's ``after_optimizer_step``."""
        self.optimizer.apply(grads, variables)
        self.after_optimizer_step()

    def update_metrics(self, logs, ok=None):
        """Update the metrics; with ``ok`` (a boolean scalar) a skipped step is not averaged."""
        weight = None if ok is None else ops.cast(ok, "float32")
        for tracker in self._trackers:
            if tracker.name in logs:
                value = logs[tracker.name]
                if weight is None:
                    tracker.update_state(value)
                else:
                    tracker.update_state(ops.where(ok, value, ops.zeros_like(value)),
                                         sample_weight=weight)
        if self.guards_nonfinite:
            self._skipped_tracker.update_state(
                ops.zeros((), "float32") if weight is None else 1.0 - weight)
        return {t.name: t.result() for t in self.metrics}
