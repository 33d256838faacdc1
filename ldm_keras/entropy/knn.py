"""Kozachenko–Leonenko k-nearest-neighbour entropy estimator."""

import math

import keras
from keras import ops

from .._math import digamma, digamma_int, lgamma
from .._serialization import register
from .._validation import check_choice, check_positive
from ._common import (
    check_batch,
    f32,
    num_features,
    num_rows,
    row_squared_distances,
    squared_distances,
)
from .base import EntropyEstimator


def _kth_neighbour(d2, k, big):
    """Per row, the index of the ``k``-th smallest entry of ``d2`` (duplicates counted
    separately).

    JAX and TensorFlow (XLA): ``top_k`` over the rows of an ``N × N`` matrix is a sort and
    much slower than the alternative used here (RESULTS.md, "Implementation choices"):
    ``k - 1`` passes that each add ``big`` at one arg-min per row (so exactly one entry
    leaves per pass, as in ``top_k``), then a row arg-min.
    """
    n_rows = ops.shape(d2)[0]
    for _ in range(k - 1):
        d2 = d2 + big * ops.one_hot(ops.argmin(d2, axis=1), n_rows, dtype="float32")
    return ops.argmin(d2, axis=1)


def _kth_neighbour_torch(z, k):
    """PyTorch: the index of each row's ``k``-th nearest other row of ``z``.

    ``torch.cdist`` and ``topk``; the diagonal is excluded by adding a large value at the
    diagonal indices (``index_put``, out of place), so no ``N × N`` identity is built. In
    eager PyTorch it is faster than the backend-agnostic path (RESULTS.md,
    "Implementation choices"); the one backend-specific path outside
    :mod:`ldm_keras.models.trainers`. Only the choice of neighbour is made here (no
    gradient); the radius is recomputed by the shared code.
    """
    import torch

    with torch.no_grad():
        dist = torch.cdist(z, z)
        n = dist.shape[0]
        idx = torch.arange(n, device=dist.device)
        big = 2.0 * dist.max() + 1.0
        dist = dist.index_put((idx, idx), big.expand(n), accumulate=True)
        return torch.topk(dist, k, dim=1, largest=False).indices[:, k - 1]


