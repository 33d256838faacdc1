"""MultiViewLDM, LDMObjective and GroupedOptimizer on the active backend."""

import os
import tempfile

import keras
import numpy as np
import pytest
from helpers import assert_allclose, gradients, to_numpy

import ldm_keras as ldm
from ldm_keras.models.encoders import conv_encoder


def _digits(n=256):
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:n] / 16.0).astype("float32")[..., None], d.target[:n]


def _cheap_views():
    """Noise-only views: quick to compile, enough for few-step training tests."""
    return ldm.augment.image_views("digits", seed=0, crop=None, affine=None, dropout=None,
                                   noise={"p": 1.0, "stddev": 0.2})


def _infonce(z1, z2, tau):
    """Plain NumPy InfoNCE of z1 against z2 (rows normalised), mean over the batch."""
    a = z1 / np.linalg.norm(z1, axis=1, keepdims=True)
    b = z2 / np.linalg.norm(z2, axis=1, keepdims=True)
    s = a @ b.T / tau
    m = s.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(s - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(lse - np.diag(s)))


def test_simclr_objective_is_symmetric_infonce(rng):
    z1 = rng.normal(size=(32, 16)).astype("float32")
    z2 = (z1 + 0.3 * rng.normal(size=(32, 16))).astype("float32")
    model = ldm.recipes.build("simclr", conv_encoder((8, 8, 1)), projector=None)
    out = model.objective(z1, z2)
    ref = 0.5 * (_infonce(z1, z2, 0.2) + _infonce(z2, z1, 0.2))
    np.testing.assert_allclose(float(to_numpy(out["loss"])), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["joint", "marginal", "pooled"])
def test_objective_modes_match_estimator(rng, mode):
    z1 = rng.normal(size=(64, 4)).astype("float32")
    z2 = (z1 + 0.5 * rng.normal(size=(64, 4))).astype("float32")
    est = ldm.entropy.GaussianLogDet()
    obj = ldm.LDMObjective(ldm.priors.IsotropicGaussian(2.0), est, entropy_weight=0.7, mode=mode)
    out = {k: float(to_numpy(v)) for k, v in obj(z1, z2).items()}

    def h(z):  # closed-form Gaussian entropy of the sample covariance (jitter ignored)
        c = np.cov(z, rowvar=False)
        return 0.5 * np.linalg.slogdet(2 * np.pi * np.e * c)[1]

    ref_h = {"joint": h(np.hstack([z1, z2])), "marginal": h(z1) + h(z2),
             "pooled": 2 * h(np.vstack([z1, z2]))}[mode]
    ref_a = -2.0 * np.mean((z1 - z2) ** 2)
    np.testing.assert_allclose(out["entropy"], ref_h, rtol=1e-3)
    np.testing.assert_allclose(out["alignment"], ref_a, rtol=1e-5)
    np.testing.assert_allclose(out["loss"], -(ref_a + 0.7 * ref_h), rtol=1e-3)


def test_stop_gradient_blocks_target_gradient(rng):
    z1 = rng.normal(size=(8, 4)).astype("float32")
    z2 = rng.normal(size=(8, 4)).astype("float32")
    obj = ldm.LDMObjective(ldm.priors.IsotropicGaussian(1.0), None, stop_gradient=True,
                           symmetric=False)
    g1, g2 = gradients(lambda a, b: obj(a, b)["loss"], (z1, z2))
    # loss = κ mean_d (sg(z2) - z1)² averaged over the batch: d/dz1 = -2κ (z2 - z1)/(N d)
    np.testing.assert_allclose(g1, -2.0 * (z2 - z1) / (8 * 4), rtol=1e-5, atol=1e-7)
    assert g2 is None or np.allclose(g2, 0.0)


def test_objective_rejects_bad_input(rng):
    obj = ldm.LDMObjective(ldm.priors.IsotropicGaussian(1.0), ldm.entropy.GaussianKDE())
    with pytest.raises(ValueError, match="same shape"):
        obj(np.zeros((8, 4), "float32"), np.zeros((8, 5), "float32"))
    with pytest.raises(ValueError, match="rank-2"):
        obj(np.zeros((8,), "float32"), np.zeros((8,), "float32"))
    with pytest.raises(ValueError, match="mode"):
        ldm.LDMObjective(ldm.priors.IsotropicGaussian(1.0), mode="both")


