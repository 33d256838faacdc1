"""Tests of ldm_keras.priors: every log density against SciPy (or an explicitly normalised
table), up to the constant each docstring names, plus layer checks and bad input.

Tolerances: float32 computations compared with float64 references at rtol 1e-5,
atol 1e-5 unless stated otherwise.
"""

import math

import keras
import numpy as np
import pytest
from helpers import gradients, run_layer_test, to_numpy
from scipy import special, stats

from ldm_keras.priors import (
    AnnealAgreement,
    CategoricalPair,
    DiagonalGaussian,
    FullGaussian,
    GeneralizedGaussian,
    IsotropicGaussian,
    Laplace,
    Logistic,
    StudentT,
    VonMisesFisher,
    agreement_to_temperature,
    temperature_to_agreement,
)

RTOL, ATOL = 1e-5, 1e-5
N, D = 6, 4


def close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(to_numpy(actual), "float64"),
                               np.asarray(to_numpy(expected), "float64"), rtol=rtol, atol=atol)


def data(rng, n=N, d=D):
    return rng.normal(size=(n, d)).astype("float32"), rng.normal(size=(n, d)).astype("float32")


def probs(rng, n=N, k=5):
    logits = rng.normal(size=(n, k))
    q = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return q.astype("float32")


# --------------------------------------------------------------------------------------
# Every prior: the shared layer test, with and (where allowed) without a context.

# (class, init kwargs, context required, feature size)
PRIORS = [
    (IsotropicGaussian, {"precision": 5.0}, False, D),
    (VonMisesFisher, {"precision": 5.0}, True, D),
    (DiagonalGaussian, {}, False, D),
    (DiagonalGaussian, {"learn_variance": False, "init_log_variance": 0.5}, False, D),
    (FullGaussian, {}, False, D),
    (FullGaussian, {"learn_covariance": False, "jitter": 0.0}, False, D),
    (CategoricalPair, {"num_classes": 5, "agreement": 0.8}, True, 5),
    (GeneralizedGaussian, {"beta": 4.0, "alpha": 0.5}, False, D),
    (GeneralizedGaussian, {"beta": [1.0, 1.5, 2.0, 3.0], "alpha": 2.0}, False, D),
    (Laplace, {"alpha": 2.0}, False, D),
    (Logistic, {"scale": 0.7}, False, D),
    (StudentT, {"dof": 3.0, "precision": 2.0}, False, D),
]
IDS = [f"{cls.__name__}-{i}" for i, (cls, *_) in enumerate(PRIORS)]


def _inputs(cls, d, rng):
    if cls is CategoricalPair:
        return probs(rng, k=d), probs(rng, k=d)
    return data(rng, d=d)


@pytest.mark.parametrize("cls,kwargs,needs_context,d", PRIORS, ids=IDS)
def test_layer_with_context(cls, kwargs, needs_context, d, rng):
    z, c = _inputs(cls, d, rng)
    _, out = run_layer_test(cls, kwargs, (z, c), (N,))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


@pytest.mark.parametrize(
    "cls,kwargs,needs_context,d", [p for p in PRIORS if not p[2]],
    ids=[i for i, p in zip(IDS, PRIORS) if not p[2]],
)
def test_layer_without_context(cls, kwargs, needs_context, d, rng):
    z, _ = _inputs(cls, d, rng)
    run_layer_test(cls, kwargs, z, (N,), check_mixed_precision=False)


@pytest.mark.parametrize("cls,kwargs,needs_context,d", PRIORS, ids=IDS)
def test_unknown_batch_size_passes(cls, kwargs, needs_context, d, rng):
    """Functional models trace with batch None: the checks must let it through."""
    z, c = _inputs(cls, d, rng)
    layer = cls(**kwargs)
    zi, ci = keras.Input(shape=(d,)), keras.Input(shape=(d,))
    model = keras.Model([zi, ci], layer(zi, ci))
    close(model.predict([z, c], verbose=0), layer(z, c), 1e-6, 1e-6)


