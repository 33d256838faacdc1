"""Categorical pair model for clustering, and the callback that anneals it."""

import math

import keras
from keras import ops

from .._serialization import register
from .._validation import (
    check_choice,
    check_last_dim,
    check_open_interval,
    check_positive,
    check_rank,
    check_same_shape,
)
from .base import Prior


def _check_num_classes(num_classes):
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2; received {num_classes!r}.")
    return int(num_classes)


def agreement_to_temperature(agreement, num_classes):
    """Temperature ``T`` of the pair model whose agreement probability is ``p``.

    ``T = 1 / log(p (n - 1) / (1 - p))``, defined for ``1/n < p < 1``.

    Example:
        >>> agreement_to_temperature(0.8, 10)      # 1 / log(36) ≈ 0.279
    """
    n = _check_num_classes(num_classes)
    p = check_open_interval(agreement, "agreement", 1.0 / n, 1.0)
    return 1.0 / (math.log(p) + math.log(n - 1) - math.log1p(-p))


def temperature_to_agreement(temperature, num_classes):
    """Agreement probability ``p = e^{1/T} / (e^{1/T} + n - 1)`` of temperature ``T > 0``.

    Example:
        >>> temperature_to_agreement(agreement_to_temperature(0.8, 10), 10)   # 0.8
    """
    n = _check_num_classes(num_classes)
    t = check_positive(temperature, "temperature")
    # p = sigmoid(1/T - log(n - 1)), written to stay finite for tiny T.
    a = 1.0 / t - math.log(n - 1)
    return 1.0 / (1.0 + math.exp(-a)) if a >= 0 else math.exp(a) / (1.0 + math.exp(a))


@register
class CategoricalPair(Prior):
    """Categorical pair model over ``n`` classes, for clustering with a softmax head.

    The joint model of the classes of two views is

    .. math::

        p(c_1, c_2) = \\frac{\\exp(\\delta_{c_1 c_2} / T)}{Z}, \\qquad
        Z = n e^{1/T} + n (n - 1),

    so that the two views agree with probability
    ``p = P(c_1 = c_2) = e^{1/T} / (e^{1/T} + n - 1)``, i.e.
    ``T = 1 / log(p (n-1) / (1-p))``. With soft assignments ``q = softmax(...)`` the
    alignment per sample is the expectation of ``δ_{c1c2}/T`` under ``q1 ⊗ q2``:

    .. math::

        \\log p = \\frac{q_1 \\cdot q_2}{T} \\; \\underbrace{- \\log Z}_{\\text{dropped}}

    with ``z = q2`` and ``context = q1`` probability vectors (softmax outputs; not
    checked). The dropped constant is available as :meth:`log_normalizer`. The model is
    parametrised by the agreement probability ``p``, held in a non-trainable float32
    variable so that it can be annealed during training (:meth:`set_agreement`,
    :class:`AnnealAgreement`); the variable is saved with the weights.

    Args:
        num_classes: ``n ≥ 2``.
        agreement: initial agreement probability ``p ∈ (1/n, 1)`` (reference: 0.8,
            annealed to 0.992).

    Example:
        >>> prior = CategoricalPair(num_classes=10, agreement=0.8)
        >>> logp = prior.log_prob(q2, context=q1)      # shape (batch,)
        >>> prior.temperature                          # ≈ 0.279
        >>> prior.set_agreement(0.99)
    """

    def __init__(self, num_classes, agreement=0.8, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = _check_num_classes(num_classes)
        self.initial_agreement = check_open_interval(
            agreement, "agreement", 1.0 / self.num_classes, 1.0
        )
        self.agreement_variable = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_agreement),
            trainable=False,
            dtype="float32",
            name="agreement",
        )

    @property
    def agreement(self):
        """The current agreement probability ``p`` (a Python float)."""
        return float(ops.convert_to_numpy(self.agreement_variable))

    @property
    def temperature(self):
        """The current temperature ``T = 1 / log(p (n-1) / (1-p))`` (a Python float)."""
        return agreement_to_temperature(self.agreement, self.num_classes)

    def set_agreement(self, agreement):
        """Assign a new agreement probability ``p ∈ (1/n, 1)``."""
        p = check_open_interval(agreement, "agreement", 1.0 / self.num_classes, 1.0)
        self.agreement_variable.assign(p)

    def inverse_temperature(self):
        """``1/T = log p + log(n - 1) - log(1 - p)`` as a float32 tensor."""
        p = ops.cast(self.agreement_variable, "float32")
        return ops.log(p) + math.log(self.num_classes - 1) - ops.log1p(-p)

    def log_normalizer(self):
        """The dropped constant ``log Z = log n + log(e^{1/T} + n - 1)`` (a tensor)."""
        beta = self.inverse_temperature()
        return math.log(self.num_classes) + ops.logaddexp(beta, math.log(self.num_classes - 1))

    def log_prob(self, z, context=None):
        z = self._f32(z)
        check_rank(z, 2, what="(batch, num_classes)")
        if context is None:
            raise ValueError(
                "CategoricalPair.log_prob needs `context` (the class probabilities of the "
                "other view, shape (batch, num_classes)); received context=None."
            )
        context = self._f32(context)
        check_rank(context, 2, name="context", what="(batch, num_classes)")
        check_last_dim(z, self.num_classes, "z", "classes")
        check_same_shape(z, context, "z", "context")
        return self.inverse_temperature() * ops.sum(z * context, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "agreement": self.initial_agreement,
        }


