"""LARS against an independent NumPy implementation of You et al. (2017), on every backend."""

import keras
import numpy as np
import pytest
from helpers import to_numpy

import ldm_keras as ldm
from ldm_keras.optimizers import LARS, GroupedOptimizer


class NumpyLARS:
    """Plain NumPy LARS in float64 (Algorithm 1 of You, Gitman & Ginsburg 2017).

    ``weights``: {name: array}; ``decays`` / ``adapts``: {name: bool} (weight decay
    applied, trust ratio applied). ``step(grads, rate)`` updates ``self.w`` in place.
    """

    def __init__(self, weights, momentum, weight_decay, eta, eps, nesterov, decays, adapts):
        self.w = {k: np.array(v, dtype="float64") for k, v in weights.items()}
        self.vel = {k: np.zeros_like(v) for k, v in self.w.items()}
        self.momentum, self.weight_decay, self.eta, self.eps = momentum, weight_decay, eta, eps
        self.nesterov, self.decays, self.adapts = nesterov, decays, adapts

    def step(self, grads, rate):
        for k, w in self.w.items():
            g = np.asarray(grads[k], dtype="float64")
            lam = self.weight_decay if self.decays[k] else 0.0
            local = rate
            if self.adapts[k]:
                wn, gn = np.sqrt(np.sum(w ** 2)), np.sqrt(np.sum(g ** 2))
                if wn > 0 and gn > 0:
                    local = rate * self.eta * wn / (gn + lam * wn + self.eps)
            update = local * (g + lam * w)
            self.vel[k] = self.momentum * self.vel[k] + update
            self.w[k] = w - (self.momentum * self.vel[k] + update if self.nesterov
                             else self.vel[k])
        return self.w