@pytest.mark.parametrize("cls,kwargs,needs_context,d", PRIORS, ids=IDS)
def test_bad_rank_and_mismatched_views(cls, kwargs, needs_context, d, rng):
    z, c = _inputs(cls, d, rng)
    layer = cls(**kwargs)
    with pytest.raises(ValueError, match=rf"rank-2.*received shape \({d},\)"):
        layer(z[0], c[0])
    with pytest.raises(ValueError, match="rank-2"):
        layer(z[None], c[None])
    with pytest.raises(ValueError, match="`context` must be a rank-2"):
        layer(z, c[0])
    with pytest.raises(ValueError, match="same shape"):
        layer(z, c[:-1])                       # different batch sizes
    if cls is not CategoricalPair:
        with pytest.raises(ValueError, match="same shape"):
            layer(z, c[:, :-1])                # different feature sizes
    if needs_context:
        with pytest.raises(ValueError, match="needs `context`"):
            layer.log_prob(z)


# --------------------------------------------------------------------------------------
# Isotropic Gaussian.

def test_isotropic_gaussian_matches_scipy(rng):
    z, c = data(rng)
    kappa = 5.0
    sigma2 = D / (2 * kappa)                   # documented equivalent variance
    ref = stats.norm.logpdf(z, loc=c, scale=math.sqrt(sigma2)).sum(-1)
    dropped = -D / 2 * math.log(2 * math.pi * sigma2)
    close(IsotropicGaussian(kappa).log_prob(z, c), ref - dropped)
    close(IsotropicGaussian(kappa).log_prob(z), stats.norm.logpdf(
        z, scale=math.sqrt(sigma2)).sum(-1) - dropped)


def test_isotropic_gaussian_rejects_non_positive_precision():
    for bad in (0.0, -1.0, float("nan"), "x"):
        with pytest.raises(ValueError, match="precision"):
            IsotropicGaussian(precision=bad)


# --------------------------------------------------------------------------------------
# von Mises–Fisher.

def _vmf_log_normalizer(d, kappa):
    nu = d / 2 - 1
    return nu * math.log(kappa) - d / 2 * math.log(2 * math.pi) - (
        math.log(special.ive(nu, kappa)) + kappa)


def test_von_mises_fisher_matches_scipy(rng):
    z, c = data(rng)
    kappa = 2.5
    zu = z / np.linalg.norm(z, axis=-1, keepdims=True)
    mu = c / np.linalg.norm(c, axis=-1, keepdims=True)
    ref = np.array([stats.vonmises_fisher(mu[i].astype("float64"), kappa).logpdf(
        zu[i].astype("float64")) for i in range(N)])
    prior = VonMisesFisher(precision=kappa)
    # Raw (unnormalised) inputs are normalised by the layer.
    close(prior.log_prob(3.0 * z, 0.5 * c), ref - _vmf_log_normalizer(D, kappa))


def test_von_mises_fisher_finite_gradient_at_zero(rng):
    _, c = data(rng)
    z = np.zeros_like(c)
    prior = VonMisesFisher()
    close(prior(z, c), np.zeros(N), atol=1e-6)
    for g in gradients(lambda a, b: prior(a, b), (z, c)):
        assert np.all(np.isfinite(g))


