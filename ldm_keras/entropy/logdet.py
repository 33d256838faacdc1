"""Gaussian (log-determinant) entropy estimators and the VICReg surrogate."""


from keras import ops

from .._math import LOG_2PI_E
from .._serialization import register
from .._validation import check_positive
from ._common import check_batch, covariance, f32, num_features
from .base import EntropyEstimator


def _check_batch2(z):
    check_batch(z, min_batch=2, why="a sample covariance needs at least 2 samples")


def _batch_covariance(z):
    """The checked batch in float32, its number of features and its sample covariance."""
    _check_batch2(z)
    z = f32(z)
    return z, num_features(z), covariance(z)


@register
class GaussianLogDet(EntropyEstimator):
    """Entropy of the Gaussian with the batch's covariance (log-det estimator).

    .. math::

        \\hat H = \\tfrac12 \\log\\det\\big(C + \\varepsilon I\\big)
                  \\;[+\\; \\tfrac d2 \\log(2\\pi e)], \\qquad
        \\varepsilon = \\text{jitter} \\cdot \\operatorname{tr}(C) / d

    with ``C`` the unbiased sample covariance ``Zcᵀ Zc / (N - 1)``. The log-determinant
    comes from a Cholesky factor ``L`` of ``C + εI``: ``log det = 2 Σ log diag L``, in
    float32. The jitter is scaled by the mean variance ``tr(C)/d`` so that the estimate
    is exactly equivariant to rescaling, ``Ĥ(a z) = Ĥ(z) + d log|a|``; it is floored at
    ``jitter · 1e-12`` so that a fully collapsed batch still factorises. With
    ``include_constant=True`` the value is the exact entropy of ``N(μ, C + εI)``; it is
    an upper bound on the entropy of any distribution with that covariance.

    When ``N ≤ d`` the covariance is singular and the estimate is dominated by ``ε``;
    if the factorisation still fails (eager mode raises, compiled code gives NaN),
    increase ``jitter``.

    Args:
        jitter: relative diagonal jitter ``≥ 0`` (default 1e-6).
        include_constant: add ``d/2 · log(2πe)`` (default True).

    Example:
        >>> est = GaussianLogDet()
        >>> h = est(z)                       # ½ log det(2πe Cov(z))
        >>> h_mi = est.marginal(z1, z2)      # H[z1] + H[z2] (VICReg-like, LDM + MI)
    """

    def __init__(self, jitter=1e-6, include_constant=True, **kwargs):
        super().__init__(**kwargs)
        self.jitter = check_positive(jitter, "jitter", allow_zero=True)
        self.include_constant = bool(include_constant)

    def _validate(self, z):
        _check_batch2(z)

    def call(self, z):
        z, d, cov = _batch_covariance(z)
        scale = ops.maximum(ops.trace(cov) / d, 1e-12)
        eye = ops.eye(d, dtype="float32")
        chol = ops.linalg.cholesky(cov + (self.jitter * scale) * eye)
        h = ops.sum(ops.log(ops.diagonal(chol)))
        if self.include_constant:
            h = h + 0.5 * d * LOG_2PI_E
        return h

    def get_config(self):
        return {
            **super().get_config(),
            "jitter": self.jitter,
            "include_constant": self.include_constant,
        }


