"""Each recipe builds the documented objective, and its loss is the documented formula.

Two checks per recipe, on the active backend:

* the objects ``ldm_keras.recipes.build`` returns (latent model and κ, estimator and its
  settings, mode, λ, stop-gradient, EMA momentum, predictor) against the table of the
  ``ldm_keras.recipes`` docstring, written out here as :data:`DOCUMENTED` (and each
  row's numbers checked to appear in the docstring's row);
* the model's loss on fixed inputs against a NumPy formula evaluated on the model's
  own latents (``embed``, the predictor head, the EMA target network), float64.

The sequence recipes: the JEPA loss (first step dropped, the prediction of ``z_t`` from
``z_<t`` only, EMA targets), the Kalman/recurrent losses (mean NLL minus λ · the k-NN
entropy of the pooled latents; the recurrent NLL from its Gaussian formula), the
learning-rate schedules by their value at a later step, and the PredictiveLDM
learning-rate multipliers through ``ScaledSchedule`` during ``fit``.
"""

import math
import re

import keras
import numpy as np
import pytest
from helpers import gradients, to_numpy
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln, logsumexp

import ldm_keras as ldm
from ldm_keras.models.encoders import mlp
from ldm_keras.models.optimizers import ScaledSchedule
from ldm_keras.models.predictive import DEFAULT_LR_MULTIPLIERS

P, E = ldm.priors, ldm.entropy

#: The recipe table of the ``ldm_keras.recipes`` docstring: prior class, κ, estimator
#: class and settings, mode, λ, stop-gradient, EMA momentum, predictor head; ``doc`` the
#: numbers the docstring's row states.
DOCUMENTED = {
    "simclr": dict(prior=(P.VonMisesFisher, 5.0), entropy=(E.VonMisesFisherKDE, dict(
        precision=5.0, centers="other")), mode="marginal", weight=0.5, sg=False, ema=None,
        predictor=False, doc=["κ=5", "γ=5", "other view", "marginal", "λ=½"]),
    "sphere-ldm": dict(prior=(P.VonMisesFisher, 5.0), entropy=(E.VonMisesFisherKDE, dict(
        precision=5.0, centers="self")), mode="joint", weight=1.0, sg=False, ema=None,
        predictor=False, doc=["κ=5", "γ=5", "joint"]),
    "plane-kde": dict(prior=(P.IsotropicGaussian, 5.0), entropy=(E.GaussianKDE, dict(
        precision=5.0)), mode="joint", weight=1.0, sg=False, ema=None, predictor=False,
        doc=["κ=5", "γ=5", "joint"]),
    "plane-knn": dict(prior=(P.IsotropicGaussian, 5.0), entropy=(E.KNNEntropy, dict(
        k=3, clip_quantile=None)), mode="joint", weight=1.0, sg=False, ema=None,
        predictor=False, doc=["κ=5", "k=3", "joint"]),
    "vicreg": dict(prior=(P.IsotropicGaussian, 25.0), entropy=(E.VICRegSurrogate, dict(
        variance_weight=12.5, covariance_weight=1.0)), mode="marginal", weight=1.0,
        sg=False, ema=None, predictor=False, doc=["κ=25", "marginal"]),
    "vicreg-ldm": dict(prior=(P.IsotropicGaussian, 5.0), entropy=(E.GaussianLogDet, dict(
        jitter=1e-6)), mode="pooled", weight=1.0, sg=False, ema=None, predictor=False,
        doc=["κ=5", "log-det", "pooled"]),
    "simsiam": dict(prior=(P.VonMisesFisher, 1.0), entropy=None, mode="joint", weight=None,
                    sg=True, ema=None, predictor=True, doc=["κ=1", "stop-gradient"]),
    "byol": dict(prior=(P.VonMisesFisher, 1.0), entropy=None, mode="joint", weight=None,
                 sg=True, ema=0.99, predictor=True, doc=["κ=1", "EMA target, m=0.99"]),
    "categorical": dict(prior=(P.CategoricalPair, None), entropy=(E.CategoricalEntropy, {}),
                        mode="joint", weight=1.0, sg=False, ema=None, predictor=False,
                        doc=["p=0.8", "categorical plug-in", "joint"]),
}