def test_von_mises_fisher_bad_arguments():
    with pytest.raises(ValueError, match="precision"):
        VonMisesFisher(precision=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        VonMisesFisher(epsilon=-1e-12)


# --------------------------------------------------------------------------------------
# Diagonal and full-covariance Gaussians.

def test_diagonal_gaussian_matches_scipy(rng):
    z, c = data(rng)
    prior = DiagonalGaussian(init_log_variance=0.3)
    prior(z, c)
    close(prior.log_variance, np.full(D, 0.3))
    log_var = rng.normal(scale=0.5, size=D).astype("float32")
    prior.log_variance.assign(log_var)
    var = np.exp(log_var.astype("float64"))
    ref = np.array([stats.multivariate_normal(c[i], np.diag(var)).logpdf(z[i])
                    for i in range(N)])
    close(prior.log_prob(z, c), ref + D / 2 * math.log(2 * math.pi))
    close(prior.variance, var)
    # Gradient w.r.t. log σ²: Σ_i (½ e_i² / σ² - ½), in closed form.
    e = (z - c).astype("float64")
    *_, g_log_var = gradients(lambda a, b: prior(a, b), (z, c), [prior.log_variance])
    close(g_log_var, (0.5 * e**2 / var - 0.5).sum(0), rtol=1e-4)


def test_diagonal_gaussian_trainability_and_bad_input(rng):
    z, c = data(rng)
    fixed = DiagonalGaussian(learn_variance=False)
    fixed(z, c)
    assert not fixed.trainable_variables and len(fixed.non_trainable_variables) == 1
    with pytest.raises(ValueError, match=r"must have 4 features.*\(6, 3\)"):
        fixed(z[:, :3], c[:, :3])
    with pytest.raises(ValueError, match="init_log_variance"):
        DiagonalGaussian(init_log_variance=float("inf"))
    with pytest.raises(ValueError, match="known number of features"):
        DiagonalGaussian().build((None, None))
    with pytest.raises(ValueError, match="call the layer"):
        _ = DiagonalGaussian().variance


@pytest.mark.parametrize("jitter", [1e-6, 0.0])
def test_full_gaussian_matches_scipy(jitter, rng):
    z, c = data(rng)
    prior = FullGaussian(jitter=jitter)
    prior(z, c)
    raw = (0.4 * rng.normal(size=(D, D))).astype("float32")
    prior.scale_tril_raw.assign(raw)
    raw64 = raw.astype("float64")
    scale = np.tril(raw64, -1) + np.diag(np.exp(np.diag(raw64)))
    cov = scale @ scale.T + jitter * np.eye(D)
    close(prior.covariance, cov)
    ref = np.array([stats.multivariate_normal(c[i], cov).logpdf(z[i]) for i in range(N)])
    close(prior.log_prob(z, c), ref + D / 2 * math.log(2 * math.pi))
    ref0 = stats.multivariate_normal(np.zeros(D), cov).logpdf(z)
    close(prior.log_prob(z), ref0 + D / 2 * math.log(2 * math.pi))


def test_full_gaussian_initial_state_and_bad_input(rng):
    z, c = data(rng)
    prior = FullGaussian(learn_covariance=False)
    out = prior(z, c)
    assert not prior.trainable_variables
    cov = (1 + 1e-6) * np.eye(D)
    ref = stats.multivariate_normal(np.zeros(D), cov).logpdf(z - c)
    close(out, ref + D / 2 * math.log(2 * math.pi))
    with pytest.raises(ValueError, match="must have 4 features"):
        prior(z[:, :2], c[:, :2])
    with pytest.raises(ValueError, match="jitter"):
        FullGaussian(jitter=-1e-6)
    with pytest.raises(ValueError, match="call the layer"):
        _ = FullGaussian().covariance


# --------------------------------------------------------------------------------------
# Categorical pair model.

def test_temperature_agreement_round_trip():
    for n in (2, 3, 10, 100):
        for p in (1.0 / n + 1e-3, 0.5 + 0.5 / n, 0.8, 0.99, 0.992, 0.9999):
            t = agreement_to_temperature(p, n)
            assert t > 0
            np.testing.assert_allclose(1.0 / t, math.log(p * (n - 1) / (1 - p)), rtol=1e-12)
            np.testing.assert_allclose(temperature_to_agreement(t, n), p, rtol=1e-12)
    # p = e^{1/T} / (e^{1/T} + n - 1), directly.
    for t in (0.05, 0.3, 2.0):
        np.testing.assert_allclose(temperature_to_agreement(t, 7),
                                   math.exp(1 / t) / (math.exp(1 / t) + 6), rtol=1e-12)
    assert temperature_to_agreement(1e-4, 10) == 1.0    # no overflow for tiny T


def test_categorical_pair_matches_normalised_table(rng):
    n, p = 6, 0.85
    prior = CategoricalPair(num_classes=n, agreement=p)
    t = 1.0 / math.log(p * (n - 1) / (1 - p))
    np.testing.assert_allclose(prior.temperature, t, rtol=1e-6)
    # The explicit n × n table p(c1, c2) ∝ exp(δ/T), normalised.
    unnorm = np.exp(np.eye(n) / t)
    table = unnorm / unnorm.sum()
    np.testing.assert_allclose(np.trace(table), p, rtol=1e-12)   # agreement probability
    c1, c2 = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    q1 = np.eye(n, dtype="float32")[c1.ravel()]
    q2 = np.eye(n, dtype="float32")[c2.ravel()]
    log_z = special.logsumexp(np.eye(n) / t)
    close(prior.log_normalizer(), log_z)
    close(prior.log_prob(q2, q1), np.log(table[c1.ravel(), c2.ravel()]) + log_z)
    # Soft assignments: the expectation of δ/T under q1 ⊗ q2.
    s1, s2 = probs(rng, k=n), probs(rng, k=n)
    close(prior.log_prob(s2, s1), (s1.astype("float64") * s2).sum(-1) / t)


def test_categorical_pair_set_agreement_and_bad_input(rng):
    n = 10
    prior = CategoricalPair(n)
    q1, q2 = probs(rng, k=n), probs(rng, k=n)
    prior.set_agreement(0.992)
    np.testing.assert_allclose(prior.agreement, 0.992, rtol=1e-7)
    close(prior(q2, q1), (q1.astype("float64") * q2).sum(-1) * math.log(0.992 * 9 / 0.008))
    for bad in (1.0 / n, 0.05, 1.0, 1.2, float("nan")):
        with pytest.raises(ValueError, match=r"agreement.*\(0\.1, 1\)"):
            CategoricalPair(n, agreement=bad)
        with pytest.raises(ValueError, match="agreement"):
            prior.set_agreement(bad)
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="num_classes"):
            CategoricalPair(bad)
    with pytest.raises(ValueError, match=r"10 classes.*\(6, 5\)"):
        prior(q2[:, :5], q1[:, :5])


