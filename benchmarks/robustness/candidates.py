"""Candidate fixes tried by the robustness suites (experiments). The per-dimension variance
and the per-step intrinsic-dimension k-NN entropy are now in the library
(``RecurrentPredictor(variance="diagonal")``, ``KNNEntropy(dimension="intrinsic")``,
``PredictiveLDM(entropy_pooling="per-step")``) and the ``recurrent-ldm`` recipe's
defaults; these classes stay to reproduce the first runs (``ident.py``'s
``proposed-candidate``) and for the other pools. Each is a subclass or wrapper of a library class, so the library itself is
untouched:

* :class:`DiagonalVariancePredictor` — a :class:`~ldm_keras.predictors.RecurrentPredictor`
  whose variance is a learned constant per latent dimension (homoscedastic,
  ``v_l = exp(ρ_l)``, not a function of the past), instead of ``softplus`` of the
  recurrent state (state-dependent) or a fixed 1.
* :class:`PoolingLDM` — a :class:`~ldm_keras.models.PredictiveLDM` whose entropy is
  estimated on a choice of latents: ``"pooled"`` (every step of every window, the
  library's way), ``"per-step"`` (the k-NN entropy of the batch at each time step,
  averaged over steps: neighbours come from *other* windows only), ``"stride-k"``
  (every k-th step of each window, pooled) or ``"per-step-intrinsic"`` (per step, and the
  k-NN estimator's dimension factor is the latents' *intrinsic* dimension, estimated from
  the batch by the two-nearest-neighbour estimator ``d̂ = N / Σ_i log(r₂(i)/r₁(i))``
  (Facco et al. 2017), without gradient, instead of the latent size ``L``:
  ``Ĥ = d̂ · mean_i log r_k(i)``. On latents that fill an m-dimensional manifold of
  ``R^L`` this is the manifold's entropy (weight 1), where ``L · mean log r_k`` weighs it
  by ``L/m``.)
"""

import keras
from keras import ops

from ldm_keras.entropy._common import squared_distances
from ldm_keras.models.predictive import PredictiveLDM
from ldm_keras.predictors import RecurrentPredictor


def _kth_smallest(d2, k, big):
    """Per row, the ``k``-th smallest entry of ``d2`` (duplicates counted separately):
    ``k - 1`` passes that add ``big`` at one arg-min per row, then a row minimum (the
    library's k-NN selection when these candidates were written; the gradient reaches the
    chosen entry of ``d2``)."""
    n_rows = ops.shape(d2)[0]
    for _ in range(k - 1):
        d2 = d2 + big * ops.one_hot(ops.argmin(d2, axis=1), n_rows, dtype="float32")
    return ops.min(d2, axis=1)


class DiagonalVariancePredictor(RecurrentPredictor):
    """RecurrentPredictor with a learned per-dimension constant variance ``exp(ρ_l)``."""

    def __init__(self, *args, init_log_variance=0.0, **kwargs):
        kwargs["variance"] = "constant"
        super().__init__(*args, **kwargs)
        self.init_log_variance = float(init_log_variance)

    def build(self, input_shape):
        super().build(input_shape)
        self.log_variance = self.add_weight(
            shape=(int(input_shape[-1]),), name="log_variance", dtype="float32",
            initializer=keras.initializers.Constant(self.init_log_variance))

    def call(self, inputs, training=None):
        out = super().call(inputs, training=training)
        z = ops.cast(inputs, "float32")
        target = ops.stop_gradient(z) if self.stop_gradient_targets else z
        log_v = ops.cast(self.log_variance, "float32")
        var = ops.exp(log_v) + self.min_variance
        err = target - out["prediction"]
        nll = 0.5 * ops.sum(ops.square(err) / var + ops.log(var), axis=-1)
        return {"prediction": out["prediction"], "variance": ops.ones_like(err) * var,
                "nll": nll}


