"""Kernel density entropy estimators: Gaussian ("plane") and von Mises–Fisher ("sphere")."""

from keras import ops

from .._math import l2_normalize
from .._serialization import register
from .._validation import check_choice, check_same_shape
from ._common import (
    check_batch,
    check_centers,
    check_float32_precision,
    f32,
    num_features,
    self_squared_distances,
    squared_distances,
)
from .base import EntropyEstimator

#: Floor on the squared norm when the vMF kernel normalises rows (a norm floor of 1e-12).
_NORM_FLOOR_SQ = 1e-24


@register
class GaussianKDE(EntropyEstimator):
    """Gaussian kernel density estimate of the entropy (LDM's "plane contrastive" term).

    .. math::

        \\hat H = -\\frac1N \\sum_i \\log \\sum_j \\exp\\Big(-\\frac{\\gamma}{d}\\,
                  \\lVert z_i - c_j \\rVert^2\\Big)

    with kernel centres ``c`` (the batch itself by default, self-pairs included) and
    precision ``γ``. Squared distances come from one matrix product,
    ``‖a‖² + ‖b‖² - 2 aᵀb`` clamped at 0, followed by ``logsumexp``: memory is ``N × M``,
    never ``N × M × d``. With the batch as centres the self-distances are set to exactly
    0 (the matrix-product form leaves rounding noise there, which a large ``γ`` or large
    latents would blow up), so the estimate is the same on every backend.

    Dropped constants: with ``M`` centres and normalised Gaussian kernels of variance
    ``σ² = d / (2γ)`` per dimension, the plug-in KDE entropy is
    ``Ĥ + log M + (d/2) · log(π d / γ)``. Neither term depends on ``z``.

    Two views: :meth:`joint` estimates on ``[z1, z2]`` (so ``d`` there is the joint
    width and the kernel is ``exp(-γ · mean over both views' features)``), and
    :meth:`marginal` is ``Ĥ(z1) + Ĥ(z2)``, each with its own batch as centres.

    Args:
        precision: ``γ``, ``0 < γ <= 3.4e38`` (float32's range; reference value 5).

    Example:
        >>> est = GaussianKDE(precision=5.0)
        >>> h = est(z)                    # float32 scalar
        >>> h12 = est.joint(z1, z2)       # H[z1, z2]
    """

    def __init__(self, precision=5.0, **kwargs):
        super().__init__(**kwargs)
        self.precision = check_float32_precision(precision, "precision")

    def _validate(self, z, centers=None):
        check_batch(z)
        if centers is not None:
            check_centers(z, centers)

    def call(self, z, centers=None):
        self._validate(z, centers)
        z = f32(z)
        d = num_features(z)
        d2 = self_squared_distances(z) if centers is None else squared_distances(z, f32(centers))
        logits = -(self.precision / d) * d2
        return -ops.mean(ops.logsumexp(logits, axis=-1))

    def get_config(self):
        return {**super().get_config(), "precision": self.precision}


@register
class VonMisesFisherKDE(EntropyEstimator):
    """von Mises–Fisher kernel density estimate of the entropy ("sphere contrastive").

    .. math::

        \\hat H = -\\frac1N \\sum_i \\log \\sum_j \\exp(\\gamma\\, \\hat z_i^\\top \\hat c_j)

    with ``ẑ = z / ‖z‖`` (inputs are L2-normalised here) and kernel centres ``c`` (the
    batch itself by default). With the other view as centres, ``c = z2`` for ``z = z1``,
    this is the InfoNCE denominator, and

    .. math::

        \\hat H(z_1; c = z_2) + \\gamma\\, \\mathrm{mean}_i\\, \\hat z_{1i}^\\top \\hat z_{2i}
        = -\\mathcal{L}_{\\mathrm{InfoNCE}}

    with temperature ``1/γ`` (reference γ = 5, temperature 0.2).

    Dropped constants: ``log M - log C_d(γ)`` with ``M`` centres and ``C_d(γ)`` the vMF
    normalising constant on the unit sphere in ``R^d``.

    Two views:

    * :meth:`marginal` with ``centers="self"``: ``Ĥ(z1) + Ĥ(z2)``, each view its own
      centres; with ``centers="other"``: ``Ĥ(z1; c = z2) + Ĥ(z2; c = z1)``, SimCLR's
      symmetric InfoNCE denominator.
    * :meth:`joint`: a kernel on the product of the two spheres, each view normalised
      separately, ``exp(γ (ẑ1_iᵀ ẑ1_j + ẑ2_iᵀ ẑ2_j))`` (precision ``γ`` per view, one
      matrix product on the concatenation of the normalised views); the ``centers``
      setting does not apply to it.

    Args:
        precision: ``γ``, ``0 < γ <= 3.4e38`` (float32's range; reference value 5; 2.5
            for CIFAR-100 joint).
        centers: ``"self"`` or ``"other"``: the centres that :meth:`marginal` uses.

    Call arguments:
        z: ``(N, d)`` batch.
        centers: optional ``(M, d)`` kernel centres (default: ``z`` itself).
        num_views: the rows of ``z`` (and ``centers``) are the concatenation of
            ``num_views`` equal-width blocks, each normalised separately (default 1).

    Example:
        >>> est = VonMisesFisherKDE(precision=5.0, centers="other")
        >>> h = est.marginal(z1, z2)      # -(InfoNCE denominators), both directions
    """

    def __init__(self, precision=5.0, centers="self", **kwargs):
        super().__init__(**kwargs)
        self.precision = check_float32_precision(precision, "precision")
        self.centers = check_choice(centers, "centers", ("self", "other"))

    def _validate(self, z, centers=None, num_views=1):
        check_batch(z)
        if centers is not None:
            check_centers(z, centers)
        if int(num_views) < 1 or num_features(z) % int(num_views):
            raise ValueError(
                f"`num_views` must be a positive divisor of the feature dimension "
                f"{num_features(z)}; received num_views={num_views!r}."
            )

    def _normalize(self, z, num_views):
        if num_views == 1:
            return l2_normalize(z, _NORM_FLOOR_SQ)
        blocks = ops.split(z, num_views, axis=-1)
        return ops.concatenate([l2_normalize(b, _NORM_FLOOR_SQ) for b in blocks], axis=-1)

    def call(self, z, centers=None, num_views=1):
        self._validate(z, centers, num_views)
        num_views = int(num_views)
        z = self._normalize(f32(z), num_views)
        c = z if centers is None else self._normalize(f32(centers), num_views)
        logits = self.precision * ops.matmul(z, ops.transpose(c))
        return -ops.mean(ops.logsumexp(logits, axis=-1))

    def joint(self, z1, z2):
        """``H[z1, z2]`` with a product-of-spheres kernel (precision ``γ`` per view)."""
        check_same_shape(z1, z2, "z1", "z2")
        return self(ops.concatenate([f32(z1), f32(z2)], axis=-1), num_views=2)

    def marginal(self, z1, z2):
        """``H[z1] + H[z2]``; with ``centers="other"`` each view uses the other as centres."""
        if self.centers == "other":
            return self(z1, z2) + self(z2, z1)
        return self(z1) + self(z2)

    def get_config(self):
        return {**super().get_config(), "precision": self.precision, "centers": self.centers}