def test_categorical_pair_saves_annealed_value(tmp_path, rng):
    q1, q2 = probs(rng), probs(rng)
    prior = CategoricalPair(5, agreement=0.7)
    a, b = keras.Input(shape=(5,)), keras.Input(shape=(5,))
    model = keras.Model([a, b], prior(a, b))
    prior.set_agreement(0.95)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    layer = [lay for lay in reloaded.layers if isinstance(lay, CategoricalPair)][0]
    np.testing.assert_allclose(layer.agreement, 0.95, rtol=1e-7)
    close(reloaded.predict([q2, q1], verbose=0), prior(q2, q1), 1e-6, 1e-6)


def test_anneal_agreement_schedules():
    lin = AnnealAgreement(0.8, 0.992, epochs=5)
    np.testing.assert_allclose([lin.value(e) for e in range(7)],
                               list(np.linspace(0.8, 0.992, 5)) + [0.992, 0.992], rtol=1e-12)
    lo = AnnealAgreement(0.8, 0.992, epochs=4, schedule="log_odds")
    logits = [special.logit(lo.value(e)) for e in range(4)]
    np.testing.assert_allclose(logits, np.linspace(special.logit(0.8), special.logit(0.992), 4),
                               rtol=1e-12)
    assert AnnealAgreement(0.8, 0.9, epochs=1).value(0) == 0.9
    assert AnnealAgreement.from_config(lo.get_config()).get_config() == lo.get_config()
    for kwargs, what in [({"start": 1.5}, "start"), ({"end": 0.0}, "end"),
                         ({"epochs": 0}, "epochs"), ({"epochs": 2.5}, "epochs"),
                         ({"schedule": "cosine"}, "schedule")]:
        with pytest.raises(ValueError, match=what):
            AnnealAgreement(**kwargs)