class PoolingLDM(PredictiveLDM):
    """PredictiveLDM with a choice of which latents the entropy estimator sees."""

    metric_names = ("loss", "alignment", "entropy", "dimension")

    def __init__(self, *args, entropy_pool="pooled", **kwargs):
        super().__init__(*args, **kwargs)
        self.entropy_pool = entropy_pool

    def compute_ldm_loss(self, x, training=False):
        if self.entropy is None or self.entropy_pool == "pooled":
            return super().compute_ldm_loss(x, training)
        z, out = self._forward(x, training)
        alignment = -self.mean_nll(out["nll"])
        z32 = ops.cast(z, "float32")
        dim = ops.cast(z32.shape[-1], "float32")
        if self.entropy_pool == "per-step":
            steps = z32.shape[1]
            ent = ops.mean(ops.stack([self.entropy(z32[:, t]) for t in range(steps)]))
        elif self.entropy_pool == "per-step-intrinsic":
            ent, dim = intrinsic_knn_entropy(z32, self.entropy.k)
        elif self.entropy_pool in ("pooled-exclude", "pooled-exclude-intrinsic"):
            ent, d_hat = excluded_knn_entropy(z32, self.entropy.k)
            if self.entropy_pool == "pooled-exclude-intrinsic":
                ent, dim = ent * d_hat / dim, d_hat
        elif self.entropy_pool.startswith("stride-"):
            k = int(self.entropy_pool.split("-")[1])
            sub = z32[:, ::k]
            ent = self.entropy(ops.reshape(sub, (-1, sub.shape[-1])))
        else:
            raise ValueError(self.entropy_pool)
        loss = -(alignment + self.entropy_weight * ent)
        return {"loss": loss, "alignment": alignment, "entropy": ent, "dimension": dim}


def _neighbour_log_radii(z, k):
    """``(log r₁, log r₂, log r_k)`` per row of ``z`` (N, L), self excluded."""
    d2 = squared_distances(z, z)
    big = 2.0 * ops.stop_gradient(ops.max(d2)) + 1.0
    d2 = d2 + big * ops.eye(ops.shape(d2)[0], dtype="float32")
    out = []
    for j in sorted({1, 2, k}):
        out.append((j, 0.5 * ops.log(_kth_smallest(d2, j, big) + 1e-12)))
    radii = dict(out)
    return radii[1], radii[2], radii[k]


def excluded_knn_entropy(z, k=3):
    """k-NN entropy of ``z`` (B, T, L) pooled over batch × time with neighbours from
    *other* windows only (pairs within a window are excluded), ``L · mean log r_k``, and
    the two-NN intrinsic dimension of the same neighbour graph (stop-gradient).

    Returns ``(L · mean_i log r_k(i), d̂)``.
    """
    b, t, dim = z.shape[0] if z.shape[0] is not None else ops.shape(z)[0], z.shape[1], \
        z.shape[-1]
    flat = ops.reshape(z, (-1, dim))
    d2 = squared_distances(flat, flat)
    big = 2.0 * ops.stop_gradient(ops.max(d2)) + 1.0
    ids = ops.repeat(ops.arange(b), t)
    same = ops.cast(ops.equal(ids[:, None], ids[None, :]), "float32")
    d2 = d2 + big * same
    l1 = 0.5 * ops.log(_kth_smallest(d2, 1, big) + 1e-12)
    l2 = 0.5 * ops.log(_kth_smallest(d2, 2, big) + 1e-12)
    lk = 0.5 * ops.log(_kth_smallest(d2, k, big) + 1e-12)
    n = ops.cast(ops.shape(flat)[0], "float32")
    d_hat = ops.stop_gradient(ops.clip(n / ops.maximum(ops.sum(l2 - l1), 1e-6), 1.0,
                                       float(dim)))
    return float(dim) * ops.mean(lk), d_hat


def intrinsic_knn_entropy(z, k=3):
    """Per-step k-NN entropy of ``z`` (B, T, L) with the two-NN intrinsic dimension.

    Returns ``(Ĥ, d̂)``: ``d̂ = Σ_t B / Σ_t Σ_i log(r₂/r₁)`` over every step (stop-gradient,
    clipped to ``[1, L]``) and ``Ĥ = d̂ · mean_t mean_i log r_k``.
    """
    steps, dim = z.shape[1], z.shape[-1]
    mean_log_rk, ratio_sum, count = [], 0.0, 0
    for t in range(steps):
        l1, l2, lk = _neighbour_log_radii(z[:, t], k)
        mean_log_rk.append(ops.mean(lk))
        ratio_sum = ratio_sum + ops.sum(l2 - l1)
        count += 1
    n = ops.cast(ops.shape(z)[0] * count, "float32")
    d_hat = ops.stop_gradient(ops.clip(n / ops.maximum(ratio_sum, 1e-6), 1.0, float(dim)))
    return d_hat * ops.mean(ops.stack(mean_log_rk)), d_hat