D_IN, N = 6, 24


def _encoder():
    return mlp(D_IN, [16], 8, batch_norm=False, name="encoder")


def _pairs(seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=(N, D_IN)).astype("float32")
    x2 = (x1 + 0.5 * rng.normal(size=(N, D_IN))).astype("float32")
    return x1, x2


def _docstring_row(name):
    table = ldm.recipes.__doc__.split("Sequence recipes")[0]   # the multi-view table
    rows = [line for line in table.splitlines()
            if re.match(rf"``{re.escape(name)}``\s+\S", line)]
    assert len(rows) == 1, f"the recipe table has {len(rows)} rows for {name!r}"
    return rows[0]


def test_the_table_here_is_the_documented_one():
    assert set(DOCUMENTED) == set(ldm.recipes.names("multiview"))
    for name, spec in DOCUMENTED.items():
        row = _docstring_row(name)
        for token in spec["doc"]:
            assert token in row, f"{name}: the docstring row lacks {token!r}: {row}"


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_recipe_builds_the_documented_objective(name):
    spec = DOCUMENTED[name]
    model = ldm.recipes.build(name, _encoder())
    obj = model.objective
    cls, kappa = spec["prior"]
    assert type(obj.prior) is cls, (name, obj.prior)
    if kappa is not None:
        assert obj.prior.precision == kappa
    if spec["entropy"] is None:
        assert obj.entropy is None
    else:
        ecls, settings = spec["entropy"]
        assert type(obj.entropy) is ecls, (name, obj.entropy)
        for key, value in settings.items():
            assert getattr(obj.entropy, key) == value, (name, key, getattr(obj.entropy, key))
        assert obj.entropy_weight == spec["weight"]
    assert obj.mode == spec["mode"]
    assert obj.stop_gradient is spec["sg"]
    assert obj.symmetric
    assert model.ema_momentum == spec["ema"]
    assert (model.predictor is not None) is spec["predictor"]
    if name == "categorical":
        assert obj.prior.num_classes == 10
        np.testing.assert_allclose(obj.prior.agreement, 0.8, rtol=1e-6)
        (anneal,) = ldm.recipes.callbacks(name, epochs=5)
        assert (anneal.start, anneal.end, anneal.schedule) == (0.8, 0.992, "linear")
    else:
        assert ldm.recipes.callbacks(name, epochs=5) == []


# -- the loss of each recipe on fixed inputs, against NumPy --------------------------------

def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _cos(a, b):
    return np.sum(_unit(a) * _unit(b), axis=1)


def _kl_entropy(z, k=3):
    n, d = z.shape
    r = cKDTree(z).query(z, k + 1)[0][:, k]
    log_vd = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)
    return d * np.mean(np.log(r)) + log_vd + digamma(n) - digamma(k)


def _kl_entropy_per_step_intrinsic(z, k=3):
    """Per-step k-NN entropy of ``z`` (B, T, L) with the two-NN intrinsic dimension
    ``d̂ = clip(B T / Σ_t Σ_b log(r₂/r₁), 1, L)`` (pooled over steps) as dimension factor."""
    b, t, dim = z.shape
    r = [cKDTree(z[:, s]).query(z[:, s], max(k, 2) + 1)[0] for s in range(t)]
    d = np.clip(b * t / sum(np.log(q[:, 2] / q[:, 1]).sum() for q in r), 1.0, dim)
    log_vd = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)
    return np.mean([d * np.mean(np.log(q[:, k])) for q in r]) + log_vd + digamma(b) - \
        digamma(k)


def _vicreg_loss(z1, z2):
    """VICReg (Bardes et al. 2022) with its weights 25 / 25 / 1, written from the paper."""
    def std_term(z):
        return np.mean(np.maximum(0.0, 1.0 - np.sqrt(z.var(axis=0, ddof=1) + 1e-4)))

    def cov_term(z):
        c = np.cov(z, rowvar=False)
        return (np.sum(c ** 2) - np.sum(np.diag(c) ** 2)) / z.shape[1]

    invariance = np.mean((z1 - z2) ** 2)
    return (25.0 * invariance + 25.0 * (std_term(z1) + std_term(z2)) / 2
            + cov_term(z1) + cov_term(z2))