@register
class KNNEntropy(EntropyEstimator):
    """Kozachenko–Leonenko k-NN estimate of the differential entropy.

    .. math::

        \\hat H = \\frac dN \\sum_i \\log r_k(i) \\;+\\; \\log V_d + \\psi(N) - \\psi(k),
        \\qquad V_d = \\frac{\\pi^{d/2}}{\\Gamma(d/2 + 1)}

    with ``r_k(i)`` the Euclidean distance from ``z_i`` to its ``k``-th nearest neighbour
    in the batch (itself excluded), ``V_d`` the volume of the unit ball in ``R^d`` and
    ``ψ`` the digamma function. This is the form of Kraskov, Stögbauer & Grassberger
    (2004, eq. 20) written with radii instead of diameters; it is asymptotically unbiased.
    With ``include_constant=False`` only ``d · mean_i log r_k(i)`` is returned (the part
    that depends on ``z``).

    Computation: the neighbours are chosen from squared distances of one matrix product
    (``N × N``, never ``N × N × d``) with a large value added to the diagonal to exclude
    self-pairs — on JAX/TensorFlow ``k - 1`` arg-min passes and an arg-min (XLA's
    ``top_k`` is a slow sort), on PyTorch ``torch.cdist`` and ``topk`` — without
    gradient; then each radius ``r_k(i)² = ‖z_i - z_j‖²`` is recomputed from the
    difference with the chosen neighbour ``j`` (``N × d``). The matrix-product form
    rounds (``‖a‖² + ‖a‖² - 2aᵀa`` is not 0, and differs between backends); the
    difference is exact, so duplicated points have radius exactly 0 and ties give the same
    value on every backend. The logarithm is taken as ``½ log(r² + eps)`` so that
    duplicate points give a finite value and gradient.

    Intrinsic dimension (``dimension="intrinsic"``): the factor ``d`` (and the ``d`` of
    ``V_d``) is the latents' intrinsic dimension, estimated from the same batch by the
    two-nearest-neighbour estimator of Facco et al. (2017),

    .. math::

        \\hat d = \\operatorname{clip}\\Big(\\frac{N}{\\sum_i \\log(r_2(i) / r_1(i))},\\;
        1,\\; L\\Big),

    treated as a constant (no gradient flows through it), instead of the latent size
    ``L`` (``dimension="ambient"``, the default). On latents that fill an ``m``-dimensional
    manifold of ``R^L`` the ambient factor weighs the entropy term by ``L / m``; the
    intrinsic factor gives it weight 1.

    Groups: :meth:`grouped` takes ``G`` batches ``(G, N, L)`` and returns the mean of their
    estimates, with one intrinsic dimension pooled over all groups
    (``d̂ = G N / Σ_g Σ_i log(r₂/r₁)``), e.g. the latents of each time step of a batch of
    sequences (:class:`~ldm_keras.models.PredictiveLDM` with
    ``entropy_pooling="per-step"``).

    Outliers: with ``clip_quantile = q`` the radii are clipped from above at the batch's
    ``q``-quantile (linear interpolation, computed on ``log r_k``) — the quantile is
    treated as a constant, so no gradient flows through it — as the reference release
    does with ``q = 0.9``.

    Args:
        k: neighbour order, a positive integer (default 3). The batch needs ``N > k``.
        clip_quantile: ``None`` (default) or ``q ∈ (0, 1]``.
        include_constant: add ``log V_d + ψ(N) - ψ(k)`` (default True).
        eps: floor ``> 0`` on squared radii (default 1e-12).
        dimension: ``"ambient"`` (default: ``d = L``) or ``"intrinsic"`` (``d = d̂``).

    Example:
        >>> est = KNNEntropy(k=3, clip_quantile=0.9)
        >>> h = est(z)                       # nats
        >>> per_step = KNNEntropy(dimension="intrinsic").grouped(ops.swapaxes(z_seq, 0, 1))
    """

    def __init__(self, k=3, clip_quantile=None, include_constant=True, eps=1e-12,
                 dimension="ambient", **kwargs):
        super().__init__(**kwargs)
        if isinstance(k, bool) or not float(k).is_integer() or int(k) < 1:
            raise ValueError(f"`k` must be a positive integer; received {k!r}.")
        self.k = int(k)
        if clip_quantile is not None:
            clip_quantile = check_positive(clip_quantile, "clip_quantile")
            if clip_quantile > 1.0:
                raise ValueError(
                    f"`clip_quantile` must lie in (0, 1] or be None; received {clip_quantile!r}."
                )
        self.clip_quantile = clip_quantile
        self.include_constant = bool(include_constant)
        self.eps = check_positive(eps, "eps")
        self.dimension = check_choice(dimension, "dimension", ("ambient", "intrinsic"))

    @property
    def min_batch_size(self):
        """``k + 1`` (``max(k, 2) + 1`` with the intrinsic dimension): each sample needs
        ``k`` neighbours besides itself (and two for the two-NN estimator)."""
        return self._needed_neighbours + 1

    @property
    def _needed_neighbours(self):
        return max(self.k, 2) if self.dimension == "intrinsic" else self.k

    def _validate(self, z):
        check_batch(
            z, min_batch=self.min_batch_size,
            why=f"k-NN entropy with k={self.k} needs more samples than neighbours",
        )

    def call(self, z):
        self._validate(z)
        if self.dimension == "intrinsic":
            return self._estimate([f32(z)])
        z = f32(z)
        d = num_features(z)
        if keras.backend.backend() == "torch":
            j = _kth_neighbour_torch(z, self.k)
        else:
            d2 = squared_distances(ops.stop_gradient(z), ops.stop_gradient(z))
            big = 2.0 * ops.max(d2) + 1.0
            n_rows = ops.shape(d2)[0]
            d2 = d2 + big * ops.eye(n_rows, dtype="float32")
            j = _kth_neighbour(d2, self.k, big)
        r2 = row_squared_distances(z, j)
        log_r = 0.5 * ops.log(r2 + self.eps)
        if self.clip_quantile is not None:
            cap = ops.stop_gradient(ops.quantile(log_r, self.clip_quantile))
            log_r = ops.minimum(log_r, cap)
        h = d * ops.mean(log_r)
        if self.include_constant:
            log_vd = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)
            h = h + (log_vd - digamma_int(self.k)) + digamma(num_rows(z))
        return h

    # -- groups and the intrinsic dimension ------------------------------------------------
    def _log_radius(self, z, order):
        """``log r_order(i)`` per row of ``z`` (the neighbour chosen as in :meth:`call`)."""
        if keras.backend.backend() == "torch":
            j = _kth_neighbour_torch(z, order)
        else:
            d2 = squared_distances(ops.stop_gradient(z), ops.stop_gradient(z))
            big = 2.0 * ops.max(d2) + 1.0
            d2 = d2 + big * ops.eye(ops.shape(d2)[0], dtype="float32")
            j = _kth_neighbour(d2, order, big)
        return 0.5 * ops.log(row_squared_distances(z, j) + self.eps)

    def _estimate(self, groups):
        """Mean over ``groups`` (a list of ``(N, L)`` batches) of the estimate, with the
        intrinsic dimension (``dimension="intrinsic"``) pooled over the groups."""
        dim = num_features(groups[0])
        mean_log_rk, ratio_sum, rows = [], 0.0, 0.0
        for z in groups:
            log_r = self._log_radius(z, self.k)
            if self.clip_quantile is not None:
                cap = ops.stop_gradient(ops.quantile(log_r, self.clip_quantile))
                log_r = ops.minimum(log_r, cap)
            mean_log_rk.append(ops.mean(log_r))
            if self.dimension == "intrinsic":
                zs = ops.stop_gradient(z)
                ratio_sum = ratio_sum + ops.sum(self._log_radius(zs, 2)
                                                - self._log_radius(zs, 1))
                rows = rows + num_rows(z)
        mean_log_rk = ops.stack(mean_log_rk)
        if self.dimension == "intrinsic":
            d = ops.stop_gradient(ops.clip(rows / ops.maximum(ratio_sum, 1e-6), 1.0,
                                           float(dim)))
        else:
            d = float(dim)
        h = d * ops.mean(mean_log_rk)
        if self.include_constant:
            n = num_rows(groups[0])
            log_vd = 0.5 * d * math.log(math.pi) - (
                lgamma(0.5 * d + 1.0) if self.dimension == "intrinsic"
                else math.lgamma(0.5 * d + 1.0))
            h = h + (log_vd - digamma_int(self.k)) + digamma(n)
        return h

    def intrinsic_dimension(self, z):
        """The two-NN estimate ``d̂`` of ``z`` (``(N, L)``, or ``(G, N, L)`` pooled over
        groups), clipped to ``[1, L]``, without gradient.

        Example:
            >>> KNNEntropy().intrinsic_dimension(z)          # ≈ 2 for a 2-d sheet in R^8
        """
        z = f32(z)
        groups = [z] if len(z.shape) == 2 else [z[g] for g in range(z.shape[0])]
        for g in groups:
            check_batch(g, min_batch=3, why="the two-NN estimator needs two neighbours")
        ratio_sum = 0.0
        for g in groups:
            g = ops.stop_gradient(g)
            ratio_sum = ratio_sum + ops.sum(self._log_radius(g, 2) - self._log_radius(g, 1))
        rows = num_rows(groups[0]) * len(groups)
        return ops.stop_gradient(ops.clip(rows / ops.maximum(ratio_sum, 1e-6), 1.0,
                                          float(num_features(groups[0]))))

    def grouped(self, z):
        """Mean estimate over ``G`` groups ``z`` ``(G, N, L)`` (``G`` static), each a batch
        of its own (neighbours only within a group); with ``dimension="intrinsic"`` one
        ``d̂`` pooled over all groups.

        Example:
            >>> h = KNNEntropy(dimension="intrinsic").grouped(ops.swapaxes(z_seq, 0, 1))
        """
        z = f32(z)
        if len(z.shape) != 3 or z.shape[0] is None:
            raise ValueError("`z` must have shape (groups, batch, features) with a known "
                             f"number of groups; received shape {tuple(z.shape)}.")
        groups = [z[g] for g in range(z.shape[0])]
        for g in groups:
            self._validate(g)
        return self._estimate(groups)

    def get_config(self):
        return {
            **super().get_config(),
            "k": self.k,
            "clip_quantile": self.clip_quantile,
            "include_constant": self.include_constant,
            "eps": self.eps,
            "dimension": self.dimension,
        }
