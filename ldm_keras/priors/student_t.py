"""Multivariate Student-t latent model (heavy-tailed alternative to the Gaussian)."""

from keras import ops

from .._serialization import register
from .._validation import check_positive
from .base import Prior, residual


@register
class StudentT(Prior):
    """Isotropic multivariate Student-t latent model.

    .. math::

        \\log p(z \\mid \\mu) = -\\frac{\\nu + d}{2} \\log\\left(1 + \\frac{\\kappa \\lVert e
            \\rVert^2}{\\nu}\\right) + c, \\qquad e = z - \\mu,

    .. math::

        c = \\log\\Gamma\\left(\\tfrac{\\nu + d}{2}\\right) - \\log\\Gamma\\left(\\tfrac{\\nu}{2}\\right)
            - \\tfrac{d}{2} \\log(\\nu\\pi) + \\tfrac{d}{2} \\log \\kappa \\quad (\\text{dropped})

    which is ``scipy.stats.multivariate_t(loc=mu, shape=I/kappa, df=nu)`` up to the
    constant ``c``. ``μ`` is the context (zero when none is given). Heavier tails than
    a Gaussian make the alignment robust to outlying pairs; as ``ν → ∞`` it tends to
    the Gaussian ``-κ‖e‖²/2``. Not in the reference code.

    Args:
        dof: degrees of freedom ``ν > 0`` (default 5).
        precision: ``κ > 0`` (default 1), the inverse of the shape matrix's scale.

    Example:
        >>> prior = StudentT(dof=5.0, precision=1.0)
        >>> logp = prior.log_prob(z2, context=z1)        # shape (batch,)
    """

    def __init__(self, dof=5.0, precision=1.0, **kwargs):
        super().__init__(**kwargs)
        self.dof = check_positive(dof, "dof")
        self.precision = check_positive(precision, "precision")

    def log_prob(self, z, context=None):
        e = residual(z, context)
        d = e.shape[-1]
        if d is None:
            d = ops.cast(ops.shape(e)[-1], "float32")
        sq = ops.sum(ops.square(e), axis=-1)
        return -0.5 * (self.dof + d) * ops.log1p(self.precision * sq / self.dof)

    def get_config(self):
        return {**super().get_config(), "dof": self.dof, "precision": self.precision}