def _numpy_loss(name, z1, z2, p1=None, p2=None, t1=None, t2=None):
    """The documented loss of recipe ``name`` (float64) on latents, predictions, targets."""
    if name in ("simclr", "sphere-ldm"):
        u1, u2 = _unit(z1), _unit(z2)
        align = 5.0 * np.mean(np.sum(u1 * u2, axis=1))
        if name == "simclr":
            h = (-np.mean(logsumexp(5.0 * u1 @ u2.T, axis=1))
                 - np.mean(logsumexp(5.0 * u2 @ u1.T, axis=1)))
            return -(align + 0.5 * h)
        return -(align - np.mean(logsumexp(5.0 * (u1 @ u1.T + u2 @ u2.T), axis=1)))
    if name in ("plane-kde", "plane-knn", "vicreg-ldm"):
        align = -5.0 * np.mean((z1 - z2) ** 2)
        c = np.hstack([z1, z2])
        if name == "plane-kde":
            d2 = ((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)
            h = -np.mean(logsumexp(-5.0 * d2 / c.shape[1], axis=1))
        elif name == "plane-knn":
            h = _kl_entropy(c, 3)
        else:
            pooled = np.vstack([z1, z2])
            cov = np.cov(pooled, rowvar=False)
            d = cov.shape[0]
            cov = cov + 1e-6 * np.trace(cov) / d * np.eye(d)
            h = 2 * 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1]
        return -(align + h)
    if name == "vicreg":
        return _vicreg_loss(z1, z2)
    if name in ("simsiam", "byol"):
        # negative cosine of each view's prediction with the other view's target
        t1 = z1 if t1 is None else t1
        t2 = z2 if t2 is None else t2
        return -0.5 * (np.mean(_cos(t2, p1)) + np.mean(_cos(t1, p2)))
    if name == "categorical":
        inv_t = math.log(0.8 * 9 / 0.2)                 # 1/T = log(p (n-1) / (1-p))
        align = inv_t * np.mean(np.sum(z1 * z2, axis=1))
        joint = z1.T @ z2 / len(z1)
        h = -np.sum(joint * np.log(joint + 1e-6))
        return -(align + h)
    raise KeyError(name)


def _f64(x):
    return None if x is None else to_numpy(x).astype("float64")


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_recipe_loss_matches_numpy_on_its_own_latents(name):
    keras.utils.set_random_seed(0)
    x1, x2 = _pairs()
    # vicreg-ldm: 8 latents, so that the 2N = 48 pooled latents have a regular covariance
    # (64 would make the log-det that of the jitter, a test of float32 round-off)
    small = {"projector": (32, 8)} if name == "vicreg-ldm" else {}
    model = ldm.recipes.build(name, _encoder(), **small)
    model.build(x1.shape)
    if model.ema_momentum is not None:
        # move the EMA target away from the online network, so that using the online
        # latents as targets (or the targets as predictions) would change the loss
        rng = np.random.default_rng(1)
        for v in model.target_weights():
            v.assign(to_numpy(v.value) + 0.3 * rng.normal(size=v.shape).astype("float32"))
    logs = {k: float(to_numpy(v)) for k, v in model.compute_ldm_loss((x1, x2)).items()}
    z1, z2 = _f64(model.embed(x1)), _f64(model.embed(x2))
    p1 = p2 = t1 = t2 = None
    if model.predictor is not None:
        p1, p2 = _f64(model.predictor(model.embed(x1))), _f64(model.predictor(model.embed(x2)))
    if model.ema_momentum is not None:
        t1, t2 = _f64(model._target_embed(x1, False)), _f64(model._target_embed(x2, False))
        assert np.abs(t1 - z1).max() > 1e-2   # the targets really differ
    ref = _numpy_loss(name, z1, z2, p1, p2, t1, t2)
    # float32 latents and reductions: 1e-5 relative on values of order 1-10
    np.testing.assert_allclose(logs["loss"], ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logs["loss"], -(logs["alignment"] + (
        model.objective.entropy_weight * logs["entropy"])), rtol=1e-5, atol=1e-5)