@register
class LogDetSecondOrder(EntropyEstimator):
    """Second-order (small-correlation) expansion of the Gaussian log-det entropy.

    With ``C`` the unbiased sample covariance, ``v_i = C_ii + eps`` and the correlations
    ``ρ_ij = C_ij / sqrt(v_i v_j)``,

    .. math::

        \\log\\det C = \\sum_i \\log C_{ii} + \\log\\det R
                     \\approx \\sum_i \\log v_i - \\tfrac12 \\sum_{i \\ne j} \\rho_{ij}^2,

    because ``log det(I + E) = tr E - ½ tr E² + O(‖E‖³)`` for ``R = I + E`` with zero
    diagonal ``E``, and ``tr E² = Σ_{i≠j} ρ_ij²``. The estimator returns half of it, on
    the same scale as :class:`GaussianLogDet`:

    .. math::

        \\hat H = \\tfrac12 \\Big[\\sum_i \\log v_i - \\tfrac12 \\sum_{i \\ne j}
                  \\rho_{ij}^2\\Big] \\;[+\\; \\tfrac d2 \\log(2\\pi e)]
                \\approx \\tfrac12 \\log\\det C \\;[+ \\ldots]

    The remainder is ``½ Σ_k (log(1 + λ_k) - λ_k + λ_k²/2)`` over the eigenvalues ``λ_k``
    of ``E``, i.e. third order in the correlations. No factorisation is needed, so the
    estimate is cheap and never fails for ``N ≤ d``.

    Note: the reference release squares ``ρ²`` a second time (it uses ``ρ⁴``), which is
    not the second-order expansion; this implementation uses ``ρ²``.

    Args:
        eps: variance floor ``> 0`` added to ``C_ii`` (default 1e-6), so that a collapsed
            dimension gives a finite value.
        include_constant: add ``d/2 · log(2πe)`` (default True).

    Example:
        >>> est = LogDetSecondOrder()
        >>> h = est(z)                       # ≈ GaussianLogDet()(z) for weak correlations
    """

    def __init__(self, eps=1e-6, include_constant=True, **kwargs):
        super().__init__(**kwargs)
        self.eps = check_positive(eps, "eps")
        self.include_constant = bool(include_constant)

    def _validate(self, z):
        _check_batch2(z)

    def call(self, z):
        z, d, cov = _batch_covariance(z)
        var = ops.diagonal(cov) + self.eps
        inv_std = 1.0 / ops.sqrt(var)
        rho = cov * inv_std[:, None] * inv_std[None, :]
        off = 1.0 - ops.eye(d, dtype="float32")
        h = 0.5 * (ops.sum(ops.log(var)) - 0.5 * ops.sum(ops.square(rho) * off))
        if self.include_constant:
            h = h + 0.5 * d * LOG_2PI_E
        return h

    def get_config(self):
        return {**super().get_config(), "eps": self.eps, "include_constant": self.include_constant}


@register
class VICRegSurrogate(EntropyEstimator):
    """The VICReg variance/covariance regulariser, as an entropy surrogate (larger = more).

    .. math::

        \\hat H = -\\Big[\\mu \\cdot \\frac1d \\sum_i \\mathrm{ReLU}\\big(1 - \\sqrt{C_{ii} +
                  \\epsilon}\\big) + \\nu \\cdot \\frac1d \\sum_{i \\ne j} C_{ij}^2\\Big]

    with ``C`` the unbiased sample covariance (Bardes, Ponce & LeCun, VICReg, ICLR 2022).
    It is not an entropy estimate: it is 0 at its maximum (all standard deviations ≥ 1,
    features uncorrelated) and only shares the log-det estimator's drive towards
    decorrelated, non-collapsed features. Nothing is dropped.

    Defaults are the paper's per-branch weights ``μ = 25`` (``variance_weight``) and
    ``ν = 1`` (``covariance_weight``), meant with a ``precision=25``
    :class:`~ldm_keras.priors.IsotropicGaussian` (VICReg's invariance weight 25 times the
    MSE); with precision ``κ`` scale both weights by ``κ/25`` to keep VICReg's ratios.
    VICReg averages the variance hinge over its two branches and sums the covariance
    terms, so ``VICRegSurrogate(variance_weight=12.5).marginal(z1, z2)`` (which sums both
    terms over the branches) equals minus VICReg's variance + covariance loss exactly.

    Args:
        variance_weight: ``μ ≥ 0`` (default 25).
        covariance_weight: ``ν ≥ 0`` (default 1).
        eps: ``ε > 0`` inside the square root (default 1e-4, as in VICReg).

    Example:
        >>> est = VICRegSurrogate(variance_weight=12.5)
        >>> penalty = -est.marginal(z1, z2)  # VICReg's variance + covariance terms
    """

    def __init__(self, variance_weight=25.0, covariance_weight=1.0, eps=1e-4, **kwargs):
        super().__init__(**kwargs)
        self.variance_weight = check_positive(variance_weight, "variance_weight", allow_zero=True)
        self.covariance_weight = check_positive(
            covariance_weight, "covariance_weight", allow_zero=True
        )
        self.eps = check_positive(eps, "eps")

    def _validate(self, z):
        _check_batch2(z)

    def call(self, z):
        z, d, cov = _batch_covariance(z)
        std = ops.sqrt(ops.diagonal(cov) + self.eps)
        variance = ops.mean(ops.relu(1.0 - std))
        off = 1.0 - ops.eye(d, dtype="float32")
        cov_term = ops.sum(ops.square(cov) * off) / d
        return -(self.variance_weight * variance + self.covariance_weight * cov_term)

    def get_config(self):
        return {
            **super().get_config(),
            "variance_weight": self.variance_weight,
            "covariance_weight": self.covariance_weight,
            "eps": self.eps,
        }
