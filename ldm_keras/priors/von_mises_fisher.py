"""Von Mises–Fisher latent model (the "sphere" model of LDM)."""

from keras import ops

from .._math import l2_normalize
from .._serialization import register
from .._validation import check_positive, check_rank, check_same_shape
from .base import Prior


@register
class VonMisesFisher(Prior):
    """Von Mises–Fisher latent model on the unit sphere (the "sphere" model of LDM).

    .. math::

        \\log p(z \\mid \\mu) = \\kappa \\, \\hat z^\\top \\hat \\mu
            \\; + \\underbrace{\\log C_d(\\kappa)}_{\\text{dropped}},
        \\qquad \\hat x = x / \\max(\\lVert x \\rVert, \\sqrt{\\epsilon})

    with ``C_d(κ) = κ^{d/2-1} / ((2π)^{d/2} I_{d/2-1}(κ))`` the normaliser of the
    vMF density on the sphere ``S^{d-1}``. Both the target ``z`` and the context ``μ``
    (the prediction from the other view, possibly through a linear map) are
    L2-normalised inside the layer, so raw projector outputs can be passed directly.
    The context is required: a vMF model has no natural default mean direction.

    Args:
        precision: concentration ``κ > 0``. Reference value 5 (2.5 for CIFAR-100 with
            the joint entropy).
        epsilon: floor ``ε > 0`` on the squared norm in the normalisation (default
            ``1e-12``), which keeps the value and its gradient finite at ``z = 0``.

    Example:
        >>> prior = VonMisesFisher(precision=5.0)
        >>> logp = prior.log_prob(z2, context=z1)      # = 5 · cos(z2, z1), shape (batch,)
    """

    def __init__(self, precision=5.0, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.precision = check_positive(precision, "precision")
        self.epsilon = check_positive(epsilon, "epsilon")

    def log_prob(self, z, context=None):
        z = self._f32(z)
        check_rank(z, 2)
        if context is None:
            raise ValueError(
                "VonMisesFisher.log_prob needs `context` (the predicted mean direction, "
                "shape (batch, features)); received context=None."
            )
        context = self._f32(context)
        check_rank(context, 2, name="context")
        check_same_shape(z, context, "z", "context")
        cos = ops.sum(
            l2_normalize(z, self.epsilon) * l2_normalize(context, self.epsilon), axis=-1
        )
        return self.precision * cos

    def get_config(self):
        return {**super().get_config(), "precision": self.precision, "epsilon": self.epsilon}