def _logit(p):
    return math.log(p) - math.log1p(-p)


@register
class AnnealAgreement(keras.callbacks.Callback):
    """Anneal the agreement probability of every :class:`CategoricalPair` in the model.

    At the start of epoch ``e`` (0-based) the agreement is set to ``p(t)`` with
    ``t = min(e / (epochs - 1), 1)`` (``t = 1`` when ``epochs = 1``):

    * ``schedule="linear"``: ``p(t) = start + t (end - start)``;
    * ``schedule="log_odds"``: linear in the log-odds,
      ``logit p(t) = logit(start) + t (logit(end) - logit(start))`` — equivalently
      linear in the inverse temperature ``1/T = logit p + log(n - 1)``, and close to a
      geometric decay of ``1 - p`` when ``p`` is near 1.

    The schedule reaches ``end`` at the last of the ``epochs`` epochs and stays there.
    Layers are found with ``model._flatten_layers()`` (nested models and layers
    included); a model without a ``CategoricalPair`` is an error at the start of
    training. Each value must lie in ``(1/n, 1)`` for every layer's ``n``.

    Args:
        start: agreement at the first epoch (reference 0.8).
        end: agreement at epoch ``epochs - 1`` and after (reference 0.992).
        epochs: length of the schedule in epochs (an integer ``≥ 1``).
        schedule: ``"linear"`` (default) or ``"log_odds"``.

    Example:
        >>> model.fit(x, epochs=50, callbacks=[AnnealAgreement(0.8, 0.992, epochs=50)])
    """

    def __init__(self, start=0.8, end=0.992, epochs=1, schedule="linear"):
        super().__init__()
        self.start = check_open_interval(start, "start", 0.0, 1.0)
        self.end = check_open_interval(end, "end", 0.0, 1.0)
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
            raise ValueError(f"`epochs` must be an integer >= 1; received {epochs!r}.")
        self.epochs = int(epochs)
        self.schedule = check_choice(schedule, "schedule", {"linear", "log_odds"})

    def value(self, epoch):
        """The agreement probability at the start of ``epoch`` (0-based)."""
        t = 1.0 if self.epochs == 1 else min(max(epoch, 0) / (self.epochs - 1), 1.0)
        if self.schedule == "linear":
            return self.start + t * (self.end - self.start)
        a = _logit(self.start) + t * (_logit(self.end) - _logit(self.start))
        return 1.0 / (1.0 + math.exp(-a))

    def _layers(self):
        layers = [layer for layer in self.model._flatten_layers()
                  if isinstance(layer, CategoricalPair)]
        if not layers:
            raise ValueError(
                "AnnealAgreement expected the model to contain at least one "
                f"CategoricalPair layer; found none in {self.model.name!r}."
            )
        return layers

    def on_train_begin(self, logs=None):
        self._layers()

    def on_epoch_begin(self, epoch, logs=None):
        p = self.value(epoch)
        for layer in self._layers():
            layer.set_agreement(p)

    def get_config(self):
        return {"start": self.start, "end": self.end, "epochs": self.epochs,
                "schedule": self.schedule}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
