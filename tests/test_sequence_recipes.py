"""Sequence recipes (cpc, jepa, kalman-ssl, kalman-ssl-knn, recurrent-ldm) on every backend."""

import h5py
import keras
import numpy as np
import pytest
from conftest import BACKEND
from helpers import to_numpy

import ldm_keras as ldm
from ldm_keras import jobs
from ldm_keras.data import dot_motion
from ldm_keras.data.datasets import load_sequence_dataset
from ldm_keras.models import CPCLDM, JEPALDM, infonce_over_time
from ldm_keras.models.encoders import mlp

SEQUENCE_RECIPES = ["cpc", "jepa", "kalman-ssl", "kalman-ssl-knn", "recurrent-ldm"]
#: Small networks for the few-step trainings (torch runs the RNN loops eagerly).
SMALL = {"cpc": dict(context_units=8, prediction_steps=2),
         "jepa": dict(units=8, hidden_units=(8,)),
         # the recipe's dynamics warm-up option (1000 steps at full size), scaled to
         # these runs of 12-16 steps: training with it lowers the loss too
         "kalman-ssl": dict(lr_warmup_steps={"dynamics": 6}), "kalman-ssl-knn": {},
         "recurrent-ldm": dict(units=8, hidden_units=())}


def _frames(n=16, t=10):
    return dot_motion.generate("circular", num_sequences=n, length=t, seed=3).frames


def _logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _infonce_reference(p, z, precision, score):
    """Plain NumPy InfoNCE over time: at each step, sequence b's prediction vs all targets."""
    p, z = p.astype("float64"), z.astype("float64")
    if score == "vmf":
        # unit vectors; a zero vector (a dead ReLU encoder) stays 0, as documented (ε floor)
        p = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-12)
        z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    else:
        precision = 1.0
    losses, pos, lse = [], [], []
    for t in range(p.shape[1]):
        s = precision * p[:, t] @ z[:, t].T                  # (B, B)
        pos.append(np.diag(s))
        lse.append(_logsumexp(s, axis=1))
        losses.append(-np.diag(s) + lse[-1])                  # cross-entropy, positive = b
    return float(np.mean(losses)), float(np.mean(pos)), float(-np.mean(lse))


