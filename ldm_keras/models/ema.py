"""EMA target networks, written once for every model that has them (BYOL, JEPA).

A target network ``f̄`` is a frozen copy of an online network ``f`` (same architecture,
its own weights), started as an exact copy and moved towards the online weights after
every optimizer step,

.. math:: θ̄ ← m\\,θ̄ + (1 - m)\\,θ,

with momentum ``m ∈ [0, 1)``. Its outputs serve as stop-gradient targets.

:class:`EMATargets` is the mixin a model derives from (before
:class:`~ldm_keras.models.LDMModel`); the model says which weights are targets and
which are online (:meth:`EMATargets.target_weights`, :meth:`EMATargets.online_weights`)
and calls :meth:`EMATargets.start_targets` once its targets are built.

Example:
    >>> class MyModel(EMATargets, LDMModel):
    ...     def build(self, shape):
    ...         self.target_encoder = frozen_copy(self.encoder)
    ...         self.target_encoder(keras.KerasTensor(shape))
    ...         self.start_targets()
    ...     def target_weights(self):
    ...         return self.target_encoder.weights
    ...     def online_weights(self):
    ...         return self.encoder.weights
"""

import keras
from keras import ops

from .. import backend


def frozen_copy(layer, role="EMA target network"):
    """A non-trainable copy of ``layer`` with the same architecture (fresh weights).

    ``clone_model`` for plain functional/sequential models, otherwise ``from_config``.
    Raises ``ValueError`` naming ``role`` if the layer cannot be cloned.

    Example:
        >>> target = frozen_copy(encoder, "EMA target encoder")
    """
    try:
        if isinstance(layer, keras.Model) and layer.__class__ in (keras.Model, keras.Sequential):
            clone = keras.models.clone_model(layer)
        else:
            clone = layer.__class__.from_config(layer.get_config())
    except Exception as err:  # noqa: BLE001 - report any cloning failure clearly
        raise ValueError(
            f"Cannot clone {layer!r} for the {role} ({err}). Use a "
            "functional/sequential model or a layer with a complete get_config()."
        ) from err
    clone.trainable = False
    return clone


def call_target(network, x, training=None):
    """``network(x)`` for a target network, run as its online network is run.

    In training the target's ``BatchNormalization`` layers normalise by the batch's own
    statistics, as the online network's do (BYOL's target network is applied in training
    mode): a frozen Keras ``BatchNormalization`` would otherwise use its moving averages,
    which lag the online network's and, in the target, are moving averages of those
    again. On the bundled digits that lag alone held the ``byol`` recipe's probe_10 at
    0.81 (seed 0) against 0.95 with batch statistics (benchmarks/robustness/results/recipes).
    Outside training the moving averages are used, as for any Keras layer; the target's
    averages change only by the EMA.

    Example:
        >>> t = ops.stop_gradient(call_target(self.target_encoder, x, training))
    """
    if not training:
        return network(x, training=training)
    norms = [layer for layer in _sublayers(network)
             if isinstance(layer, keras.layers.BatchNormalization) and not layer.trainable]
    # in training mode the layer also moves its averages; the target's move by the EMA
    # alone (EMATargets.after_optimizer_step), so they are put back after the call
    saved = [(v, ops.copy(v.value)) for layer in norms
             for v in (layer.moving_mean, layer.moving_variance)]
    for layer in norms:
        # the flag Keras' BatchNormalization reads to choose batch statistics; set on the
        # layer alone, so its variables stay out of the optimizer
        layer._trainable = True
    try:
        out = network(x, training=training)
    finally:
        for layer in norms:
            layer._trainable = False
    for v, value in saved:
        v.assign(value)
    return out


def _sublayers(layer):
    """``layer`` and every layer nested in it."""
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=True, recursive=True))
    return [layer]


def copy_weights(targets, sources):
    """Set every target variable to an exact copy of its source, outside any trace."""
    def copy():
        for t, o in zip(targets, sources):
            t.assign(ops.convert_to_numpy(o.value))  # a copy, not a shared buffer

    backend.outside_trace(copy)


def ema_update(targets, sources, momentum):
    """``t ← m t + (1 - m) s`` for every pair of target and source variables."""
    m = momentum
    for t, o in zip(targets, sources):
        t.assign(m * t.value + (1.0 - m) * ops.cast(o.value, t.dtype))


class EMATargets:
    """Mixin: EMA target weights updated in ``after_optimizer_step``.

    The model sets ``ema_momentum`` (``None``: no targets) and implements
    :meth:`target_weights` and :meth:`online_weights` (paired in order).
    """

    ema_momentum = None

    def target_weights(self):
        """The target network's variables (paired in order with :meth:`online_weights`)."""
        raise NotImplementedError

    def online_weights(self):
        """The online variables the targets follow."""
        raise NotImplementedError

    def start_targets(self):
        """Make the targets exact copies of the online weights (at build time)."""
        copy_weights(self.target_weights(), self.online_weights())

    def after_optimizer_step(self):
        if self.ema_momentum is None:
            return
        ema_update(self.target_weights(), self.online_weights(), self.ema_momentum)