def test_anneal_agreement_during_fit(rng):
    """The callback finds nested CategoricalPair layers and the compiled steps see p."""
    n, epochs = 4, 3
    x1 = rng.normal(size=(16, 3)).astype("float32")
    x2 = (x1 + 0.1 * rng.normal(size=(16, 3))).astype("float32")
    head = keras.layers.Dense(n, activation="softmax")
    prior = CategoricalPair(n, agreement=0.5)
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    inner = keras.Model([a, b], prior(head(b), head(a)), name="inner")
    outer_in = [keras.Input(shape=(3,)), keras.Input(shape=(3,))]
    model = keras.Model(outer_in, inner(outer_in))
    model.compile(optimizer="sgd", loss=lambda y, logp: -keras.ops.mean(logp))
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
        prior.agreement))
    model.fit([x1, x2], np.zeros(16), epochs=epochs, batch_size=8, verbose=0,
              callbacks=[AnnealAgreement(0.5, 0.9, epochs=epochs), record])
    np.testing.assert_allclose(seen, [0.5, 0.7, 0.9], rtol=1e-6)
    # The compiled predict step reads the variable, not a value baked in at trace time.
    q1 = to_numpy(head(x1)).astype("float64")
    q2 = to_numpy(head(x2)).astype("float64")
    for p in (0.9, 0.6):
        prior.set_agreement(p)
        close(model.predict([x1, x2], verbose=0), (q1 * q2).sum(-1) * math.log(p * 3 / (1 - p)),
              rtol=1e-5, atol=1e-5)

    plain = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    callback = AnnealAgreement(epochs=2)
    callback.set_model(plain)
    with pytest.raises(ValueError, match="at least one CategoricalPair"):
        callback.on_train_begin()


# --------------------------------------------------------------------------------------
# ICA source models.

def _gennorm_constant(beta, alpha):
    beta = np.broadcast_to(np.asarray(beta, "float64"), (D,))
    alpha = np.broadcast_to(np.asarray(alpha, "float64"), (D,))
    return np.sum(np.log(beta * alpha ** (1 / beta) / (2 * special.gamma(1 / beta))))


@pytest.mark.parametrize("beta,alpha", [(1.0, 1.0), (1.5, 0.7), (2.0, 2.0), (4.0, 0.5),
                                        (0.5, 1.0), ([1.0, 1.5, 2.0, 4.0], [1.0, 0.5, 2.0, 0.3])])
def test_generalized_gaussian_matches_scipy(beta, alpha, rng):
    z, c = data(rng)
    b = np.broadcast_to(np.asarray(beta, "float64"), (D,))
    a = np.broadcast_to(np.asarray(alpha, "float64"), (D,))
    scale = a ** (-1 / b)
    prior = GeneralizedGaussian(beta=beta, alpha=alpha)
    ref = stats.gennorm.logpdf(z, b, loc=c, scale=scale).sum(-1)
    close(prior.log_prob(z, c), ref - _gennorm_constant(beta, alpha))
    ref0 = stats.gennorm.logpdf(z, b, scale=scale).sum(-1)
    close(prior.log_prob(z), ref0 - _gennorm_constant(beta, alpha))


