"""The recurrent-ldm recipe's components: a per-dimension learned variance, the two-NN
intrinsic dimension in the k-NN entropy, and the per-step entropy of PredictiveLDM.

References are written independently in NumPy/SciPy (``scipy.spatial.cKDTree`` for the
neighbours, ``scipy.special`` for ψ and log Γ), on every backend.
"""

import keras
import numpy as np
import pytest
from helpers import gradients, to_numpy
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

import ldm_keras as ldm
from ldm_keras.entropy import KNNEntropy
from ldm_keras.models import PredictiveLDM
from ldm_keras.models.encoders import mlp
from ldm_keras.predictors import RecurrentPredictor

#: float32 estimates against float64 references.
RTOL, ATOL = 1e-4, 1e-4


def _two_nn_sums(z):
    """``(N, Σ_i log(r₂/r₁))`` of one batch (self excluded)."""
    r = cKDTree(z).query(z, 3)[0]
    return len(z), float(np.sum(np.log(r[:, 2] / r[:, 1])))


def _ref_intrinsic(groups, k=3):
    """Mean over groups of ``d̂ · mean log r_k + log V_d̂ + ψ(N) - ψ(k)``, with
    ``d̂ = clip(Σ N / Σ log(r₂/r₁), 1, L)`` pooled over the groups; and ``d̂``."""
    groups = [np.asarray(g, "float64") for g in groups]
    n_tot, s_tot = map(sum, zip(*[_two_nn_sums(g) for g in groups]))
    d = float(np.clip(n_tot / s_tot, 1.0, groups[0].shape[1]))
    hs = []
    for g in groups:
        r = cKDTree(g).query(g, k + 1)[0][:, k]
        log_vd = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)
        hs.append(d * np.mean(np.log(r)) + log_vd + digamma(len(g)) - digamma(k))
    return float(np.mean(hs)), d


def _ref_ambient(z, k=3):
    z = np.asarray(z, "float64")
    n, d = z.shape
    r = cKDTree(z).query(z, k + 1)[0][:, k]
    return d * np.mean(np.log(r)) + 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1) + \
        digamma(n) - digamma(k)


def _sheet(rng, n, dim=6, m=2):
    """``n`` points on an ``m``-dimensional linear sheet of ``R^dim`` (intrinsic dim m)."""
    basis = np.linalg.qr(rng.normal(size=(dim, m)))[0]
    return (rng.uniform(-1, 1, size=(n, m)) @ basis.T).astype("float32")


def test_two_nn_intrinsic_dimension_and_entropy_match_scipy(rng):
    z = _sheet(rng, 120)
    est = KNNEntropy(k=3, dimension="intrinsic")
    h_ref, d_ref = _ref_intrinsic([z])
    d = float(to_numpy(est.intrinsic_dimension(z)))
    np.testing.assert_allclose(d, d_ref, rtol=RTOL)
    assert 1.5 < d < 2.5                 # a 2-d sheet in R^6 (120 points: edge bias)
    np.testing.assert_allclose(float(to_numpy(est(z))), h_ref, rtol=RTOL, atol=ATOL)
    # without the constant: d̂ · mean log r_k only
    bare = KNNEntropy(k=3, dimension="intrinsic", include_constant=False)
    r3 = cKDTree(z.astype("float64")).query(z.astype("float64"), 4)[0][:, 3]
    np.testing.assert_allclose(float(to_numpy(bare(z))), d_ref * np.mean(np.log(r3)),
                               rtol=RTOL, atol=ATOL)
    # the ambient default is unchanged: L · mean log r_k + constants
    np.testing.assert_allclose(float(to_numpy(KNNEntropy(k=3)(z))), _ref_ambient(z),
                               rtol=RTOL, atol=ATOL)
    # points on a line: d̂ ≈ 1 (the clip's lower end)
    line = np.outer(rng.uniform(size=120), np.ones(6)).astype("float32")
    assert float(to_numpy(est.intrinsic_dimension(line))) == pytest.approx(1.0, abs=0.1)


