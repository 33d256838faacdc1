"""``LDMModel``: the ``keras.Model`` base of every LDM model.

It overrides ``train_step`` and ``test_step`` so that users train with plain
``model.fit``. A subclass implements one backend-agnostic method,

    compute_ldm_loss(x, training) -> {"loss": ..., "alignment": ..., "entropy": ..., ...}

and optionally ``after_optimizer_step()`` (EMA target updates, constraints) and
``variable_groups()`` (for per-group learning-rate multipliers). The gradient step is
written once per backend in :mod:`ldm_keras.models._steps`.
"""

import keras
from keras import ops

from .._validation import check_positive
from . import _steps
from .optimizers import GroupedOptimizer


class LDMModel(keras.Model):
    """Base class: an LDM objective trained by ``model.fit`` on every backend.

    Subclasses implement :meth:`compute_ldm_loss`. The values it returns under the
    names in :attr:`metric_names` are tracked as metrics (mean over the epoch), so the
    ``fit`` progress bar shows ``loss``, ``alignment`` and ``entropy``.

    Args:
        lr_multipliers: ``{group: factor}`` learning-rate multipliers for the groups
            named by :meth:`variable_groups` (may also be given to ``compile``).

    Per-group learning rates use one optimizer per group (see
    :class:`~ldm_keras.models.optimizers.GroupedOptimizer`), so they are exact for
    adaptive optimizers such as Adam.

    Example:
        >>> class MyLDM(LDMModel):
        ...     def __init__(self, encoder, **kw):
        ...         super().__init__(**kw)
        ...         self.encoder = encoder
        ...         self.prior = ldm.priors.IsotropicGaussian(5.0)
        ...         self.entropy = ldm.entropy.GaussianLogDet()
        ...     def compute_ldm_loss(self, x, training=False):
        ...         z1, z2 = self.encoder(x[0]), self.encoder(x[1])
        ...         a = keras.ops.mean(self.prior.log_prob(z2, context=z1))
        ...         h = self.entropy.joint(z1, z2)
        ...         return {"loss": -(a + h), "alignment": a, "entropy": h}
        >>> model = MyLDM(encoder); model.compile("adam"); model.fit((x1, x2), epochs=5)
    """

    metric_names = ("loss", "alignment", "entropy")

    def __init__(self, lr_multipliers=None, **kwargs):
        super().__init__(**kwargs)
        self.lr_multipliers = {str(k): check_positive(v, f"lr_multipliers[{k!r}]")
                               for k, v in dict(lr_multipliers or {}).items()}
        self._trackers = [keras.metrics.Mean(name=n) for n in self.metric_names]

    # -- what subclasses provide ------------------------------------------------------
    def compute_ldm_loss(self, x, training=False):
        """Return a dict of float32 scalars with at least ``"loss"``."""
        raise NotImplementedError

    def after_optimizer_step(self):
        """Hook run after every optimizer step, inside the compiled step (no gradient)."""

    def variable_groups(self):
        """``{group: [variables]}`` for learning-rate multipliers; others are "default"."""
        return {}

    # -- Keras plumbing -----------------------------------------------------------------
    @property
    def metrics(self):
        return list(self._trackers)

    @property
    def _has_post_step(self):
        return type(self).after_optimizer_step is not LDMModel.after_optimizer_step

    def compile(self, optimizer="adam", lr_multipliers=None, **kwargs):
        """Configure training. ``lr_multipliers`` overrides the constructor's."""
        if kwargs.get("loss") is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own LDM loss; do not pass `loss` to "
                "compile (configure the prior and entropy estimator instead)."
            )
        multipliers = self.lr_multipliers if lr_multipliers is None else dict(lr_multipliers)
        optimizer = keras.optimizers.get(optimizer)
        if isinstance(optimizer, GroupedOptimizer):
            optimizer.resolver = self._variable_group
        elif multipliers:
            optimizer = GroupedOptimizer(optimizer, multipliers)
            optimizer.resolver = self._variable_group
        super().compile(optimizer=optimizer, **kwargs)

    @property
    def min_batch_size(self):
        """The smallest batch this model's entropy estimator accepts."""
        return 2

    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """``keras.Model.fit``, after checking that the batch size suits the estimator."""
        if batch_size is not None and batch_size < self.min_batch_size:
            raise ValueError(
                f"{type(self).__name__} needs batches of at least {self.min_batch_size} "
                f"samples for its entropy estimator; received batch_size={batch_size}."
            )
        return super().fit(x, y, batch_size, *args, **kwargs)

    def _variable_group(self, variable):
        if not hasattr(self, "_group_lookup"):
            self._group_lookup = {
                id(v): name for name, vs in self.variable_groups().items() for v in vs
            }
        return self._group_lookup.get(id(variable), "default")

    def _compute_logs(self, data, training):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        if not self.built:  # TensorFlow defers building to the first trace of the step
            self.build(keras.tree.map_structure(lambda t: tuple(t.shape), x))
        logs = self.compute_ldm_loss(x, training=training)
        if "loss" not in logs:
            raise ValueError(f"{type(self).__name__}.compute_ldm_loss must return a 'loss'.")
        return {k: ops.cast(v, "float32") for k, v in logs.items()}

    def _apply_update(self, grads, variables, logs):
        self.optimizer.apply(grads, variables)
        self.after_optimizer_step()

    def _update_trackers(self, logs):
        for tracker in self._trackers:
            if tracker.name in logs:
                tracker.update_state(logs[tracker.name])
        return {t.name: t.result() for t in self._trackers}

    def train_step(self, *args):
        return _steps.get().train_step(self, *args)

    def test_step(self, *args):
        return _steps.get().test_step(self, *args)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "lr_multipliers": dict(self.lr_multipliers)}