@pytest.mark.parametrize("score", ["vmf", "bilinear"])
def test_infonce_over_time_matches_numpy(rng, score):
    p = rng.normal(size=(6, 4, 5)).astype("float32")
    z = rng.normal(size=(6, 4, 5)).astype("float32")
    loss, align, ent = _infonce_reference(p, z, 7.0, score)
    terms = infonce_over_time(p, z, precision=7.0, score=score)
    a, h = float(to_numpy(terms["alignment"])), float(to_numpy(terms["entropy"]))
    np.testing.assert_allclose(a, align, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, ent, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(-(a + h), loss, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("score", ["vmf", "bilinear"])
def test_cpc_model_loss_is_infonce_over_time_on_its_latents(score):
    x = _frames(6, 7)
    model = CPCLDM(mlp(100, [16], 3, batch_norm=False), context_units=5, prediction_steps=2,
                   score=score, precision=4.0)
    out = model(x)
    z, c = to_numpy(out["latents"]), to_numpy(out["context"])
    ref = []
    for k, head in enumerate(model.heads, start=1):
        w = to_numpy(head.kernel)
        ref.append(_infonce_reference(c[:, :-k] @ w, z[:, k:], 4.0, score)[0])
    logs = model.compute_ldm_loss(x)
    np.testing.assert_allclose(float(to_numpy(logs["loss"])), np.mean(ref), rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match="at least 3 time steps"):
        model.compute_ldm_loss(x[:, :2])


@pytest.mark.parametrize("name", SEQUENCE_RECIPES)
def test_recipe_trains_with_decreasing_loss(name):
    t = 8 if BACKEND == "torch" else 10
    frames = _frames(16, t)
    keras.utils.set_random_seed(0)
    dim = 2 if name.startswith("kalman") else 4
    model = ldm.recipes.build(name, mlp(100, [16], dim, batch_norm=False), **SMALL[name])
    model.compile(optimizer=ldm.recipes.default_optimizer(name, 3e-3))
    epochs = 6 if BACKEND == "torch" else 8
    loss = np.array(model.fit(frames, epochs=epochs, batch_size=8, shuffle=False,
                              verbose=0).history["loss"])
    assert np.all(np.isfinite(loss)), loss
    assert loss[-2:].mean() < loss[:2].mean(), f"{name}: loss did not decrease: {loss}"


def test_recipe_api_lists_describes_and_checks_sequence_recipes():
    for name in SEQUENCE_RECIPES:
        assert name in ldm.recipes.list("sequence") and name in ldm.recipes.list("all")
        assert name not in ldm.recipes.list()  # the default stays the multi-view recipes
        assert ldm.recipes.get(name).kind == "sequence"
        assert name in ldm.recipes.describe(name)
        assert ldm.recipes.callbacks(name, epochs=3) == []
    assert ldm.recipes.get("simclr").kind == "multiview"
    enc = mlp(100, [8], 2, batch_norm=False)
    assert isinstance(ldm.recipes.build("cpc", enc), CPCLDM)
    assert isinstance(ldm.recipes.build("jepa", enc), JEPALDM)
    kal = ldm.recipes.build("kalman-ssl-knn", enc)
    assert isinstance(kal.entropy, ldm.entropy.KNNEntropy)
    assert not kal.predictor.cell.stop_gradient_targets
    assert ldm.recipes.build("kalman-ssl", enc).entropy is None
    for kind, cls in (("kde", ldm.entropy.GaussianKDE), ("logdet", ldm.entropy.GaussianLogDet)):
        assert isinstance(ldm.recipes.build("recurrent-ldm", enc, entropy=kind).entropy, cls)
    # the cosine schedule by its value half-way (step 0 is 1e-4 with or without one):
    # 1e-4 · (0.01 + 0.99 · ½ (1 + cos(π/2)))
    opt = ldm.recipes.default_optimizer("kalman-ssl", decay_steps=100)
    opt.iterations.assign(50)
    np.testing.assert_allclose(float(to_numpy(opt.learning_rate)), 1e-4 * (0.01 + 0.99 * 0.5),
                               rtol=1e-5)
    opt = ldm.recipes.default_optimizer("kalman-ssl")       # no decay_steps: constant
    opt.iterations.assign(50)
    np.testing.assert_allclose(float(to_numpy(opt.learning_rate)), 1e-4, rtol=1e-6)
    with pytest.raises(ValueError, match="entropy"):
        ldm.recipes.build("recurrent-ldm", enc, entropy="vicreg")
    with pytest.raises(ValueError, match="no setting"):
        ldm.recipes.build("cpc", enc, views_per_sample=3)
    with pytest.raises(ValueError, match="takes no `views`"):
        ldm.recipes.build("jepa", enc, views=lambda x: x)


def test_jepa_ema_target_follows_the_online_encoder():
    frames = _frames(8, 6)
    model = JEPALDM(mlp(100, [8], 3, batch_norm=False),
                    predictor=ldm.predictors.RecurrentPredictor(4, variance="constant"),
                    ema_momentum=0.9)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.build(frames.shape)
    before = [to_numpy(w) for w in model.encoder.weights]
    np.testing.assert_allclose(to_numpy(model.target_encoder.weights[0]), before[0])
    model.fit(frames, epochs=1, batch_size=8, verbose=0)
    after = [to_numpy(w) for w in model.encoder.weights]
    assert not np.allclose(after[0], before[0])
    for t, b, a in zip(model.target_encoder.weights, before, after):
        np.testing.assert_allclose(to_numpy(t), 0.9 * b + 0.1 * a, rtol=1e-5, atol=1e-6)
    assert not model.target_encoder.trainable_weights


def test_sequence_models_save_and_reload(tmp_path):
    frames = _frames(4, 6)
    for model in (CPCLDM(mlp(100, [8], 3, batch_norm=False), context_units=4),
                  JEPALDM(mlp(100, [8], 3, batch_norm=False),
                          predictor=ldm.predictors.RecurrentPredictor(4, variance="constant"))):
        out = model(frames)
        path = str(tmp_path / f"{model.name}.keras")
        model.save(path)
        again = keras.saving.load_model(path, safe_mode=True, compile=False)
        for key, value in again(frames).items():
            np.testing.assert_allclose(to_numpy(value), to_numpy(out[key]), atol=1e-5)


def test_bad_sequence_datasets_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        load_sequence_dataset(str(tmp_path / "missing.h5") + ":frames")
    path = tmp_path / "rec.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = np.zeros((40, 5), "float32")
        f["short"] = np.zeros((6, 5), "float32")
    with pytest.raises(ValueError, match="No dataset or group 'nope'.*frames"):
        load_sequence_dataset(f"{path}:nope")
    with pytest.raises(ValueError, match="fewer than the window length 10"):
        load_sequence_dataset(f"{path}:short", window=10)
    with pytest.raises(ValueError, match="dotmotion-circular"):
        load_sequence_dataset("dotmotion-spiral")
    with pytest.raises(ValueError, match="multiview recipe"):
        jobs.train_sequence("simclr", "dotmotion-circular")
    with pytest.raises(ValueError, match="frames do not match the encoder"):
        model = ldm.recipes.build("cpc", mlp(100, [8], 2, batch_norm=False))
        model.compile(optimizer="adam")
        model.fit(np.zeros((4, 6, 64), "float32"), epochs=1, verbose=0)


def test_the_job_trains_recurrent_ldm_for_the_validated_40_epochs(monkeypatch, tmp_path):
    """Without --epochs the recurrent recipe trains as long as its defaults were validated
    (40 epochs, benchmarks/results/robustness.md); the other sequence recipes 20."""
    seen = {}

    class Stop(Exception):
        pass

    def fake_fit(self, x=None, *args, epochs=1, **kwargs):
        seen[type(self).__name__] = epochs
        raise Stop

    monkeypatch.setattr(ldm.models.PredictiveLDM, "fit", fake_fit)
    monkeypatch.setattr(CPCLDM, "fit", fake_fit)
    for recipe in ("recurrent-ldm", "cpc"):
        with pytest.raises(Stop):
            jobs.train_sequence(recipe, "dotmotion-circular", sequences=8, test_sequences=4,
                                verbose=0, out=str(tmp_path / recipe))
    assert seen == {"PredictiveLDM": 40, "CPCLDM": 20}


def test_dotmotion_square_trains_on_its_own_budget_unless_told(monkeypatch, tmp_path):
    """DotMotion square (800 sequences) defaults to batch 8 × 40 epochs
    (``jobs.SEQUENCE_DATASET_DEFAULTS``, benchmarks/robustness/results/kalman/README.md);
    circular keeps batch 32 × 20; explicit ``epochs`` / ``batch_size`` win."""
    seen = []

    class Stop(Exception):
        pass

    def fake_fit(self, x=None, *args, epochs=1, batch_size=None, **kwargs):
        seen.append((epochs, batch_size))
        raise Stop

    monkeypatch.setattr(ldm.models.PredictiveLDM, "fit", fake_fit)
    runs = [("dotmotion-square", {}), ("dotmotion-circular", {}),
            ("dotmotion-square", {"epochs": 3, "batch_size": 16})]
    for k, (dataset, given) in enumerate(runs):
        with pytest.raises(Stop):
            jobs.train_sequence("kalman-ssl", dataset, sequences=64, test_sequences=4,
                                verbose=0, evaluate_untrained=False,
                                out=str(tmp_path / str(k)), **given)
    assert seen == [(40, 8), (20, 32), (3, 16)]


def test_kalman_figure_eight_gets_two_rotating_pairs_unless_told(monkeypatch, tmp_path):
    """The Kalman recipes on DotMotion figure-eight default to L = 3 latents and S = 4
    state coordinates (``jobs.KALMAN_DATASET_SIZES``); circular keeps the ground truth's
    2 and 2; an explicit ``latent_dim`` / ``state_dim`` wins; other recipes are not
    touched."""
    seen = []

    class Stop(Exception):
        pass

    def fake_fit(self, x=None, *args, **kwargs):
        cell = getattr(self.predictor, "cell", None)
        seen.append((int(self.encoder.output_shape[-1]),
                     int(cell.state_dim) if isinstance(cell, ldm.predictors.KalmanCell)
                     else None))
        raise Stop

    monkeypatch.setattr(ldm.models.PredictiveLDM, "fit", fake_fit)
    runs = [("kalman-ssl", "dotmotion-figure-eight", {}),
            ("kalman-ssl-knn", "dotmotion-figure-eight", {}),
            ("kalman-ssl", "dotmotion-circular", {}),
            ("kalman-ssl", "dotmotion-figure-eight", {"latent_dim": 2, "state_dim": 6}),
            ("recurrent-ldm", "dotmotion-figure-eight", {})]
    for k, (recipe, dataset, given) in enumerate(runs):
        with pytest.raises(Stop):
            jobs.train_sequence(recipe, dataset, sequences=8, test_sequences=4, verbose=0,
                                evaluate_untrained=False, out=str(tmp_path / str(k)), **given)
    assert seen == [(3, 4), (3, 4), (2, 2), (2, 6), (8, None)]