@pytest.mark.parametrize("recipe", sorted(ldm.recipes.names("multiview")))
def test_each_recipe_trains_on_digits(recipe):
    x, _ = _digits(256)
    keras.utils.set_random_seed(1)
    model = ldm.recipes.build(recipe, conv_encoder((8, 8, 1), filters=(8,), dim=16),
                              views=_cheap_views())
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    hist = model.fit(x, epochs=6, batch_size=128, verbose=0,
                     callbacks=ldm.recipes.callbacks(recipe, 6))
    loss = hist.history["loss"]
    assert set(hist.history) >= {"loss", "alignment", "entropy"}
    assert np.all(np.isfinite(loss))
    assert np.mean(loss[-2:]) < loss[0], f"{recipe}: loss did not decrease: {loss}"
    assert model.predict(x[:5], verbose=0).shape == (5, 16)


def test_byol_target_is_ema_and_gets_no_gradient():
    x, _ = _digits(64)
    model = ldm.recipes.build("byol", conv_encoder((8, 8, 1), filters=(8,), dim=16),
                              views=_cheap_views(), ema_momentum=0.9)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.build(x.shape)
    target_ids = {id(v) for v in model.target_weights()}
    assert not target_ids & {id(v) for v in model.trainable_variables}
    # started as an exact copy and normalising by the batch's statistics in training, the
    # target network gives the online network's training-mode embedding
    assert_allclose(model._target_embed(x, True), model.embed(x, training=True), 1e-4, 1e-5)
    before_t = [to_numpy(v.value).copy() for v in model.target_weights()]
    model.fit(x, epochs=1, batch_size=64, verbose=0)  # exactly one step
    after_t = [to_numpy(v.value) for v in model.target_weights()]
    online = [to_numpy(v.value) for v in model.online_weights()]
    changed = 0
    for b, a, o in zip(before_t, after_t, online):
        np.testing.assert_allclose(a, 0.9 * b + 0.1 * o, rtol=1e-5, atol=1e-6)
        changed += not np.allclose(a, b)
    assert changed > 0


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_grouped_optimizer_multiplies_learning_rate(rng, opt_name):
    """One step: the 'head' group moves `mult` times as far as plain SGD/Adam would."""

    class Tiny(ldm.models.LDMModel):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.a = keras.layers.Dense(3, use_bias=False)
            self.b = keras.layers.Dense(3, use_bias=False)

        def build(self, shape):
            self.a.build(shape)
            self.b.build(shape)
            self.built = True

        def call(self, x):
            return self.a(x) + self.b(x)

        def variable_groups(self):
            return {"head": self.b.trainable_variables}

        def compute_ldm_loss(self, x, training=False):
            loss = keras.ops.mean(keras.ops.square(self(x) - 1.0))
            return {"loss": loss, "alignment": -loss, "entropy": 0.0 * loss}

    x = rng.normal(size=(16, 4)).astype("float32")
    model = Tiny()
    model.build(x.shape)
    w0a, w0b = to_numpy(model.a.kernel.value).copy(), to_numpy(model.b.kernel.value).copy()
    ga, gb = gradients(lambda xx: model.compute_ldm_loss(xx)["loss"], (x,),
                       [model.a.kernel, model.b.kernel])[1:]
    lr, mult = 0.01, 10.0
    opt = keras.optimizers.SGD(lr) if opt_name == "sgd" else keras.optimizers.Adam(lr)
    model.compile(optimizer=opt, lr_multipliers={"head": mult})
    model.fit(x, epochs=1, batch_size=16, verbose=0)
    if opt_name == "sgd":
        step_a, step_b = lr * ga, lr * mult * gb
    else:  # Adam's first step: m̂ = g, v̂ = g², update = lr · g / (|g| + ε)
        eps = 1e-7
        step_a = lr * ga / (np.abs(ga) + eps)
        step_b = lr * mult * gb / (np.abs(gb) + eps)
    np.testing.assert_allclose(to_numpy(model.a.kernel.value), w0a - step_a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(to_numpy(model.b.kernel.value), w0b - step_b, rtol=1e-4, atol=1e-6)


def test_unknown_group_multiplier_is_an_error(rng):
    model = ldm.recipes.build("plane-kde", conv_encoder((8, 8, 1), filters=(8,), dim=16),
                              views=_cheap_views())
    with pytest.raises(ValueError, match=r"`lr_multipliers` names unknown variable group "
                                         r"\['dynamics'\]: expected group names among "
                                         r"\['default'\]"):
        model.compile(optimizer="adam", lr_multipliers={"dynamics": 10.0})  # not at fit


def _sources(x):
    yield "numpy", x
    import tensorflow as tf

    yield "tf.data", tf.data.Dataset.from_tensor_slices(x).batch(64)

    class Seq(keras.utils.PyDataset):
        def __len__(self):
            return len(x) // 64

        def __getitem__(self, i):
            return x[i * 64:(i + 1) * 64]

    yield "PyDataset", Seq()
    import torch

    yield "torch DataLoader", torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x)), batch_size=64)


