"""Tests written for the survivors of ``benchmarks/mutation_check.py`` (issue 20): each
one fails on a mutant that the rest of the suite let through (the mutant's id is named in
the test's comment). Fast, closed-form checks.
"""

import numpy as np
import pytest
from helpers import gradients, to_numpy

from ldm_keras import priors
from ldm_keras.objectives import LDMObjective


def _pair(n=8, d=4, seed=0):
    rng = np.random.default_rng(seed)
    z1 = rng.normal(size=(n, d)).astype("float32")
    return z1, (z1 + 0.3 * rng.normal(size=(n, d))).astype("float32")


@pytest.mark.parametrize("stop_gradient", [True, False])
@pytest.mark.parametrize("symmetric", [True, False])
def test_alignment_gradient_with_and_without_stop_gradient(stop_gradient, symmetric):
    # mutant obj-drop-stop-gradient. Isotropic Gaussian, log p(t | c) = -κ mean_d (t-c)²;
    # loss = -½ (mean log p(z2 | z1) + mean log p(z1 | z2)) (symmetric) or the first term.
    # d loss / d z1 = a·κ (z1 - z2)·2/(N d) with a = ½ per direction through the context
    # (and ½ more through the target without stop-gradient); symmetric=False: only the
    # forward direction, a = 1 (+1 through its target z2 for d/dz2).
    kappa = 2.5
    z1, z2 = _pair()
    n, d = z1.shape
    obj = LDMObjective(prior=priors.get("gaussian", precision=kappa), entropy=None,
                       stop_gradient=stop_gradient, symmetric=symmetric)
    g1, g2 = gradients(lambda a, b: obj(a, b)["loss"], [z1, z2])
    g2 = np.zeros_like(z2) if g2 is None else g2  # no gradient path (TensorFlow: None)
    unit = 2.0 * kappa * (z1 - z2) / (n * d)
    if symmetric:
        a1 = a2 = 0.5 if stop_gradient else 1.0
    else:  # forward only: z1 the context, z2 the target
        a1, a2 = 1.0, (0.0 if stop_gradient else 1.0)
    np.testing.assert_allclose(g1, a1 * unit, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g2, -a2 * unit, rtol=1e-5, atol=1e-7)
    loss = float(to_numpy(obj(z1, z2)["loss"]))
    assert loss == pytest.approx(kappa * np.mean((z1 - z2) ** 2), rel=1e-5)


@pytest.mark.parametrize("mode", ["marginal", "pooled"])
def test_recipe_without_entropy_records_joint_mode(mode):
    # mutant rec-no-entropy-mode: with no entropy estimator the mode means nothing, and the
    # built objective says "joint" whatever `mode` was asked for (a saved config then
    # reads the same for every such choice).
    from ldm_keras import recipes
    from ldm_keras.models.encoders import mlp

    model = recipes.build("simsiam", mlp(4, (), 4, name="enc"), projector=None, mode=mode)
    assert model.objective.entropy is None and model.objective.mode == "joint"
    assert recipes.options("simsiam", mode=mode)["mode"] == mode  # the option itself kept


def test_kalman_innovation_covariance_adds_the_jitter():
    # mutant cell-jitter-sign: S = D P⁻ Dᵀ + diag(σ²_D + jitter); with the default jitter
    # (1e-6) a sign flip is invisible to the filter tests, so a large one here.
    import keras

    from ldm_keras.predictors import KalmanCell

    cell = KalmanCell(state_dim=3, observation_dim=2, jitter=0.25)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    rnn(np.zeros((1, 2, 2), "float32"))  # builds the cell
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 3, 3)).astype("float32")
    prior_cov = a @ a.transpose(0, 2, 1) + np.eye(3, dtype="float32")
    obs_var = np.array([[0.1, 0.3], [0.2, 0.05]], "float32")
    pred, s_mat, _ = cell.observe_step(np.ones((2, 3), "float32"), prior_cov, obs_var)
    d = to_numpy(cell.observation_matrix_value()).astype("float64")
    want = np.einsum("ls,bsk,mk->blm", d, prior_cov, d) \
        + np.stack([np.diag(v + 0.25) for v in obs_var.astype("float64")])
    np.testing.assert_allclose(to_numpy(s_mat), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(pred), np.ones((2, 3)) @ d.T, rtol=1e-6)


