"""Source models for independent component analysis: generalised Gaussian, Laplace,
logistic, and the log density of the adaptive (two-component generalised Gaussian)
sources of ``LinearICA``."""

import math

from keras import ops

from .._math import lgamma
from .._serialization import register
from .._validation import check_last_dim, check_positive
from .base import Prior, residual


def _positive_scalar_or_list(value, name):
    """A positive float, or a list of positive floats (one per source)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"`{name}` must be a positive number or a non-empty list; "
                             f"received {value!r}.")
        return [check_positive(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return _positive_scalar_or_list(value.tolist(), name)
    return check_positive(value, name)


@register
class GeneralizedGaussian(Prior):
    """Generalised Gaussian source model (independent sources, for ICA).

    .. math::

        \\log p(s) = -\\sum_i \\alpha_i |s_i|^{\\beta_i}
            \\; + \\underbrace{\\sum_i \\log \\frac{\\beta_i \\, \\alpha_i^{1/\\beta_i}}
            {2\\,\\Gamma(1/\\beta_i)}}_{\\text{dropped}},
        \\qquad s = z - \\mu

    ``μ`` is the context (zero when none is given, the usual ICA case). ``β = 2`` is a
    Gaussian, ``β = 1`` a Laplace (sparse, super-Gaussian; see :class:`Laplace`),
    ``β > 2`` sub-Gaussian (the reference image demo uses ``β = 4``). In SciPy's terms
    each source is ``scipy.stats.gennorm(beta, scale=alpha ** (-1 / beta))``.

    Gradients: for ``β ≥ 1`` the gradient is finite everywhere, including ``s = 0``.
    For ``β < 1`` the density has a cusp at 0 and the gradient of ``|s|^β`` diverges
    there (it is NaN or infinite at exactly ``s = 0``).

    Args:
        beta: shape ``β > 0``: a number, or a list with one value per source.
        alpha: rate ``α > 0``: a number, or a list with one value per source.

    Example:
        >>> prior = GeneralizedGaussian(beta=4.0)        # sub-Gaussian sources
        >>> logp = prior.log_prob(unmixing(x))           # shape (batch,)
    """

    def __init__(self, beta=2.0, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = _positive_scalar_or_list(beta, "beta")
        self.alpha = _positive_scalar_or_list(alpha, "alpha")
        sizes = {len(v) for v in (self.beta, self.alpha) if isinstance(v, list)}
        if len(sizes) > 1:
            raise ValueError(
                "`beta` and `alpha` lists must have the same length (one value per "
                f"source); received {len(self.beta)} and {len(self.alpha)} values."
            )
        self._num_sources = sizes.pop() if sizes else None

    def _power(self, s):
        beta = self.beta
        if isinstance(beta, list):
            return ops.power(ops.abs(s), ops.convert_to_tensor(beta, dtype="float32"))
        if beta == 1.0:
            return ops.abs(s)
        if beta == 2.0:
            return ops.square(s)
        if float(beta).is_integer() and int(beta) % 2 == 0:
            return ops.power(s, int(beta))      # smooth even power, no |·| needed
        return ops.power(ops.abs(s), beta)

    def log_prob(self, z, context=None):
        s = residual(z, context)
        if self._num_sources is not None:
            check_last_dim(s, self._num_sources, "z", "sources (one per beta/alpha)")
        alpha = self.alpha
        if isinstance(alpha, list):
            alpha = ops.convert_to_tensor(alpha, dtype="float32")
        return -ops.sum(alpha * self._power(s), axis=-1)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "alpha": self.alpha}


@register
class Laplace(GeneralizedGaussian):
    """Laplace source model: the generalised Gaussian with ``β = 1``.

    .. math::

        \\log p(s) = -\\sum_i \\alpha_i |s_i| \\;
            + \\underbrace{\\sum_i \\log(\\alpha_i / 2)}_{\\text{dropped}}

    i.e. ``scipy.stats.laplace(scale=1/alpha)`` per source, up to that constant. The
    gradient at ``s = 0`` is finite (the backend's subgradient of ``|s|``).

    Args:
        alpha: rate ``α > 0``: a number, or one value per source.

    Example:
        >>> prior = Laplace()                            # sparse ICA sources
        >>> logp = prior.log_prob(unmixing(x))
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(beta=1.0, alpha=alpha, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("beta")
        return config


@register
class Logistic(Prior):
    """Logistic source model (the classic infomax ICA prior), exactly normalised.

    .. math::

        \\log p(s) = \\sum_i \\left[-u_i - 2\\,\\mathrm{softplus}(-u_i) - \\log a\\right],
        \\qquad u = (z - \\mu) / a

    computed in the symmetric form ``-|u| - 2 softplus(-|u|)``, which is exact for
    every ``u`` and smooth at 0. No constant is dropped: per source this is
    ``scipy.stats.logistic.logpdf(z, loc=mu, scale=a)``. ``μ`` is the context (zero
    when none is given).

    Args:
        scale: ``a > 0`` (default 1).

    Example:
        >>> prior = Logistic()
        >>> logp = prior.log_prob(unmixing(x))           # shape (batch,)
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = check_positive(scale, "scale")

    def log_prob(self, z, context=None):
        u = ops.abs(residual(z, context) / self.scale)
        per_source = -u - 2.0 * ops.softplus(-u) - math.log(self.scale)
        return ops.sum(per_source, axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def adaptive_log_density(u, beta, offset, epsilon=1e-8):
    """Per-source log density of ``LinearICA``'s ``"adaptive"`` sources (float32, ``keras.ops``).

    A symmetric two-component generalised Gaussian, exactly normalised:

    .. math::

        p(u) = \\tfrac12\\left[g_β(u - μ) + g_β(u + μ)\\right], \\qquad
        g_β(v) = \\frac{β}{2\\,Γ(1/β)}\\, e^{-|v|^β}

    computed as ``log β − log 2 − log Γ(1/β) + logsumexp(−|u−μ|^β, −|u+μ|^β) − log 2``,
    with ``|v|^β = exp(β log(|v| + ε))`` so that ``∂/∂β`` is finite at ``v = 0``.

    Args:
        u: sources, ``(..., n)``.
        beta: shapes ``β_i > 0``, ``(n,)``.
        offset: half-distances between the two modes ``μ_i ≥ 0``, ``(n,)``.
        epsilon: added to ``|v|`` before the power.

    Returns:
        ``log p(u_i)`` elementwise, the shape of ``u``.

    Example:
        >>> adaptive_log_density(z, ops.ones(3) * 2.0, ops.zeros(3))   # N(0, ½) per source
    """
    u = ops.cast(u, "float32")
    beta = ops.cast(beta, "float32")
    offset = ops.cast(offset, "float32")
    left = -ops.exp(beta * ops.log(ops.abs(u - offset) + epsilon))
    right = -ops.exp(beta * ops.log(ops.abs(u + offset) + epsilon))
    # logsumexp of two terms, written out: max + log(1 + exp(-|a - b|))
    mix = ops.maximum(left, right) + ops.log1p(ops.exp(-ops.abs(left - right)))
    const = ops.log(beta) - 2.0 * math.log(2.0) - lgamma(1.0 / beta)
    return const + mix