def test_fit_accepts_common_data_sources():
    x, _ = _digits(128)
    for name, data in _sources(x):
        model = ldm.recipes.build("plane-kde", conv_encoder((8, 8, 1), filters=(8,), dim=16),
                                  views=_cheap_views())
        model.compile(optimizer="adam")
        kw = {"batch_size": 64} if name == "numpy" else {}
        hist = model.fit(data, epochs=1, verbose=0, **kw)
        assert np.isfinite(hist.history["loss"][0]), name


def test_pairs_without_views_and_evaluate(rng):
    x, _ = _digits(128)
    x2 = np.clip(x + 0.05 * rng.normal(size=x.shape), 0, 1).astype("float32")
    model = ldm.recipes.build("vicreg-ldm", conv_encoder((8, 8, 1), filters=(8,), dim=16))
    model.compile(optimizer="adam")
    model.fit((x, x2), epochs=1, batch_size=64, verbose=0)
    logs = model.evaluate((x, x2), batch_size=64, verbose=0, return_dict=True)
    assert set(logs) >= {"loss", "alignment", "entropy"}
    with pytest.raises(ValueError, match="no `views`"):
        model.fit(x, epochs=1, batch_size=64, verbose=0)


def test_model_save_and_reload_safe_mode(rng):
    x, _ = _digits(64)
    model = ldm.recipes.build("byol", conv_encoder((8, 8, 1), filters=(8,), dim=16),
                              views=_cheap_views())
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        model.save(path)
        again = keras.saving.load_model(path, safe_mode=True)
    assert_allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), 1e-5, 1e-6)
    assert again.ema_momentum == model.ema_momentum


def test_unknown_recipe_lists_known_ones():
    with pytest.raises(ValueError, match="Known recipes") as err:
        ldm.recipes.build("simclrr", conv_encoder((8, 8, 1)))
    assert "simclr" in str(err.value)


def test_input_shape_mismatch_fails_before_training():
    model = ldm.recipes.build("simclr", conv_encoder((8, 8, 1), filters=(8,), dim=16),
                              views=_cheap_views())
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="do not match the encoder"):
        model.fit(np.zeros((64, 10, 10, 1), "float32"), epochs=1, batch_size=32, verbose=0)


def test_batch_too_small_for_knn_fails_before_training():
    model = ldm.recipes.build("plane-knn", conv_encoder((8, 8, 1), filters=(8,), dim=16),
                              views=_cheap_views())
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="at least"):
        model.fit(_digits(64)[0], epochs=1, batch_size=3, verbose=0)


def test_ema_target_normalises_by_batch_statistics_in_training(rng):
    """``call_target``: in training a frozen target's BatchNormalization uses the batch's
    mean and variance (NumPy formula, 1e-4), as the online network does, not its moving
    averages; the averages and the trainable flag are left as they were, and the target's
    variables stay out of the optimizer. Outside training: the moving averages."""
    from ldm_keras.models.ema import call_target, frozen_copy

    online = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                               keras.layers.BatchNormalization(epsilon=1e-3)])
    target = frozen_copy(online)
    target.build((None, 3))
    target.set_weights(online.get_weights())
    bn = target.layers[-1]
    bn.moving_mean.assign(np.full(4, 5.0, "float32"))  # far from the batch's statistics
    x = rng.normal(size=(16, 3)).astype("float32")
    w, b = (to_numpy(v) for v in target.layers[0].weights)
    h = x @ w + b
    want = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-3)
    assert_allclose(call_target(target, x, training=True), want, 1e-4, 1e-4)
    np.testing.assert_allclose(to_numpy(bn.moving_mean), 5.0)
    np.testing.assert_allclose(to_numpy(bn.moving_variance), 1.0)
    assert not bn.trainable and not target.trainable_variables
    frozen = (h - 5.0) / np.sqrt(1.0 + 1e-3)
    assert_allclose(call_target(target, x, training=False), frozen, 1e-4, 1e-4)
    assert_allclose(target(x, training=True), frozen, 1e-4, 1e-4)  # a plain call: averages