@pytest.mark.parametrize("beta", [1.0, 1.5, 2.0, 3.0, 4.0, [1.0, 1.5, 2.0, 4.0]])
def test_generalized_gaussian_gradients(beta, rng):
    z, _ = data(rng)
    z[0] = 0.0                                        # finite gradients at s = 0 for β ≥ 1
    prior = GeneralizedGaussian(beta=beta, alpha=0.7)
    (g,) = gradients(lambda s: prior(s), (z,))
    assert np.all(np.isfinite(g))
    b = np.broadcast_to(np.asarray(beta, "float64"), (D,))
    z64 = z.astype("float64")
    expected = -0.7 * b * np.abs(z64) ** (b - 1) * np.sign(z64)
    close(g[1:], expected[1:], rtol=1e-4, atol=1e-5)
    if np.all(b > 1):
        close(g[0], np.zeros(D))


def test_generalized_gaussian_bad_input(rng):
    z, _ = data(rng)
    for bad in (0.0, -2.0, [1.0, 0.0]):
        with pytest.raises(ValueError, match="beta"):
            GeneralizedGaussian(beta=bad)
    with pytest.raises(ValueError, match="alpha"):
        GeneralizedGaussian(alpha=-1.0)
    with pytest.raises(ValueError, match="same length"):
        GeneralizedGaussian(beta=[1.0, 2.0], alpha=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"3 sources.*\(6, 4\)"):
        GeneralizedGaussian(beta=[1.0, 2.0, 4.0])(z)
    np.testing.assert_equal(GeneralizedGaussian(beta=np.array([1.0, 2.0])).beta, [1.0, 2.0])


def test_laplace_matches_scipy(rng):
    z, c = data(rng)
    prior = Laplace(alpha=2.0)
    ref = stats.laplace.logpdf(z, loc=c, scale=0.5).sum(-1)
    close(prior.log_prob(z, c), ref - D * math.log(2.0 / 2))
    assert "beta" not in prior.get_config()
    z[0] = 0.0
    (g,) = gradients(lambda s: prior(s), (z,))
    assert np.all(np.isfinite(g))
    with pytest.raises(ValueError, match="alpha"):
        Laplace(alpha=0.0)


def test_logistic_matches_scipy(rng):
    z, c = data(rng)
    z[0] = [-60.0, -20.0, 20.0, 60.0]                 # tails: stable symmetric form
    for scale in (1.0, 0.3):
        ref = stats.logistic.logpdf(z, loc=c, scale=scale).sum(-1)
        close(Logistic(scale).log_prob(z, c), ref)
    close(Logistic().log_prob(z), stats.logistic.logpdf(z).sum(-1))
    (g,) = gradients(lambda s: Logistic()(s), (np.zeros((2, D), "float32"),))
    close(g, np.zeros((2, D)))                        # smooth maximum at 0
    with pytest.raises(ValueError, match="scale"):
        Logistic(scale=0.0)


# --------------------------------------------------------------------------------------
# Student-t.

@pytest.mark.parametrize("dof,kappa", [(5.0, 1.0), (1.5, 3.0), (30.0, 0.5)])
def test_student_t_matches_scipy(dof, kappa, rng):
    z, c = data(rng)
    z[0] *= 20.0                                      # a far outlier
    shape = np.eye(D) / kappa
    ref = np.array([stats.multivariate_t(loc=c[i], shape=shape, df=dof).logpdf(z[i])
                    for i in range(N)])
    const = (special.gammaln((dof + D) / 2) - special.gammaln(dof / 2)
             - D / 2 * math.log(dof * math.pi) + D / 2 * math.log(kappa))
    prior = StudentT(dof=dof, precision=kappa)
    close(prior.log_prob(z, c), ref - const)
    ref0 = stats.multivariate_t(loc=np.zeros(D), shape=shape, df=dof).logpdf(z)
    close(prior.log_prob(z), ref0 - const)


def test_student_t_bad_arguments():
    with pytest.raises(ValueError, match="dof"):
        StudentT(dof=0.0)
    with pytest.raises(ValueError, match="precision"):
        StudentT(precision=-1.0)