def test_simclr_recipe_loss_is_the_symmetric_infonce():
    keras.utils.set_random_seed(0)
    x1, x2 = _pairs()
    model = ldm.recipes.build("simclr", _encoder())
    model.build(x1.shape)
    z1, z2 = _f64(model.embed(x1)), _f64(model.embed(x2))

    def infonce(a, b, tau=0.2):
        s = _unit(a) @ _unit(b).T / tau
        return np.mean(logsumexp(s, axis=1) - np.diag(s))

    loss = float(to_numpy(model.compute_ldm_loss((x1, x2))["loss"]))
    np.testing.assert_allclose(loss, 0.5 * (infonce(z1, z2) + infonce(z2, z1)), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("name", ["simsiam", "byol"])
def test_predictor_is_trained_and_targets_are_not(name):
    """The gradient reaches the predictor head (its output is the prediction, not a
    stop-gradient target) and, for BYOL, never the EMA target network."""
    x1, x2 = _pairs()
    model = ldm.recipes.build(name, _encoder())
    model.build(x1.shape)
    pred_vars = list(model.predictor.trainable_variables)
    grads = gradients(lambda a, b: model.compute_ldm_loss((a, b))["loss"], (x1, x2),
                      pred_vars)[2:]
    assert all(g is not None for g in grads)
    assert max(float(np.abs(g).max()) for g in grads) > 1e-4
    if name == "byol":
        online = {id(v) for v in model.trainable_variables}
        assert not online & {id(v) for v in model.target_weights()}


def test_categorical_recipe_anneals_agreement_0_8_to_0_992_during_fit():
    x1, x2 = _pairs()
    model = ldm.recipes.build("categorical", _encoder())
    model.compile(optimizer="adam")
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(model.objective.prior.agreement)

    model.fit((x1, x2), epochs=3, batch_size=N, verbose=0,
              callbacks=ldm.recipes.callbacks("categorical", epochs=3) + [Record()])
    np.testing.assert_allclose(seen, [0.8, 0.896, 0.992], rtol=1e-6)
    anneal = ldm.recipes.callbacks("categorical", epochs=50)[0]
    np.testing.assert_allclose(anneal.value(10), 0.8 + 10 / 49 * 0.192, rtol=1e-12)
    assert anneal.value(49) == anneal.value(80) == pytest.approx(0.992)


# -- sequence recipes ---------------------------------------------------------------------

def _frames(n=4, t=6, features=10, seed=0):
    return np.random.default_rng(seed).normal(size=(n, t, features)).astype("float32")


def _seq_encoder(dim=3, features=10):
    return mlp(features, [8], dim, batch_norm=False, name="encoder")


def test_sequence_recipes_build_the_documented_models():
    enc = _seq_encoder
    cpc = ldm.recipes.build("cpc", enc())
    assert isinstance(cpc, ldm.models.CPCLDM)
    assert (cpc.context_units, cpc.context_cell, cpc.prediction_steps, cpc.score,
            cpc.precision, cpc.entropy_weight) == (64, "gru", 3, "vmf", 10.0, 1.0)
    jepa = ldm.recipes.build("jepa", enc())
    assert isinstance(jepa, ldm.models.JEPALDM)
    assert type(jepa.prior) is P.IsotropicGaussian and jepa.prior.precision == 1.0
    assert jepa.ema_momentum == 0.99
    assert (jepa.predictor.units, jepa.predictor.cell, jepa.predictor.variance) == (
        64, "gru", "constant")
    for name, entropy in (("kalman-ssl", None), ("kalman-ssl-knn", E.KNNEntropy)):
        m = ldm.recipes.build(name, enc())
        assert isinstance(m.predictor, ldm.predictors.KalmanFilter)
        cell = m.predictor.cell.get_config()
        assert (cell["state_dim"], cell["observation_dim"]) == (3, 3)
        assert (cell["observation_noise_init"], cell["process_noise_init"]) == (0.1, 0.01)
        assert cell["stop_gradient_targets"] is (entropy is None)
        assert m.clamp_radius == 1.02
        assert DEFAULT_LR_MULTIPLIERS == {
            "dynamics": 100.0, "noise_network": 10.0, "observation_noise": 0.03}
        # kalman-ssl: dynamics 30× and a rotation start (robustness suite); -knn: as before
        assert m.lr_multipliers == ({**DEFAULT_LR_MULTIPLIERS, "dynamics": 30.0}
                                    if entropy is None else DEFAULT_LR_MULTIPLIERS)
        assert cell["initial_rotation"] == (math.pi / 8 if entropy is None else None)
        if entropy is None:
            assert m.entropy is None
        else:
            assert type(m.entropy) is entropy and m.entropy.k == 3 and m.entropy_weight == 1.0
    rec = ldm.recipes.build("recurrent-ldm", enc())
    assert isinstance(rec.predictor, ldm.predictors.RecurrentPredictor)
    assert (rec.predictor.units, rec.predictor.cell, rec.predictor.hidden_units,
            rec.predictor.variance, rec.predictor.stop_gradient_targets) == (
        64, "gru", (64,), "diagonal", False)
    assert type(rec.entropy) is E.KNNEntropy and rec.entropy.k == 3
    assert (rec.entropy.dimension, rec.entropy_pooling, rec.skip_first, rec.lr_multipliers,
            rec.entropy_weight) == ("intrinsic", "per-step", 1, {}, 1.0)
    for alt, cls in (("gaussian-kde", E.GaussianKDE), ("logdet", E.GaussianLogDet)):
        assert type(ldm.recipes.build("recurrent-ldm", enc(), entropy=alt).entropy) is cls
    with pytest.warns(DeprecationWarning, match="gaussian-kde"):
        assert type(ldm.recipes.build("recurrent-ldm", enc(), entropy="kde").entropy) is \
            E.GaussianKDE


def test_jepa_loss_drops_the_first_step_and_scores_ema_targets():
    x = _frames(4, 6)
    model = ldm.recipes.build("jepa", _seq_encoder(), units=8, hidden_units=(8,))
    model.build(x.shape)
    rng = np.random.default_rng(2)
    for v in model.target_encoder.weights:   # targets ≠ online latents
        v.assign(to_numpy(v.value) + 0.3 * rng.normal(size=v.shape).astype("float32"))
    out = model(x)
    pred = _f64(out["prediction"])
    target = _f64(model.target_encoder(x.reshape(-1, 10))).reshape(4, 6, -1)
    assert np.abs(target - _f64(out["latents"])).max() > 1e-2
    # κ = 1: log p = -mean_d (y - ẑ)², averaged over the batch and the steps t ≥ 2
    ref = np.mean(np.mean((target[:, 1:] - pred[:, 1:]) ** 2, axis=-1))
    logs = model.compute_ldm_loss(x)
    np.testing.assert_allclose(float(to_numpy(logs["loss"])), ref, rtol=1e-5, atol=1e-6)
    assert float(to_numpy(logs["entropy"])) == 0.0
    # including step 1, or scoring the online latents, gives another value
    assert not np.isclose(ref, np.mean((target - pred) ** 2), rtol=1e-3)


def test_jepa_prediction_of_z_t_sees_only_the_past():
    x = _frames(3, 6)
    model = ldm.recipes.build("jepa", _seq_encoder(), units=8, hidden_units=(8,))
    before = _f64(model(x)["prediction"])
    y = x.copy()
    y[:, 3:] += 5.0                      # change the frames from step 4 on
    after = _f64(model(y)["prediction"])
    np.testing.assert_allclose(after[:, :4], before[:, :4], rtol=1e-5, atol=1e-6)
    assert np.abs(after[:, 4:] - before[:, 4:]).max() > 1e-3


@pytest.mark.parametrize("name", ["kalman-ssl", "kalman-ssl-knn", "recurrent-ldm"])
def test_predictive_recipe_loss_is_mean_nll_minus_entropy(name):
    keras.utils.set_random_seed(0)
    x = _frames(6, 5)
    small = dict(units=8, hidden_units=(8,)) if name == "recurrent-ldm" else {}
    model = ldm.recipes.build(name, _seq_encoder(2), **small)
    out = model(x)
    z = _f64(out["latents"])
    nll = _f64(out["nll"])
    if name == "recurrent-ldm":   # the Gaussian NLL with the predicted variance
        pred, var = _f64(out["prediction"]), _f64(out["variance"])
        np.testing.assert_allclose(
            nll, 0.5 * np.sum((z - pred) ** 2 / var + np.log(var), axis=-1),
            rtol=1e-4, atol=1e-5)
    if name == "recurrent-ldm":  # per step, intrinsic dimension, first step skipped
        h, nll = _kl_entropy_per_step_intrinsic(z, 3), nll[:, 1:]
    else:                        # pooled over batch × time
        h = 0.0 if name == "kalman-ssl" else _kl_entropy(z.reshape(-1, 2), 3)
    logs = {k: float(to_numpy(v)) for k, v in model.compute_ldm_loss(x).items()}
    np.testing.assert_allclose(logs["entropy"], h, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logs["loss"], nll.mean() - h, rtol=1e-4, atol=1e-4)


# -- learning rates: schedules by their value at a later step ------------------------------

def _cosine(lr, step, steps, alpha=0.01):
    return lr * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))


