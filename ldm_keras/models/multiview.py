"""Multi-view LDM: two views of each sample, one latent model, one entropy estimator."""

import keras
from keras import ops

from .._serialization import deserialize, register, serialize
from .._validation import check_momentum
from ..objectives import LDMObjective
from .base import LDMModel
from .ema import EMATargets, call_target, frozen_copy


@register
class MultiViewLDM(EMATargets, LDMModel):
    """Self-supervised training from two views of each sample (docs/spec.md §1, two views).

    ``z_v = projector(encoder(view_v(x)))`` for ``v = 1, 2``; the objective fits the pair
    ``(z1, z2)`` to the latent model: alignment ``log p(t2 | μ(z1))`` (both directions),
    with ``μ`` the optional predictor head and ``t`` the targets, plus the entropy of
    the latents (joint, marginal or pooled). Targets are the other view's online latents,
    their ``stop_gradient`` (SimSiam), or the output of an EMA copy of the encoder and
    projector (BYOL) updated inside ``train_step`` as

    .. math:: θ_{target} ← m\\,θ_{target} + (1-m)\\,θ_{online}.

    ``model(x)`` and ``model.predict(x)`` return the encoder's representation
    ``encoder(x)``; :meth:`embed` returns the projected latents.

    Args:
        encoder: any Keras layer or model (the representation to learn).
        objective: an :class:`~ldm_keras.objectives.LDMObjective`; alternatively give
            ``prior`` (+ ``entropy``, ``entropy_weight``, ``mode``, ``stop_gradient``).
        projector: optional head applied to the encoder output during training.
        predictor: optional head ``μ`` applied to the online latents.
        views: a layer or callable mapping a batch to one random view; called twice per
            step. ``None`` when the data already are pairs ``(x1, x2)``.
        ema_momentum: ``m`` in ``[0, 1)`` for an EMA target network (BYOL); ``None`` for
            none. The target networks are ``keras.models.clone_model`` copies, so the
            encoder and projector must be functional or sequential models, or layers
            that implement ``get_config``.

    Example:
        >>> model = MultiViewLDM(
        ...     encoder=encoder,
        ...     prior=ldm.priors.VonMisesFisher(precision=5.0),
        ...     entropy=ldm.entropy.VonMisesFisherKDE(precision=5.0),
        ...     views=ldm.augment.image_views("digits"))
        >>> model.compile(optimizer="adam")
        >>> model.fit(images, epochs=10, batch_size=256)
        >>> features = model.predict(images)
    """

    def __init__(self, encoder, objective=None, *, prior=None, entropy=None,
                 entropy_weight=1.0, mode="joint", stop_gradient=False,
                 projector=None, predictor=None, views=None, ema_momentum=None,
                 **kwargs):
        super().__init__(**kwargs)
        objective = deserialize(objective)
        if objective is None:
            if prior is None:
                raise ValueError("MultiViewLDM needs an `objective` or a `prior` (+ `entropy`).")
            objective = LDMObjective(prior=deserialize(prior), entropy=deserialize(entropy),
                                     entropy_weight=entropy_weight, mode=mode,
                                     stop_gradient=stop_gradient)
        elif prior is not None or entropy is not None:
            raise ValueError("Give either `objective` or `prior`/`entropy`, not both.")
        if not isinstance(objective, LDMObjective):
            raise ValueError(f"`objective` must be an LDMObjective; received {objective!r}.")
        self.encoder = deserialize(encoder)
        self.projector = deserialize(projector)
        self.predictor = deserialize(predictor)
        self.views = deserialize(views)
        self.objective = objective
        self.ema_momentum = check_momentum(ema_momentum, "ema_momentum")
        self.target_encoder = None
        self.target_projector = None

    # -- building ----------------------------------------------------------------------
    def build(self, input_shape):
        if self.built:
            return
        shape = tuple(input_shape)
        if len(shape) >= 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])  # pairs: build from one view
        expected = getattr(self.encoder, "input_shape", None)
        if isinstance(expected, tuple) and len(expected) > 0 and not isinstance(
                expected[0], tuple):
            got = (None,) + tuple(shape[1:])
            if len(expected) != len(got) or any(
                    e is not None and g is not None and e != g
                    for e, g in zip(expected[1:], got[1:])):
                raise ValueError(
                    f"The data do not match the encoder: the encoder expects inputs of "
                    f"shape {expected}, the batches have shape {tuple(shape)}."
                )
        x = keras.KerasTensor((None,) + tuple(shape[1:]))
        h = self.encoder(x)
        z = self.projector(h) if self.projector is not None else h
        if len(z.shape) != 2:  # e.g. (batch, 4, 1): no axis of the user's is squeezed
            raise ValueError(
                "The encoder" + (" and projector" if self.projector is not None else "")
                + " must return one latent vector per sample, of shape (batch, latents); "
                f"for inputs of shape {tuple(shape)} the output has shape {tuple(z.shape)} "
                f"(rank {len(z.shape)}). End the encoder with a `Flatten()` (or "
                "`Reshape((latents,))`) layer; ldm_keras squeezes no axis itself.")
        if self.predictor is not None:
            self.predictor(z)
        if self.ema_momentum is not None:
            self.target_encoder = frozen_copy(self.encoder, "EMA target network")
            self.target_encoder(x)
            if self.projector is not None:
                self.target_projector = frozen_copy(self.projector, "EMA target network")
                self.target_projector(h)
            self.start_targets()
        zz = keras.KerasTensor(tuple(z.shape), dtype="float32")
        self.objective(zz, zz)
        self.built = True

    def online_weights(self):
        """The encoder's (and projector's) weights, which the EMA targets follow."""
        ws = list(self.encoder.weights)
        return ws + (list(self.projector.weights) if self.target_projector is not None else [])

    def target_weights(self):
        """The EMA target encoder's (and projector's) weights."""
        ws = list(self.target_encoder.weights)
        return ws + (list(self.target_projector.weights) if self.target_projector is not None
                     else [])

    # -- forward ---------------------------------------------------------------------
    def _check_rank(self, x):
        expected = getattr(self.encoder, "input_shape", None)
        if (isinstance(expected, tuple) and expected and not isinstance(expected[0], tuple)
                and len(x.shape) != len(expected)):  # Keras would squeeze or expand an axis
            raise ValueError(
                f"The data do not match the encoder: the encoder expects inputs of shape "
                f"{expected}, received shape {tuple(x.shape)} (rank {len(x.shape)}).")

    def call(self, x, training=False):
        if isinstance(x, (tuple, list)):  # pairs of views: represent the first
            x = x[0]
        self._check_rank(x)
        return self.encoder(x, training=training)

    def embed(self, x, training=False):
        """Projected latents ``projector(encoder(x))`` (the space the objective sees)."""
        self._check_rank(x)
        h = self.encoder(x, training=training)
        return self.projector(h, training=training) if self.projector is not None else h

    def _target_embed(self, x, training):
        h = call_target(self.target_encoder, x, training)
        return call_target(self.target_projector, h, training) if self.target_projector else h

    def make_views(self, x, training=True):
        """The two views of a batch: given pairs, or two calls of the view generator."""
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise ValueError(
                    f"MultiViewLDM takes a batch of samples or a pair (x1, x2) of views; "
                    f"received a tuple of {len(x)} arrays."
                )
            return x[0], x[1]
        if self.views is None:
            raise ValueError(
                "MultiViewLDM got single samples but has no `views` generator: pass "
                "`views=` (e.g. ldm_keras.augment.image_views(...)) or feed pairs (x1, x2)."
            )
        if isinstance(self.views, keras.layers.Layer):
            return self.views(x, training=training), self.views(x, training=training)
        return self.views(x), self.views(x)

    def compute_ldm_loss(self, x, training=False):
        x1, x2 = self.make_views(x, training=True)
        z1 = self.embed(x1, training=training)
        z2 = self.embed(x2, training=training)
        p1 = self.predictor(z1, training=training) if self.predictor is not None else None
        p2 = self.predictor(z2, training=training) if self.predictor is not None else None
        t1 = t2 = None
        if self.target_encoder is not None:
            t1 = ops.stop_gradient(self._target_embed(x1, training))
            t2 = ops.stop_gradient(self._target_embed(x2, training))
        # data parallel: estimate over the global batch (the identity on one replica)
        z1, z2, p1, p2, t1, t2 = self.gather_batch(z1, z2, p1, p2, t1, t2)
        return self.objective(z1, z2, p1, p2, t1, t2)

    #: the loss gathers every replica's embeddings (data parallelism)
    loss_gathers_batch = True

    @property
    def min_batch_size(self):
        est = self.objective.entropy
        return 2 if est is None else max(2, int(est.min_batch_size))

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": serialize(self.encoder),
            "objective": serialize(self.objective),
            "projector": serialize(self.projector),
            "predictor": serialize(self.predictor),
            "views": serialize(self.views) if isinstance(self.views, keras.layers.Layer)
            else None,
            "ema_momentum": self.ema_momentum,
        }