def test_continuous_time_clamp_bounds_the_growth_at_max_radius():
    # mutant cell-clamp-shift: F ← F - max(0, log ρ(e^F) - log r) I. A drift 0.5·I
    # (ρ(e^F) = e^0.5) becomes log(1.02)·I, ρ = 1.02 exactly; a drift inside the bound
    # is left alone.
    import math

    from ldm_keras.predictors import KalmanCell

    cell = KalmanCell(state_dim=2, observation_dim=2, dynamics="continuous")
    cell.build((None, 3))
    cell.drift.assign(0.5 * np.eye(2, dtype="float32"))
    rho = float(to_numpy(cell.clamp_spectral_radius(1.02)))
    assert rho == pytest.approx(math.exp(0.5), rel=1e-4)
    np.testing.assert_allclose(to_numpy(cell.drift), math.log(1.02) * np.eye(2), atol=1e-5)
    inside = np.array([[-0.3, 0.2], [-0.2, -0.3]], "float32")
    cell.drift.assign(inside)
    cell.clamp_spectral_radius(1.02)
    np.testing.assert_allclose(to_numpy(cell.drift), inside, atol=1e-7)


def test_zoo_recipe_model_budget_is_the_cap_less_the_encoder(tmp_path, monkeypatch):
    # mutant zoo-budget-plus: load_model gives the recipe's new weights (projector, seed
    # states) the budget cap - (encoder's bytes), the cap being shared by the files and
    # every weight. digits-simclr without its published projector (so its files, 419 kB,
    # stay under the weights, 474 kB; the recipe builds a fresh projector): at
    # cap = encoder + recipe bytes it loads, one byte less is refused, naming the recipe.
    import hashlib
    import json
    import shutil
    from pathlib import Path

    from ldm_keras import recipes, zoo
    from ldm_keras.augment import image_views
    from ldm_keras.zoo import _limits

    name = "digits-simclr"
    packaged = Path(__file__).resolve().parent.parent / "zoo"
    index = json.loads((packaged / "index.json").read_text())
    root = tmp_path / "zoo"
    shutil.copytree(packaged / name, root / name)
    entry = index["entries"][name]
    config = json.loads((root / name / "config.json").read_text())
    del config["components"]["projector"]
    (root / name / "projector.weights.h5").unlink()
    (root / name / "config.json").write_text(json.dumps(config))
    del entry["files"]["projector.weights.h5"]
    data = (root / name / "config.json").read_bytes()
    entry["files"]["config.json"] = {"size": len(data),
                                     "sha256": hashlib.sha256(data).hexdigest()}
    (root / "index.json").write_text(json.dumps({"format": index["format"],
                                                 "entries": {name: entry}}))
    monkeypatch.setenv("LDM_KERAS_ZOO", str(root))
    monkeypatch.delenv(_limits.MAX_BYTES_ENV, raising=False)

    encoder = zoo.load(name)
    enc_bytes = sum(w.nbytes for w in encoder.get_weights())       # float32, counted here
    settings = config["settings"]
    recipe_bytes = _limits.weight_bytes(lambda: recipes.build(
        "simclr", encoder, views=image_views("digits", seed=0), **settings))
    model = recipes.build("simclr", encoder, views=image_views("digits", seed=0), **settings)
    projector = sum(w.nbytes for w in model.projector.get_weights())
    assert projector <= recipe_bytes < projector + 100               # + a few seed states
    files = sum(f["size"] for f in entry["files"].values())
    assert files < enc_bytes + recipe_bytes - 1                      # the files are not the limit
    cap = enc_bytes + recipe_bytes
    assert zoo.load_model(name, max_bytes=cap).projector is not None
    with pytest.raises(zoo.ZooError, match=rf"recipe 'simclr' would allocate "
                       rf"{recipe_bytes} bytes .*above the cap of {recipe_bytes - 1} bytes"):
        zoo.load_model(name, max_bytes=cap - 1)
    assert zoo.load(name, max_bytes=cap - 1) is not None             # the encoder alone fits