def _lr(opt, step):
    opt.iterations.assign(step)
    return float(to_numpy(opt.learning_rate))


def test_default_optimizers_learning_rates_at_a_later_step():
    opt = ldm.recipes.default_optimizer("kalman-ssl", decay_steps=100)
    assert isinstance(opt._learning_rate, keras.optimizers.schedules.CosineDecay)
    for step in (0, 30, 50, 100, 150):
        np.testing.assert_allclose(_lr(opt, step), _cosine(1e-4, step, 100), rtol=1e-5)
    # no decay_steps, or schedule="constant": 1e-4 at every step
    for opt in (ldm.recipes.default_optimizer("kalman-ssl"),
                ldm.recipes.default_optimizer("kalman-ssl", decay_steps=100,
                                              schedule="constant")):
        np.testing.assert_allclose(_lr(opt, 50), 1e-4, rtol=1e-6)
    opt = ldm.recipes.default_optimizer("kalman-ssl-knn", 3e-4, decay_steps=10)
    np.testing.assert_allclose(_lr(opt, 5), _cosine(3e-4, 5, 10), rtol=1e-5)
    for name, lr in (("cpc", 1e-3), ("jepa", 1e-3), ("recurrent-ldm", 1e-3), ("simclr", 1e-3)):
        np.testing.assert_allclose(_lr(ldm.recipes.default_optimizer(name, decay_steps=10), 7),
                                   lr, rtol=1e-6)
    np.testing.assert_allclose(_lr(ldm.recipes.default_optimizer("simclr", 2e-3), 7), 2e-3,
                               rtol=1e-6)


