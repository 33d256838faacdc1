"""Gaussian latent models."""

import math

import keras
from keras import ops

from .._serialization import register
from .._validation import check_last_dim, check_positive
from .base import Prior, residual


@register
class IsotropicGaussian(Prior):
    """Isotropic Gaussian latent model (the "plane" model of LDM).

    .. math::

        \\log p(z \\mid \\mu) = -\\kappa \\cdot \\mathrm{mean}_d (z_d - \\mu_d)^2 + \\text{const}

    where ``μ`` is the context (the prediction from the other view; zero when no
    context is given) and ``κ`` the prediction precision. The mean over dimensions
    (not the sum) makes ``κ`` independent of the latent width. Relative to the exact
    Gaussian log density with variance ``σ² = d / (2κ)`` per dimension the dropped
    constant is ``-d/2 · log(2π σ²)``.

    Args:
        precision: ``κ > 0``. Reference value 5 (12.5 for k-NN evaluation on CIFAR-10).

    Example:
        >>> prior = IsotropicGaussian(precision=5.0)
        >>> logp = prior.log_prob(z2, context=z1)      # shape (batch,)
        >>> alignment = keras.ops.mean(logp)
    """

    def __init__(self, precision=5.0, **kwargs):
        super().__init__(**kwargs)
        self.precision = check_positive(precision, "precision")

    def log_prob(self, z, context=None):
        err = residual(z, context)
        return -self.precision * ops.mean(ops.square(err), axis=-1)

    def get_config(self):
        return {**super().get_config(), "precision": self.precision}


def _require_built(layer, what):
    if not layer.built:
        raise ValueError(
            f"{type(layer).__name__}.{what} is created from the feature size of the first "
            "input: call the layer on a batch (or `build((batch, features))`) first."
        )


def _feature_dim(z_shape, cls_name):
    if z_shape is None or len(z_shape) != 2:
        raise ValueError(
            f"{cls_name}: `z` must be a rank-2 tensor of shape (batch, features); "
            f"received shape {z_shape}."
        )
    if z_shape[-1] is None:
        raise ValueError(
            f"{cls_name} needs a known number of features (last dimension of `z`) to "
            f"create its parameters; received shape {z_shape}."
        )
    return int(z_shape[-1])


@register
class DiagonalGaussian(Prior):
    """Gaussian latent model with a learned diagonal covariance.

    .. math::

        \\log p(z \\mid \\mu) = -\\tfrac12 \\sum_d \\frac{e_d^2}{\\sigma_d^2}
            - \\tfrac12 \\sum_d \\log \\sigma_d^2 \\; \\underbrace{- \\tfrac{d}{2} \\log 2\\pi}_{\\text{dropped}},
        \\qquad e = z - \\mu

    ``μ`` is the context (the prediction from the other view; zero when no context is
    given). The variances are parametrised by their logarithm, one per feature, in a
    float32 variable ``log_variance`` of shape ``(features,)`` created on first call.
    The returned value is the exact log density plus ``d/2 · log 2π``.

    Args:
        learn_variance: whether ``log_variance`` is trainable (default ``True``); with
            ``False`` the variances stay at their initial value.
        init_log_variance: initial ``log σ²`` of every feature (default ``0.0``: unit
            variances).

    Example:
        >>> prior = DiagonalGaussian()
        >>> logp = prior.log_prob(z2, context=predictor(z1))   # shape (batch,)
        >>> prior.variance                                     # (features,)
    """

    def __init__(self, learn_variance=True, init_log_variance=0.0, **kwargs):
        super().__init__(**kwargs)
        self.learn_variance = bool(learn_variance)
        try:
            self.init_log_variance = float(init_log_variance)
        except (TypeError, ValueError):
            raise ValueError(
                f"`init_log_variance` must be a number; received {init_log_variance!r}."
            ) from None
        if not math.isfinite(self.init_log_variance):
            raise ValueError(
                f"`init_log_variance` must be finite; received {init_log_variance!r}."
            )

    def build(self, z_shape, context_shape=None):
        d = _feature_dim(z_shape, type(self).__name__)
        self.log_variance = self.add_weight(
            shape=(d,),
            initializer=keras.initializers.Constant(self.init_log_variance),
            trainable=self.learn_variance,
            dtype="float32",
            name="log_variance",
        )
        self.built = True

    @property
    def variance(self):
        """The per-feature variances ``σ² = exp(log_variance)``."""
        _require_built(self, "variance")
        return ops.exp(ops.convert_to_tensor(self.log_variance))

    def log_prob(self, z, context=None):
        e = residual(z, context)
        log_var = ops.cast(self.log_variance, "float32")
        check_last_dim(e, log_var.shape[0], "z")
        return -0.5 * ops.sum(ops.square(e) * ops.exp(-log_var) + log_var, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "learn_variance": self.learn_variance,
            "init_log_variance": self.init_log_variance,
        }


