"""Linear independent component analysis as an LDM model (docs/spec.md §1 "Invertible encoders").

An invertible linear encoder ``z = W x̃`` (``x̃`` the centred, optionally whitened data)
has an exact entropy by change of variables, ``H[W x̃] = H[x̃] + log|det W|``, so the LDM
objective is maximum-likelihood ICA:

    F(W) = E[log p(W x̃)] + log|det W| + const.

The orthogonal parametrisation ``W = expm(K - Kᵀ)`` uses the matrix exponential of
:mod:`ldm_keras._math` (public as ``ldm_keras.models.expm``). The source models, the
parametrisations of ``W``, temporal sources and whitening are explained in
docs/models.md.
"""

import math

import keras
import numpy as np
from keras import ops

from .._math import expm, lgamma, log_abs_det
from .._serialization import register
from .._validation import check_choice, check_int, check_last_dim, check_positive
from ..priors.base import Prior
from ..priors.generalized_gaussian import (
    GeneralizedGaussian,
    Laplace,
    Logistic,
    adaptive_log_density,
)
from .base import LDMModel

__all__ = ["LinearICA", "adaptive_log_density", "expm"]

#: The source models by name: name -> a factory of the prior from ``beta``.
SOURCE_MODELS = {
    "logistic": lambda beta: Logistic(),
    "laplace": lambda beta: Laplace(),
    "gaussian": lambda beta: GeneralizedGaussian(beta=2.0, alpha=0.5),
    "generalized_gaussian": lambda beta: GeneralizedGaussian(beta=beta, alpha=1.0),
}
#: Every name ``prior`` accepts: the fixed source models and ``"adaptive"``.
PRIOR_NAMES = ("adaptive", *SOURCE_MODELS)
DEFAULT_PRIOR = "adaptive"


def _build_prior(prior, beta):
    if isinstance(prior, Prior):
        return prior
    if isinstance(prior, dict):
        return keras.saving.deserialize_keras_object(prior)
    check_choice(prior, "prior", PRIOR_NAMES)
    return SOURCE_MODELS[prior](beta)