def test_scaled_schedule_value_and_round_trip():
    base = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=10, alpha=0.01)
    fast = ScaledSchedule(base, 100.0)
    for step in (0, 3, 7, 12):
        np.testing.assert_allclose(float(to_numpy(fast(step))),
                                   100.0 * _cosine(1e-3, step, 10), rtol=1e-5)
    again = ScaledSchedule.from_config(fast.get_config())
    np.testing.assert_allclose(float(to_numpy(again(4))), float(to_numpy(fast(4))), rtol=1e-7)


def test_scaled_schedule_warmup_ramps_linearly_then_follows_the_schedule():
    """``factor · schedule(step) · min(1, step / warmup_steps)``, for a schedule and for a
    constant rate, and the same after a config round trip."""
    base = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=40, alpha=0.01)
    held = ScaledSchedule(base, 30.0, warmup_steps=10)
    const = ScaledSchedule(2e-3, 5.0, warmup_steps=4)
    again = ScaledSchedule.from_config(held.get_config())
    for step in (0, 1, 5, 10, 25, 60):
        want = 30.0 * _cosine(1e-3, step, 40) * min(1.0, step / 10)
        np.testing.assert_allclose(float(to_numpy(held(step))), want, rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(float(to_numpy(again(step))), want, rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(float(to_numpy(const(step))),
                                   1e-2 * min(1.0, step / 4), rtol=1e-6, atol=1e-12)
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(ValueError, match="warmup_steps"):
            ScaledSchedule(base, 1.0, warmup_steps=bad)


def test_group_warmup_during_fit_and_in_the_saved_optimizer(tmp_path):
    """With ``lr_warmup_steps={"dynamics": 10}`` the dynamics' rate after 4 steps of fit
    is 4/10 of its 30× cosine rate while the encoder's is not ramped; a constant base rate
    is ramped too; the warm-up survives save/load; an unknown group is refused."""
    x = _frames(8, 5)
    model = ldm.recipes.build("kalman-ssl", _seq_encoder(2), lr_warmup_steps={"dynamics": 10})
    model.compile(optimizer=ldm.recipes.default_optimizer("kalman-ssl", 1e-3, decay_steps=8))
    model.fit(x, epochs=2, batch_size=4, verbose=0)      # 4 optimizer steps
    clones = {o.name.removeprefix("grouped_optimizer_"): o for o in model.optimizer._optimizers}
    for group, factor in (("default", 1.0), ("dynamics", 30.0 * 4 / 10)):
        np.testing.assert_allclose(float(to_numpy(clones[group].learning_rate)),
                                   factor * _cosine(1e-3, 4, 8), rtol=1e-5, err_msg=group)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.lr_warmup_steps == {"dynamics": 10}
    assert loaded.optimizer.warmup_steps == {"dynamics": 10}
    clones = {o.name.removeprefix("grouped_optimizer_"): o for o in loaded.optimizer._optimizers}
    np.testing.assert_allclose(float(to_numpy(clones["dynamics"].learning_rate)),
                               30.0 * 0.4 * _cosine(1e-3, 4, 8), rtol=1e-5)

    flat = ldm.recipes.build("kalman-ssl", _seq_encoder(2), lr_multipliers=None,
                             lr_warmup_steps={"dynamics": 10})
    flat.compile(optimizer=keras.optimizers.Adam(1e-3))
    flat.fit(x, epochs=1, batch_size=4, verbose=0)        # 2 optimizer steps
    clones = {o.name.removeprefix("grouped_optimizer_"): o for o in flat.optimizer._optimizers}
    np.testing.assert_allclose(float(to_numpy(clones["dynamics"].learning_rate)), 2e-4,
                               rtol=1e-5)
    np.testing.assert_allclose(float(to_numpy(clones["default"].learning_rate)), 1e-3,
                               rtol=1e-6)
    bad = ldm.recipes.build("kalman-ssl", _seq_encoder(2), lr_warmup_steps={"dynamic": 10})
    with pytest.raises(ValueError, match=r"lr_warmup_steps.*\['dynamic'\]"):
        bad.compile(optimizer="adam")      # refused here, or at the first step once built
        bad.fit(x, epochs=1, batch_size=4, verbose=0)


def test_kalman_recipe_group_learning_rates_follow_the_schedule_during_fit():
    """After 4 steps of fit, each group's optimizer has the cosine rate at step 4 times
    the group's multiplier (dynamics 30×), not the rate at step 0."""
    x = _frames(8, 5)
    model = ldm.recipes.build("kalman-ssl", _seq_encoder(2))
    model.compile(optimizer=ldm.recipes.default_optimizer("kalman-ssl", 1e-3, decay_steps=8))
    model.fit(x, epochs=2, batch_size=4, verbose=0)      # 4 optimizer steps
    clones = {o.name.removeprefix("grouped_optimizer_"): o for o in model.optimizer._optimizers}
    assert int(to_numpy(model.optimizer.iterations)) == 4
    for group, factor in (("default", 1.0), ("dynamics", 30.0)):
        opt = clones[group]
        assert int(to_numpy(opt.iterations)) == 4, group
        np.testing.assert_allclose(float(to_numpy(opt.learning_rate)),
                                   factor * _cosine(1e-3, 4, 8), rtol=1e-5, err_msg=group)


def test_recipe_table_names_every_sequence_recipe():
    text = ldm.recipes.__doc__
    for name in ldm.recipes.names("sequence"):
        assert re.search(rf"^``{re.escape(name)}``", text, flags=re.M), name