@register
class FullGaussian(Prior):
    """Gaussian latent model with a learned full covariance.

    .. math::

        \\log p(z \\mid \\mu) = -\\tfrac12 e^\\top S^{-1} e - \\tfrac12 \\log\\det S
            \\; \\underbrace{- \\tfrac{d}{2} \\log 2\\pi}_{\\text{dropped}},
        \\qquad e = z - \\mu, \\quad S = L L^\\top + \\epsilon I

    ``μ`` is the context (zero when none is given). ``L`` is lower triangular with a
    positive diagonal: ``L = tril(W, -1) + diag(exp(diag(W)))`` for an unconstrained
    float32 variable ``W`` (``scale_tril_raw``, shape ``(d, d)``, initialised to zero so
    that ``S = (1 + ε) I``). The quadratic form and the log determinant come from the
    Cholesky factor ``C`` of ``S`` and one triangular solve, ``C x = e``:
    ``eᵀS⁻¹e = ‖x‖²``, ``log det S = 2 Σ log C_ii`` — never a matrix inverse. With
    ``jitter=0`` the factor is ``L`` itself and no Cholesky is needed. Cost:
    ``O(d³)`` for the factorisation plus ``O(N d²)`` for the solve. The returned value
    is the exact log density plus ``d/2 · log 2π``.

    Args:
        learn_covariance: whether ``scale_tril_raw`` is trainable (default ``True``).
        jitter: ``ε ≥ 0`` added to the diagonal of ``S`` before the Cholesky
            factorisation (default ``1e-6``).

    Example:
        >>> prior = FullGaussian()
        >>> logp = prior.log_prob(z2, context=predictor(z1))   # shape (batch,)
        >>> prior.covariance                                   # (features, features)
    """

    def __init__(self, learn_covariance=True, jitter=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.learn_covariance = bool(learn_covariance)
        self.jitter = check_positive(jitter, "jitter", allow_zero=True)

    def build(self, z_shape, context_shape=None):
        d = _feature_dim(z_shape, type(self).__name__)
        self.scale_tril_raw = self.add_weight(
            shape=(d, d),
            initializer="zeros",
            trainable=self.learn_covariance,
            dtype="float32",
            name="scale_tril_raw",
        )
        self.built = True

    @property
    def scale_tril(self):
        """The lower-triangular ``L`` (positive diagonal) with ``S = L Lᵀ + εI``."""
        _require_built(self, "scale_tril")
        w = ops.cast(self.scale_tril_raw, "float32")
        return ops.tril(w, -1) + ops.diag(ops.exp(ops.diagonal(w)))

    @property
    def covariance(self):
        """The covariance ``S = L Lᵀ + εI`` (for inspection; never inverted)."""
        scale = self.scale_tril
        d = scale.shape[0]
        return ops.matmul(scale, ops.transpose(scale)) + self.jitter * ops.eye(d)

    def _cholesky(self):
        if self.jitter == 0.0:
            return self.scale_tril
        return ops.linalg.cholesky(self.covariance)

    def log_prob(self, z, context=None):
        e = residual(z, context)
        check_last_dim(e, self.scale_tril_raw.shape[0], "z")
        chol = self._cholesky()
        x = ops.linalg.solve_triangular(chol, ops.transpose(e), lower=True)  # (d, N)
        maha = ops.sum(ops.square(x), axis=0)
        half_logdet = ops.sum(ops.log(ops.diagonal(chol)))
        return -0.5 * maha - half_logdet

    def get_config(self):
        return {
            **super().get_config(),
            "learn_covariance": self.learn_covariance,
            "jitter": self.jitter,
        }