@register
class LinearICA(LDMModel):
    """Linear ICA trained by LDM (maximum likelihood), with ``model.fit`` on every backend.

    Sources ``z = W x̃`` with ``x̃ = V (x - m)`` (``m`` the data mean, ``V`` an optional PCA
    whitening, both set by :meth:`adapt`). The loss is the negative LDM objective, exact
    (docs/spec.md §1, §3.6):

    .. math::

        \\mathcal L = -\\underbrace{\\tfrac1N \\sum_n \\sum_i \\log p_i(z_{ni})}_{\\text{alignment}}
            \\; - \\; λ \\underbrace{\\log\\lvert\\det W\\rvert}_{\\text{entropy}}

    The source model ``p_i`` is a name or a :class:`~ldm_keras.priors.Prior`, ``W`` is
    free or a rotation ``expm(K - Kᵀ)`` (``orthogonal``), and with ``temporal`` each
    source is an AR(1) process over sequences ``(batch, T, d)``. After training, as in
    scikit-learn: :meth:`transform`, ``components_`` (``W V``), ``mixing_``, ``mean_``.
    docs/models.md explains each option.

    **The default source model**, ``prior="adaptive"``, learns the shape of every source:
    a symmetric two-component generalised Gaussian (see :func:`adaptive_log_density`)

    .. math::

        p_i(u) = \\tfrac12\\left[g_{β_i}(u - μ_i) + g_{β_i}(u + μ_i)\\right], \\qquad
        g_β(v) = \\frac{β}{2\\,Γ(1/β)}\\, e^{-|v|^β},

    exactly normalised, with per-source ``β_i = low + (high - low)·sigmoid(·)`` in
    ``beta_range`` (initialised at ``beta``, default 2) and ``μ_i = softplus(·) ≥ 0``
    (initialised at 0.5), fitted by likelihood together with ``W``. With ``μ_i → 0`` it
    is a generalised Gaussian: super-Gaussian (sparse, heavy-tailed) for ``β_i < 2``,
    Gaussian at 2, sub-Gaussian (flat) for ``β_i > 2``; ``μ_i > 0`` makes it bimodal
    (also sub-Gaussian). So one model covers Laplace-like, uniform-like and bimodal
    sources, which a fixed super-Gaussian model such as ``"logistic"`` cannot separate.

    Args:
        n_components: number of sources (``None``: all ``d``). Fewer than ``d`` needs
            ``whiten=True`` (PCA reduction first).
        prior: ``"adaptive"`` (default; learned ``β_i`` and ``μ_i``), ``"logistic"``
            (infomax, super-Gaussian), ``"laplace"``, ``"gaussian"``,
            ``"generalized_gaussian"`` or a ``Prior`` instance.
        beta: the generalised-Gaussian shape: fixed (``"generalized_gaussian"``), or the
            initial ``β_i`` when learned. ``None`` (default): 2 for ``"adaptive"``, 4
            otherwise.
        learn_beta: learn one ``β_i`` per source. ``None`` (default): ``True`` for
            ``"adaptive"`` (which always learns it: ``False`` is an error), ``False``
            otherwise; ``True`` with ``"generalized_gaussian"`` gives the normalised
            ``log p(u) = -|u|^β + log β - log 2 - log Γ(1/β)`` with learned ``β_i``.
        beta_range: ``(low, high)`` bounds of a learned ``β`` (default ``(1, 8)``;
            ``β ≥ 1`` keeps gradients finite at 0).
        whiten: centre and PCA-whiten the data in :meth:`adapt`.
        orthogonal: ``W = expm(K - Kᵀ)`` (needs ``whiten=True``).
        temporal: AR(1) sources over sequences ``(batch, T, d)``.
        entropy_weight: ``λ`` (default 1).
        epsilon: added to ``|u|`` before ``|u|^β`` when ``β`` is learned, so that
            ``∂|u|^β/∂β = |u|^β log|u|`` stays finite at ``u = 0`` (default 1e-8).

    Example:
        >>> ica = LinearICA()                        # adaptive sources, free W
        >>> ica.compile(keras.optimizers.Adam(0.05))
        >>> ica.fit(x_mixed, epochs=300, batch_size=len(x_mixed), verbose=0)  # adapts first
        >>> s = ica.transform(x_mixed)               # recovered sources (N, n)
        >>> amari_index(ica.components_, mixing)     # ldm_keras.evaluation
    """

    def __init__(self, n_components=None, prior=DEFAULT_PRIOR, beta=None, learn_beta=None,
                 beta_range=(1.0, 8.0), whiten=True, orthogonal=False, temporal=False,
                 entropy_weight=1.0, epsilon=1e-8, lr_multipliers=None, **kwargs):
        super().__init__(lr_multipliers=lr_multipliers, **kwargs)
        self.n_components = None if n_components is None else check_int(
            n_components, "n_components", minimum=1)
        adaptive = isinstance(prior, str) and prior == "adaptive"
        if beta is None:
            beta = 2.0 if adaptive else 4.0
        self.beta = check_positive(beta, "beta")
        if learn_beta is None:
            learn_beta = adaptive
        self.learn_beta = bool(learn_beta)
        low, high = (check_positive(b, "beta_range") for b in tuple(beta_range))
        if not low < self.beta < high:
            raise ValueError(f"`beta_range` must be (low, high) with low < beta < high; "
                             f"received beta_range={tuple(beta_range)} and beta={beta}.")
        self.beta_range = (low, high)
        self.whiten = bool(whiten)
        self.orthogonal = bool(orthogonal)
        self.temporal = bool(temporal)
        self.entropy_weight = check_positive(entropy_weight, "entropy_weight", allow_zero=True)
        self.epsilon = check_positive(epsilon, "epsilon")
        if self.orthogonal and not self.whiten:
            raise ValueError("`orthogonal=True` parametrises a rotation of whitened data; "
                             "it needs `whiten=True` (received whiten=False).")
        self.adaptive = adaptive
        if adaptive and not self.learn_beta:
            raise ValueError("prior='adaptive' always learns its shapes β_i: `learn_beta` must "
                             "be True or None (for a fixed shape use "
                             "prior='generalized_gaussian'); received learn_beta=False.")
        if self.learn_beta:
            if not adaptive and (isinstance(prior, (Prior, dict))
                                 or prior != "generalized_gaussian"):
                raise ValueError("`learn_beta=True` needs prior='adaptive' or "
                                 f"'generalized_gaussian'; received prior={prior!r}.")
            self.prior = None
            self._prior_spec = prior
        else:
            self.prior = _build_prior(prior, self.beta)
            self._prior_spec = prior if isinstance(prior, str) else None

    # -- building ---------------------------------------------------------------------
    @property
    def min_batch_size(self):
        return 1 if self.temporal else 2

    def _check_input(self, shape):
        shape = tuple(shape)
        if self.temporal:
            if len(shape) != 3:
                raise ValueError("LinearICA(temporal=True) takes sequences of shape "
                                 f"(batch, time, features); received shape {shape}.")
            if isinstance(shape[1], int) and shape[1] < 2:
                raise ValueError(f"Sequences need at least 2 time steps; received T={shape[1]}.")
        elif len(shape) != 2:
            raise ValueError("LinearICA takes data of shape (samples, features) "
                             f"(use temporal=True for sequences); received shape {shape}.")
        if shape[-1] is None:
            raise ValueError(f"The feature dimension must be known; received shape {shape}.")
        if getattr(self, "input_dim", None) is not None and shape[-1] != self.input_dim:
            raise ValueError(f"LinearICA was built for {self.input_dim} features; "
                             f"received shape {shape}.")
        return shape

    def build(self, input_shape):
        if self.built:
            return
        shape = self._check_input(input_shape)
        d = int(shape[-1])
        n = d if self.n_components is None else self.n_components
        if n > d:
            raise ValueError(f"`n_components` must be at most the number of features ({d}); "
                             f"received {n}.")
        if n < d and not self.whiten:
            raise ValueError("`n_components` < features needs whiten=True (PCA reduction); "
                             f"received n_components={n}, features={d}.")
        self.input_dim, self.num_sources = d, n
        self.mean = self.add_weight(shape=(d,), initializer="zeros", trainable=False,
                                    name="mean")
        self.whitening = self.add_weight(
            shape=(n, d), trainable=False, name="whitening",
            initializer=lambda shape, dtype=None: ops.eye(shape[0], shape[1], dtype=dtype))
        self.adapted = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                       name="adapted")
        if self.orthogonal:
            self.generator = self.add_weight(shape=(n, n), initializer="zeros",
                                             name="generator")
        else:
            self.unmixing = self.add_weight(
                shape=(n, n), name="unmixing",
                initializer=lambda shape, dtype=None: ops.eye(shape[0], dtype=dtype))
        if self.orthogonal or self.temporal:
            self.log_scale = self.add_weight(shape=(n,), initializer="zeros", name="log_scale")
        if self.temporal:
            self.ar_logit = self.add_weight(shape=(n,), initializer="zeros", name="ar_logit")
        if self.learn_beta:
            low, high = self.beta_range
            init = math.log((self.beta - low) / (high - self.beta))
            self.beta_logit = self.add_weight(shape=(n,), name="beta_logit",
                                              initializer=keras.initializers.Constant(init))
        if self.adaptive:  # μ_i = softplus(offset_raw_i), initialised at OFFSET_INIT
            init = math.log(math.expm1(self.OFFSET_INIT))
            self.offset_raw = self.add_weight(shape=(n,), name="offset_raw",
                                              initializer=keras.initializers.Constant(init))
        if self.prior is not None and not self.prior.built:
            self.prior.build((None, n))
        self.built = True

    # -- data-dependent preprocessing ---------------------------------------------------
    def adapt(self, x):
        """Set the mean ``m`` and (``whiten=True``) the PCA whitening ``V`` from data.

        ``x``: array ``(N, d)`` (or ``(batch, T, d)`` with ``temporal=True``; pooled over
        time). With ``C = E Λ Eᵀ`` the sample covariance (float64, eigenvalues
        descending), ``V = Λ_n^{-1/2} E_nᵀ`` for the top ``n_components``, so ``V (x - m)``
        has identity covariance. Returns ``self``.

        Example:
            >>> ica = LinearICA().adapt(x)
        """
        x = np.asarray(x, dtype="float64")
        self._check_input(x.shape)
        if not self.built:
            self.build(x.shape)
        flat = x.reshape(-1, x.shape[-1])
        if not np.all(np.isfinite(flat)):
            raise ValueError("`x` must contain only finite values.")
        if flat.shape[0] < 2:
            raise ValueError(f"adapt needs at least 2 samples; received {flat.shape[0]}.")
        mean = flat.mean(axis=0)
        self.mean.assign(mean.astype("float32"))
        if self.whiten:
            cov = np.cov(flat, rowvar=False).reshape(self.input_dim, self.input_dim)
            evals, evecs = np.linalg.eigh(cov)
            order = np.argsort(evals)[::-1][: self.num_sources]
            evals, evecs = evals[order], evecs[:, order]
            if evals[-1] <= 1e-12 * max(evals[0], 1e-300):
                raise ValueError(
                    f"The data covariance is singular in the top {self.num_sources} "
                    f"directions (eigenvalues {evals.tolist()}): lower n_components.")
            # The sign convention (largest entry of each eigenvector positive) makes V
            # deterministic across LAPACK builds.
            signs = np.sign(evecs[np.argmax(np.abs(evecs), axis=0), np.arange(evecs.shape[1])])
            evecs = evecs * signs
            self.whitening.assign((evecs / np.sqrt(evals)).T.astype("float32"))
        self.adapted.assign(1.0)
        return self

    @property
    def is_adapted(self):
        """Whether :meth:`adapt` has set the mean (and whitening)."""
        return self.built and float(ops.convert_to_numpy(self.adapted)) > 0.5

    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """``keras.Model.fit``; adapts first (mean, whitening) when not yet adapted."""
        if not self.is_adapted:
            if isinstance(x, np.ndarray) or (hasattr(x, "shape") and hasattr(x, "dtype")):
                self.adapt(ops.convert_to_numpy(x))
            else:
                raise ValueError(
                    "LinearICA needs the data mean (and whitening) before training: call "
                    "`model.adapt(x)` on an array of the data first (fit adapts by itself "
                    f"only when given an array; received {type(x).__name__}).")
        return super().fit(x, y, batch_size, *args, **kwargs)

    # -- forward ------------------------------------------------------------------------
    def unmixing_matrix(self):
        """``W`` (``n × n``, acting on whitened/centred data): free, or ``expm(K - Kᵀ)``."""
        if self.orthogonal:
            k = ops.cast(self.generator, "float32")
            return expm(k - ops.transpose(k))
        return ops.cast(self.unmixing, "float32")

    def entropy_term(self):
        """``log|det W|`` (0 exactly for the orthogonal parametrisation)."""
        if self.orthogonal:
            return ops.zeros((), "float32")
        return log_abs_det(self.unmixing_matrix())

    def _sources(self, x):
        x = ops.cast(x, "float32")
        check_last_dim(x, self.input_dim, "x", "features")
        full = ops.matmul(self.unmixing_matrix(), ops.cast(self.whitening, "float32"))
        return ops.matmul(x - ops.cast(self.mean, "float32"), ops.transpose(full))

    def call(self, x, training=False):
        self._check_input(tuple(x.shape))
        return self._sources(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_sources,)

    def betas(self):
        """The per-source shapes ``β_i`` (learned: ``"adaptive"`` or ``learn_beta``), or
        ``None`` when ``β`` is fixed."""
        if not self.learn_beta:
            return None
        low, high = self.beta_range
        return low + (high - low) * ops.sigmoid(ops.cast(self.beta_logit, "float32"))

    def offsets(self):
        """The per-source mode offsets ``μ_i ≥ 0`` (``prior="adaptive"``), else ``None``."""
        if not self.adaptive:
            return None
        return ops.softplus(ops.cast(self.offset_raw, "float32"))

    def _log_density(self, u):
        """``Σ_i log p(u_i)`` of standardised sources/innovations, shape ``u.shape[:-1]``."""
        if self.adaptive:
            return ops.sum(adaptive_log_density(u, self.betas(), self.offsets(),
                                                self.epsilon), axis=-1)
        if not self.learn_beta:
            if len(u.shape) == 2:
                return self.prior.log_prob(u)
            logp = self.prior.log_prob(ops.reshape(u, (-1, u.shape[-1])))
            return ops.reshape(logp, ops.shape(u)[:-1])
        beta = self.betas()
        power = ops.exp(beta * ops.log(ops.abs(u) + self.epsilon))
        const = ops.log(beta) - math.log(2.0) - lgamma(1.0 / beta)
        return ops.sum(const - power, axis=-1)

    def log_likelihood(self, x):
        """Per-sample ``log p(W x̃) + log|det W|`` (per step ``log p(z_t|z_{t-1}) +
        log|det W|`` when temporal), up to the source model's dropped constant and the
        whitening's constant ``log|det V|`` (float32)."""
        self._check_input(tuple(x.shape))
        return self._alignment_terms(self._sources(x)) + self.entropy_term()

    def _alignment_terms(self, z):
        if self.temporal:
            a = ops.tanh(ops.cast(self.ar_logit, "float32"))
            u = z[:, 1:] - a * z[:, :-1]
        else:
            u = z
        if self.orthogonal or self.temporal:
            log_scale = ops.cast(self.log_scale, "float32")
            return self._log_density(u / ops.exp(log_scale)) - ops.sum(log_scale)
        return self._log_density(u)

    def compute_ldm_loss(self, x, training=False):
        self._check_input(tuple(x.shape))
        sources = self.gather_batch(self._sources(x))  # data parallel: the global batch
        alignment = ops.mean(self._alignment_terms(sources))
        entropy = self.entropy_term()
        loss = -(alignment + self.entropy_weight * entropy)
        return {"loss": loss, "alignment": alignment, "entropy": entropy}

    #: the initial mode offset ``μ_i`` of ``prior="adaptive"``
    OFFSET_INIT = 0.5

    #: the loss gathers every replica's sources (data parallelism)
    loss_gathers_batch = True

    # -- scikit-learn style read-outs ---------------------------------------------------
    def transform(self, x, batch_size=None):
        """Recovered sources ``(x - mean_) @ components_.T`` as a NumPy array.

        Example:
            >>> s = ica.transform(x)      # (N, n_components)
        """
        x = np.asarray(x, dtype="float32")
        self._check_input(x.shape)
        if not self.built:
            self.build(x.shape)
        if batch_size is None:
            return ops.convert_to_numpy(self(x))
        return self.predict(x, batch_size=batch_size, verbose=0)

    @property
    def components_(self):
        """Unmixing matrix in data space ``W V`` (``n_components × d``), NumPy."""
        self._require_built()
        return ops.convert_to_numpy(ops.matmul(self.unmixing_matrix(),
                                               ops.cast(self.whitening, "float32")))

    @property
    def mixing_(self):
        """Pseudo-inverse of :attr:`components_` (``d × n_components``), NumPy (SVD)."""
        return np.linalg.pinv(self.components_.astype("float64"))

    @property
    def mean_(self):
        """The data mean subtracted before unmixing (``d``), NumPy."""
        self._require_built()
        return ops.convert_to_numpy(self.mean)

    @property
    def ar_coefficients_(self):
        """Learned AR(1) coefficients ``a_i`` (``temporal=True``), NumPy."""
        self._require_built()
        if not self.temporal:
            return None
        return ops.convert_to_numpy(ops.tanh(self.ar_logit))

    def _require_built(self):
        if not self.built:
            raise ValueError("LinearICA is not built yet: call adapt(x) or fit(x) first.")

    def get_config(self):
        prior = self._prior_spec
        if prior is None:
            prior = keras.saving.serialize_keras_object(self.prior)
        return {
            **super().get_config(),
            "n_components": self.n_components,
            "prior": prior,
            "beta": self.beta,
            "learn_beta": self.learn_beta,
            "beta_range": list(self.beta_range),
            "whiten": self.whiten,
            "orthogonal": self.orthogonal,
            "temporal": self.temporal,
            "entropy_weight": self.entropy_weight,
            "epsilon": self.epsilon,
        }