def test_grouped_pools_the_intrinsic_dimension_over_groups(rng):
    z = np.stack([_sheet(rng, 40) for _ in range(5)])        # (G, N, L)
    h_ref, d_ref = _ref_intrinsic(list(z))
    est = KNNEntropy(k=3, dimension="intrinsic")
    np.testing.assert_allclose(float(to_numpy(est.grouped(z))), h_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(float(to_numpy(est.intrinsic_dimension(z))), d_ref,
                               rtol=RTOL)
    # one d̂ for all groups differs from the mean of the groups' own estimates
    own = np.mean([_ref_intrinsic([g])[0] for g in z])
    assert abs(own - h_ref) > 1e-3
    # ambient: the mean of the per-group estimates
    np.testing.assert_allclose(float(to_numpy(KNNEntropy(k=3).grouped(z))),
                               np.mean([_ref_ambient(g) for g in z]), rtol=RTOL, atol=ATOL)


def test_intrinsic_dimension_carries_no_gradient(rng):
    """∇ Ĥ_intrinsic = (d̂ / L) ∇ Ĥ_ambient: d̂ is a constant of the gradient."""
    z = _sheet(rng, 120) + 0.01 * rng.normal(size=(120, 6)).astype("float32")
    d = float(to_numpy(KNNEntropy().intrinsic_dimension(z)))
    (g_intr,) = gradients(lambda x: KNNEntropy(dimension="intrinsic")(x), [z])
    (g_amb,) = gradients(lambda x: KNNEntropy()(x), [z])
    np.testing.assert_allclose(g_intr, d / 6.0 * g_amb, rtol=1e-3, atol=1e-5)


def test_knn_dimension_argument_and_round_trip():
    with pytest.raises(ValueError, match="dimension"):
        KNNEntropy(dimension="manifold")
    est = KNNEntropy(k=4, dimension="intrinsic")
    again = KNNEntropy.from_config(est.get_config())
    assert (again.k, again.dimension) == (4, "intrinsic")
    assert KNNEntropy(k=1, dimension="intrinsic").min_batch_size == 3
    with pytest.raises(ValueError, match="groups"):
        est.grouped(np.zeros((10, 3), "float32"))


def test_diagonal_variance_nll_matches_numpy(rng):
    keras.utils.set_random_seed(1)
    z = rng.normal(size=(12, 4, 3)).astype("float32")
    pred = RecurrentPredictor(units=6, hidden_units=(), variance="diagonal",
                              stop_gradient_targets=False)
    pred.build(z.shape)
    rho = np.array([-0.7, 0.2, 1.1], "float32")
    pred.log_variance.assign(rho)
    out = pred(z)
    mu = to_numpy(out["prediction"]).astype("float64")
    v = np.exp(rho.astype("float64")) + 1e-4
    ref = 0.5 * np.sum((z - mu) ** 2 / v + np.log(v), axis=-1)
    np.testing.assert_allclose(to_numpy(out["nll"]), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(out["variance"]), np.broadcast_to(v, z.shape),
                               rtol=1e-6)
    assert any(w is pred.log_variance for w in pred.trainable_weights)
    with pytest.raises(ValueError, match="variance"):
        RecurrentPredictor(variance="diag")
    with pytest.raises(ValueError, match="init_log_variance"):
        RecurrentPredictor(variance="diagonal", init_log_variance=float("nan"))


def _per_step_model(entropy_pooling="per-step", **kw):
    keras.utils.set_random_seed(0)
    # tanh: no dead units, so no two frames share a latent (a zero k-NN radius)
    enc = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation="tanh"),
                            keras.layers.Dense(3)])
    pred = RecurrentPredictor(units=6, hidden_units=(), variance="diagonal",
                              stop_gradient_targets=False)
    return PredictiveLDM(enc, pred, entropy=KNNEntropy(dimension="intrinsic", **kw),
                         entropy_pooling=entropy_pooling, skip_first=1, lr_multipliers=None)


def test_per_step_entropy_loss_matches_numpy(rng):
    x = rng.normal(size=(12, 4, 10)).astype("float32")
    model = _per_step_model()
    out = model(x)
    z = to_numpy(out["latents"]).astype("float64")
    nll = to_numpy(out["nll"]).astype("float64")
    h_ref, _ = _ref_intrinsic([z[:, t] for t in range(z.shape[1])])
    logs = {k: float(to_numpy(v)) for k, v in model.compute_ldm_loss(x).items()}
    np.testing.assert_allclose(logs["entropy"], h_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(logs["loss"], nll[:, 1:].mean() - h_ref, rtol=RTOL, atol=ATOL)
    assert model.min_batch_size == 4
    # pooled (the default of PredictiveLDM) estimates on batch × time
    pooled = _per_step_model("pooled")
    assert PredictiveLDM(pooled.encoder, pooled.predictor, entropy=KNNEntropy()
                         ).entropy_pooling == "pooled"
    h_pool, _ = _ref_intrinsic([z.reshape(-1, 3)])
    np.testing.assert_allclose(float(to_numpy(pooled.compute_ldm_loss(x)["entropy"])),
                               h_pool, rtol=RTOL, atol=ATOL)


def test_per_step_model_arguments_and_round_trip(tmp_path, rng):
    with pytest.raises(ValueError, match="entropy_pooling"):
        _per_step_model("per-window")
    model = _per_step_model()
    x = rng.normal(size=(8, 4, 10)).astype("float32")
    model.build(x.shape)
    model.predictor.log_variance.assign(np.array([0.3, -0.2, 0.1], "float32"))
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path, safe_mode=True)
    assert again.entropy_pooling == "per-step" and again.entropy.dimension == "intrinsic"
    assert again.predictor.variance == "diagonal"
    np.testing.assert_allclose(to_numpy(again.predictor.log_variance),
                               to_numpy(model.predictor.log_variance))
    np.testing.assert_allclose(to_numpy(again(x)["nll"]), to_numpy(model(x)["nll"]),
                               rtol=1e-5, atol=1e-5)


def test_recurrent_recipe_defaults():
    rec = ldm.recipes.build("recurrent-ldm", mlp(10, [8], 3, batch_norm=False))
    assert rec.predictor.variance == "diagonal" and not rec.predictor.stop_gradient_targets
    assert type(rec.entropy) is KNNEntropy and rec.entropy.dimension == "intrinsic"
    assert (rec.entropy_pooling, rec.skip_first, rec.lr_multipliers) == ("per-step", 1, {})
    old = ldm.recipes.build("recurrent-ldm", mlp(10, [8], 3, batch_norm=False),
                            variance="softplus", entropy_pooling="pooled",
                            entropy_dimension="ambient", skip_first=0,
                            lr_multipliers="default")
    assert (old.predictor.variance, old.entropy.dimension, old.entropy_pooling,
            old.skip_first, old.lr_multipliers["dynamics"]) == (
        "softplus", "ambient", "pooled", 0, 100.0)
    kde = ldm.recipes.build("recurrent-ldm", mlp(10, [8], 3, batch_norm=False),
                            entropy="gaussian-kde")
    assert kde.entropy_pooling == "per-step"
    for key, bad in (("entropy_pooling", "windows"), ("entropy_dimension", "true"),
                     ("variance", "learned")):
        with pytest.raises(ValueError, match=key):
            ldm.recipes.build("recurrent-ldm", mlp(10, [8], 3, batch_norm=False),
                              **{key: bad})