CASES = {
    "wd+momentum": dict(momentum=0.9, weight_decay=0.05, nesterov=False),
    "no-wd": dict(momentum=0.9, weight_decay=0.0, nesterov=False),
    "nesterov": dict(momentum=0.8, weight_decay=0.01, nesterov=True),
    "no-momentum": dict(momentum=0.0, weight_decay=0.02, nesterov=False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_lars_matches_numpy_reference_for_five_steps(case):
    o = CASES[case]
    rng = np.random.default_rng(1)
    init = {"dense/kernel": rng.normal(size=(5, 4)),      # included: decay + trust ratio
            "dense/bias": rng.normal(size=(4,)),          # 1-d: plain momentum SGD
            "head/kernel": rng.normal(size=(4, 3)),       # pattern: excluded from both
            "proj/kernel": rng.normal(size=(3, 2)),       # adaptation excluded only
            "zero/kernel": np.zeros((2, 2))}              # ‖w‖ = 0: trust ratio 1
    variables = [keras.Variable(v.astype("float32"), name=k.split("/")[0] + "_" +
                                k.split("/")[1]) for k, v in init.items()]
    names = list(init)
    opt = LARS(learning_rate=0.5, trust_coefficient=0.02, epsilon=1e-3,
               exclude_from_weight_decay=["head"], exclude_from_layer_adaptation=["head",
                                                                                   "proj"],
               **o)
    grads = [{k: rng.normal(size=v.shape) for k, v in init.items()} for _ in range(5)]
    for step in grads:
        opt.apply([keras.ops.convert_to_tensor(step[k].astype("float32")) for k in names],
                  variables)
    decays = {"dense/kernel": True, "dense/bias": False, "head/kernel": False,
              "proj/kernel": True, "zero/kernel": True}
    adapts = {"dense/kernel": True, "dense/bias": False, "head/kernel": False,
              "proj/kernel": False, "zero/kernel": True}
    ref = NumpyLARS(init, o["momentum"], o["weight_decay"], 0.02, 1e-3, o["nesterov"],
                    decays, adapts)
    for step in grads:
        ref.step(step, 0.5)
    for k, v in zip(names, variables):
        np.testing.assert_allclose(to_numpy(v), ref.w[k], rtol=1e-6, atol=1e-6, err_msg=k)
    # the rules the reference assumed are the optimizer's
    for k, v in zip(names, variables):
        assert opt.uses_weight_decay(v) == (decays[k] and o["weight_decay"] > 0), k
        assert opt.uses_layer_adaptation(v) == adapts[k], k
    # the excluded variables got plain momentum SGD (no decay, no trust ratio)
    b, vel = init["dense/bias"].copy(), 0.0
    for g in grads:
        vel = o["momentum"] * vel + 0.5 * g["dense/bias"]
        b = b - (o["momentum"] * vel + 0.5 * g["dense/bias"] if o["nesterov"] else vel)
    np.testing.assert_allclose(to_numpy(variables[1]), b, rtol=1e-6, atol=1e-6)


def test_lars_with_a_schedule_matches_numpy():
    rng = np.random.default_rng(2)
    init = {"k": rng.normal(size=(6, 3))}
    var = keras.Variable(init["k"].astype("float32"), name="k")
    sched = keras.optimizers.schedules.ExponentialDecay(0.4, decay_steps=1, decay_rate=0.5)
    opt = LARS(learning_rate=sched, momentum=0.9, weight_decay=0.1, trust_coefficient=0.05)
    grads = [{"k": rng.normal(size=(6, 3))} for _ in range(5)]
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(g["k"].astype("float32"))], [var])
    ref = NumpyLARS(init, 0.9, 0.1, 0.05, 1e-8, False, {"k": True}, {"k": True})
    for s, g in enumerate(grads):
        ref.step(g, 0.4 * 0.5 ** s)
    np.testing.assert_allclose(to_numpy(var), ref.w["k"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_lars_inside_the_compiled_fit_step_matches_numpy(nesterov):
    """Full-batch least squares: the gradient is known in closed form."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(32, 4)).astype("float32")
    t = rng.normal(size=(32, 3)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="lin")])
    w0, b0 = (np.asarray(a, "float64") for a in model.get_weights())
    opt = LARS(learning_rate=0.8, momentum=0.9, weight_decay=0.01, trust_coefficient=0.1,
               nesterov=nesterov)
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, t, batch_size=32, epochs=5, shuffle=False, verbose=0)
    # NumPy: loss = mean_{i,j} (x W + b - t)²; grads 2/(N K) xᵀ r and 2/(N K) Σ_i r
    ref = NumpyLARS({"w": w0, "b": b0}, 0.9, 0.01, 0.1, 1e-8, nesterov,
                    {"w": True, "b": False}, {"w": True, "b": False})
    xd, td = x.astype("float64"), t.astype("float64")
    for _ in range(5):
        r = xd @ ref.w["w"] + ref.w["b"] - td
        ref.step({"w": 2.0 / r.size * xd.T @ r, "b": 2.0 / r.size * r.sum(axis=0)}, 0.8)
    w, b = ref.w["w"], ref.w["b"]
    got_w, got_b = model.get_weights()
    np.testing.assert_allclose(got_w, w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_b, b, rtol=1e-6, atol=1e-6)


def test_default_exclusions_cover_biases_and_normalisation():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.BatchNormalization(), keras.layers.Flatten(),
                              keras.layers.LayerNormalization(), keras.layers.Dense(3)])
    opt = LARS(weight_decay=1e-4)
    for v in model.trainable_variables:
        one_d = len(v.shape) <= 1
        assert opt.uses_weight_decay(v) is (not one_d), v.path
        assert opt.uses_layer_adaptation(v) is (not one_d), v.path
    everything = LARS(weight_decay=1e-4, exclude_1d=False)
    assert all(everything.uses_weight_decay(v) for v in model.trainable_variables)
    by_name = LARS(weight_decay=1e-4, exclude_1d=False, exclude_from_weight_decay="bias",
                   exclude_from_layer_adaptation=[])
    for v in model.trainable_variables:
        assert by_name.uses_weight_decay(v) is (v.name != "bias"), v.path
        assert by_name.uses_layer_adaptation(v), v.path
    assert not LARS(weight_decay=0.0).uses_weight_decay(model.trainable_variables[0])
    # Keras' own hook: excluded from the decay, still adapted
    hooked = LARS(weight_decay=1e-4)
    dense_kernel = model.layers[-1].kernel
    hooked.exclude_from_weight_decay(var_list=[model.layers[0].kernel], var_names=["dense"])
    assert not hooked.uses_weight_decay(dense_kernel)
    assert not hooked.uses_weight_decay(model.layers[0].kernel)
    assert hooked.uses_layer_adaptation(dense_kernel)
    assert hooked.uses_layer_adaptation(model.layers[0].kernel)


def test_lars_saves_and_reloads_under_safe_mode(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(16, 4)).astype("float32")
    t = rng.normal(size=(16, 2)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    opt = LARS(0.3, momentum=0.8, weight_decay=1e-3, trust_coefficient=0.01, nesterov=True,
               exclude_from_weight_decay=["kernel$"], exclude_1d=False)
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, t, batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.optimizer, LARS)
    assert loaded.optimizer.get_config() == opt.get_config()
    for a, b in zip(loaded.optimizer.variables, opt.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    # training continues identically from the reloaded state
    model.fit(x, t, batch_size=8, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, t, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    again = LARS.from_config(opt.get_config())
    assert again.get_config() == opt.get_config()
    assert keras.optimizers.get(keras.optimizers.serialize(opt)).get_config() == \
        opt.get_config()


def test_lars_with_per_group_learning_rates_and_an_ldm_model():
    grouped = GroupedOptimizer(LARS(0.2, weight_decay=1e-4), {"fast": 10.0})
    assert all(isinstance(o, LARS) for o in grouped._optimizers)
    np.testing.assert_allclose(float(to_numpy(grouped._optimizers[1].learning_rate)), 2.0)
    assert grouped._optimizers[1].weight_decay == 1e-4
    # one compiled step of an LDM model on pairs of views
    rng = np.random.default_rng(5)
    x1 = rng.normal(size=(16, 6)).astype("float32")
    x2 = (x1 + 0.1 * rng.normal(size=x1.shape)).astype("float32")
    model = ldm.recipes.build("vicreg-ldm", ldm.models.encoders.mlp(6, [8], 4),
                              projector=None)
    model.compile(optimizer=LARS(0.5, weight_decay=1e-4, trust_coefficient=0.01))
    before = [to_numpy(v).copy() for v in model.encoder.trainable_variables]
    hist = model.fit((x1, x2), batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    after = [to_numpy(v) for v in model.encoder.trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("kwargs, match", [
    (dict(momentum=1.0), "momentum"),
    (dict(momentum=-0.1), "momentum"),
    (dict(weight_decay=-1e-3), "weight_decay"),
    (dict(trust_coefficient=0.0), "trust_coefficient"),
    (dict(epsilon=-1.0), "epsilon"),
    (dict(exclude_from_weight_decay=["("]), "exclude_from_weight_decay"),
    (dict(exclude_from_layer_adaptation=[3]), "exclude_from_layer_adaptation"),
    (dict(exclude_from_weight_decay=5), "exclude_from_weight_decay"),
])
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LARS(**kwargs)


def test_every_optimizer_of_the_package_is_in_ldm_keras_optimizers():
    # the optimizers of ldm_keras.models stay where they were and are found here too
    import ldm_keras.models.optimizers as old

    public = {name for name, obj in vars(old).items()
              if isinstance(obj, type) and obj.__module__ == old.__name__
              and not name.startswith("_")}
    assert public == {"GroupedOptimizer", "ScaledSchedule"}
    for name in public:
        assert getattr(ldm.optimizers, name) is getattr(old, name)
        assert getattr(ldm.models, name) is getattr(old, name)
        assert name in ldm.optimizers.__all__
    assert ldm.optimizers.LARS is LARS


# -- the jobs' optimizers: LARS for the CIFAR recipe, Adam for digits -------------------
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_the_cifar_jobs_compile_with_lars(dataset):
    from ldm_keras import jobs

    opt = jobs.job_optimizer("simclr", dataset, steps=1000)
    assert isinstance(opt, LARS), f"{dataset} fell back to {type(opt).__name__}"
    assert opt.momentum == 0.9 and opt.trust_coefficient == 0.001 and opt.exclude_1d
    assert float(opt.weight_decay) == pytest.approx(1e-6)
    sched = opt._learning_rate
    assert isinstance(sched, keras.optimizers.schedules.CosineDecay)
    assert sched.initial_learning_rate == pytest.approx(0.3) and sched.decay_steps == 1000
    # biases and normalisation parameters: neither weight decay nor trust ratio
    kernel, bias = keras.Variable(np.ones((3, 4)), name="kernel"), keras.Variable(
        np.ones(4), name="bias")
    assert opt.uses_weight_decay(kernel) and opt.uses_layer_adaptation(kernel)
    assert not opt.uses_weight_decay(bias) and not opt.uses_layer_adaptation(bias)
    assert jobs.describe_optimizer(opt).startswith("LARS (lr 0.3, CosineDecay over 1000")


def test_the_digits_jobs_keep_adam():
    from ldm_keras import jobs

    for dataset in ("digits", "digits-pairs"):
        opt = jobs.job_optimizer("simclr", dataset)
        assert isinstance(opt, keras.optimizers.Adam) and not isinstance(opt, LARS)
        assert float(to_numpy(opt.learning_rate)) == pytest.approx(2e-3)
        assert jobs.describe_optimizer(opt) == "Adam (lr 0.002)"
    assert isinstance(jobs.job_optimizer("simclr", "my.h5", shape=(8, 8, 1)),
                      keras.optimizers.Adam)
    with pytest.raises(ValueError, match="dataset"):
        jobs.job_optimizer("simclr", "my.h5")
    with pytest.raises(ValueError, match="optimizer"):
        ldm.recipes.default_optimizer("simclr", optimizer="sgd")
    with pytest.raises(ValueError, match="weight_decay"):
        ldm.recipes.default_optimizer("simclr", weight_decay=1e-4)


def test_train_multiview_on_cifar_trains_with_lars(monkeypatch, tmp_path):
    # one epoch of two steps on a tiny CIFAR-shaped fixture: the compiled optimizer is
    # LARS, it moved the kernels, and run.json / the result record it
    from ldm_keras import jobs
    from ldm_keras.models.encoders import conv_encoder

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 32, 32, 3)).astype("float32")
    y = np.arange(64) % 10
    monkeypatch.setattr(jobs, "load_image_dataset", lambda name, seed=0: ((x, y), (x, y)))
    monkeypatch.setattr(jobs, "evaluate_encoder", lambda *a, **k: {"probe_full": 0.0})
    monkeypatch.setitem(jobs.DATASETS, "cifar10", {
        **jobs.DATASETS["cifar10"], "encoder": lambda s: conv_encoder(s, dim=8)})
    result = jobs.train_multiview("simclr", "cifar10", epochs=1, batch_size=32,
                                  out=str(tmp_path / "run"), verbose=0, projector=(16,))
    opt = result["model"].optimizer
    assert isinstance(opt, LARS), f"CIFAR trained with {type(opt).__name__}"
    assert int(to_numpy(opt.iterations)) == 2
    assert opt._learning_rate.decay_steps == 2   # cosine over the whole run
    assert result["optimizer"].startswith("LARS (lr 0.3")
    import json

    with open(tmp_path / "run" / "run.json") as f:
        assert json.load(f)["optimizer"] == result["optimizer"]
