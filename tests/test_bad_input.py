"""Bad input fails early with a clear error; non-finite steps follow the documented policy.

Every row of the table in docs/reliability.md is a case here. The error messages are
asserted on, so that each names what was expected.
"""

import json
import zipfile

import keras
import numpy as np
import pytest

import ldm_keras as ldm
from ldm_keras import cli
from ldm_keras.models.base import NonFiniteStepError, WeightsFileError
from ldm_keras.models.encoders import mlp

DIM = 6


def _pairs(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=(n, DIM)).astype("float32")
    return x1, (x1 + 0.1 * rng.normal(size=x1.shape)).astype("float32")


def _model(recipe="plane-kde", projector=(8, 4), build=True, **kw):
    model = ldm.recipes.build(recipe, mlp(DIM, [8], 4), projector=projector, **kw)
    if build:
        model.build(((None, DIM), (None, DIM)))
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small saved model: its .keras archive (+ zip members) and .weights.h5 file."""
    d = tmp_path_factory.mktemp("saved")
    model = _model()
    model.compile("adam")
    model.save(d / "m.keras")
    model.save_weights(d / "m.weights.h5")
    with zipfile.ZipFile(d / "m.keras") as z:
        members = {n: z.read(n) for n in z.namelist()}
    return d, model, members


def _edited_keras(saved, name, edit):
    """Write a copy of the saved .keras archive whose config.json is ``edit(config)``."""
    d, _, members = saved
    config = json.loads(members["config.json"])
    edit(config)
    path = d / f"{name}.keras"
    with zipfile.ZipFile(path, "w") as z:
        for member, blob in members.items():
            z.writestr(member, json.dumps(config) if member == "config.json" else blob)
    return path


def _truncated(saved, src, dst):
    d = saved[0]
    blob = (d / src).read_bytes()
    (d / dst).write_bytes(blob[: len(blob) // 2])
    return d / dst


def _fit(model, data, batch_size=8):
    model.compile("adam")
    return model.fit(data, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)


x1, x2 = _pairs()


def _kf(**cell):
    return ldm.predictors.KalmanFilter(ldm.predictors.KalmanCell(3, **cell))


def _seq(n=2, t=5, f=3):
    return np.zeros((n, t, f), "float32")


def _sequence_fit(model, x):
    model.compile("adam")
    return model.fit(x, batch_size=8, epochs=1, verbose=0)


def _predictive():
    model = ldm.models.PredictiveLDM(mlp(4, [8], 3), _kf())
    model.build((None, 5, 4))
    return model


def _recording(saved, state_rows, frames_rows=100):
    """An HDF5 recording ``file.h5:frames:state`` whose state has ``state_rows`` rows."""
    import h5py

    path = saved[0] / f"rec{state_rows}.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = np.zeros((frames_rows, 3), "float32")
        f["state"] = np.zeros((state_rows, 2), "float32")
    return ldm.data.datasets.load_sequence_dataset(f"{path}:frames:state", window=10)

CASES = {
    # -- tensors given to estimators and priors -----------------------------------------
    "estimator wrong rank": (
        lambda s: ldm.entropy.GaussianKDE()(np.ones(5, "float32")), r"rank-2 tensor"),
    "estimator string dtype": (
        lambda s: ldm.entropy.GaussianKDE()(np.array([["a", "b"], ["c", "d"]])),
        r"`z` must hold real numbers .*received dtype str"),
    "prior complex context": (
        lambda s: ldm.priors.IsotropicGaussian()(
            np.ones((4, 2), "float32"), context=np.ones((4, 2), complex)),
        r"`context` must hold real numbers .*complex"),
    "prior wrong rank": (
        lambda s: ldm.priors.VonMisesFisher()(np.ones(3, "float32"), context=np.ones(3)),
        r"rank-2 tensor of shape \(batch, features\)"),
    "mismatched view latents": (
        lambda s: ldm.LDMObjective(ldm.priors.IsotropicGaussian(), ldm.entropy.GaussianKDE())(
            np.ones((8, 4), "float32"), np.ones((8, 3), "float32")),
        r"must have the same shape"),
    "k-NN with k >= N": (
        lambda s: ldm.entropy.KNNEntropy(k=5)(np.ones((5, 2), "float32")),
        r"at least 6 samples .*k=5.*received a batch of 5"),
    # -- data given to fit --------------------------------------------------------------
    "views of different width": (
        lambda s: _fit(_model(), (x1, x2[:, :5])), r"expected shape=\(None, 6\)"),
    "three views": (
        lambda s: _fit(_model(), (x1, x2, x1)), r"pair \(x1, x2\) of views"),
    "data of wrong rank": (
        lambda s: _fit(_model(build=False), (x1[..., None], x2[..., None])),
        r"encoder expects inputs of shape \(None, 6\)"),
    "empty dataset": (
        lambda s: _fit(_model(), (x1[:0], x2[:0])), r"empty dataset: expected at least one"),
    "batch too small for k-NN": (
        lambda s: _fit(_model("plane-knn"), (x1, x2), batch_size=3),
        r"batches of at least 4 samples .*batch_size=3"),
    "sequence with one frame": (
        lambda s: ldm.models.PredictiveLDM(
            mlp(3, [4], 2), ldm.predictors.KalmanFilter(ldm.predictors.KalmanCell(2))
        ).build((None, 1, 3)), r"at least 2 time steps; received T=1"),
    "recording targets shorter than frames": (
        lambda s: _recording(s, 60),
        r"targets 'state' have 60 rows but frames 'frames' have 100 time steps; expected "
        r"one row of targets per frame"),
    "recording targets longer than frames": (
        lambda s: _recording(s, 120), r"targets 'state' have 120 rows but frames 'frames' "
                                      r"have 100 time steps"),
    "window targets shorter than series": (
        lambda s: ldm.data.windows([np.zeros((10, 3)), np.zeros((12, 3))], 5,
                                   targets=[np.zeros((10, 2)), np.zeros((7, 2))]),
        r"`targets` series 1 has 7 rows .* but `series` series 1 has 12 time steps"),
    # -- names and hyperparameters ------------------------------------------------------
    "unknown recipe": (
        lambda s: ldm.recipes.build("simclrr", mlp(DIM, [8], 4)),
        r"Unknown recipe 'simclrr'\. Did you mean \['simclr'\]"),
    "negative precision": (
        lambda s: ldm.priors.VonMisesFisher(precision=-1.0),
        r"`precision` must be a finite number > 0; received -1\.0"),
    "k = 0": (lambda s: ldm.entropy.KNNEntropy(k=0), r"`k` must be a positive integer"),
    "agreement p outside (0.1, 1)": (
        lambda s: ldm.priors.CategoricalPair(10, agreement=1.5),
        r"`agreement` must lie in the open interval \(0\.1, 1\); received 1\.5"),
    "EMA momentum 1": (
        lambda s: _model("byol", predictor=(8,), ema_momentum=1.0),
        r"`ema_momentum` must be in \[0, 1\)"),
    "unknown non-finite policy": (
        lambda s: ldm.models.MultiViewLDM(mlp(DIM, [8], 4), prior=ldm.priors.IsotropicGaussian(),
                                          nonfinite="sometimes"),
        r"`nonfinite` must be one of \['ignore', 'raise', 'skip'\]"),
    # -- wrong ranks and shapes for every model ------------------------------------------
    "multi-view predict of wrong rank": (
        lambda s: _model().predict(x1[..., None], verbose=0),
        r"encoder expects inputs of shape \(None, 6\), received shape \(16, 6, 1\)"),
    "multi-view predict of wrong width": (
        lambda s: _model().predict(x1[:, :5], verbose=0), r"expected shape=\(None, 6\)"),
    "PredictiveLDM fit on (batch, features)": (
        lambda s: _sequence_fit(_predictive(), np.zeros((8, 4), "float32")),
        r"PredictiveLDM takes sequences of shape \(batch, time, \*frame_shape\); received "
        r"shape \(8, 4\)"),
    "PredictiveLDM predict on (batch, features)": (
        lambda s: _predictive().predict(np.zeros((8, 4), "float32"), verbose=0),
        r"PredictiveLDM takes sequences .*received shape \(8, 4\)"),
    "PredictiveLDM frames of wrong width": (
        lambda s: _sequence_fit(_predictive(), _seq(8, 5, 6)),
        r"the encoder expects frames of shape \(4,\), the sequences have frames of shape "
        r"\(6,\)"),
    "CPCLDM fit on (batch, features)": (
        lambda s: _sequence_fit(ldm.models.CPCLDM(mlp(4, [8], 3)), np.zeros((8, 4), "float32")),
        r"CPCLDM takes sequences of shape \(batch, time, \*frame_shape\)"),
    "JEPALDM fit on (batch, features)": (
        lambda s: _sequence_fit(ldm.models.JEPALDM(mlp(4, [8], 3)), np.zeros((8, 4), "float32")),
        r"JEPALDM takes sequences of shape \(batch, time, \*frame_shape\)"),
    "LinearICA fit on sequences": (
        lambda s: _sequence_fit(ldm.models.LinearICA(4), _seq(8, 4, 2)),
        r"LinearICA takes data of shape \(samples, features\) \(use temporal=True"),
    "KalmanFilter input of rank 2": (
        lambda s: _kf()(np.zeros((5, 3), "float32")),
        r"KalmanFilter expects a rank-3 input of shape \(batch, time, features\); received "
        r"shape \(5, 3\)"),
    "KalmanFilter latents of wrong width": (
        lambda s: _kf()(_seq(f=4)), r"observation_dim=3 .*expects 3 features; received shape "
                                    r"\(2, 5, 4\)"),
    "encoder/projector width 0": (
        lambda s: mlp(0, [8], 4), r"`input_dim` must be an integer >= 1; received 0"),
    "hidden width 0": (
        lambda s: mlp(4, [8, 0], 4), r"`widths\[1\]` must be an integer >= 1; received 0"),
    # -- KalmanCell / KalmanFilter arguments ----------------------------------------------
    "KalmanCell state_dim 0": (
        lambda s: ldm.predictors.KalmanCell(0), r"`state_dim` must be an integer >= 1; received 0"),
    "KalmanCell state_dim 2.5": (
        lambda s: ldm.predictors.KalmanCell(2.5), r"`state_dim` must be an integer >= 1; "
                                                  r"received 2\.5"),
    "KalmanCell negative observation noise": (
        lambda s: ldm.predictors.KalmanCell(3, observation_noise_init=-0.1),
        r"`observation_noise_init` must be a finite number > 0; received -0\.1"),
    "KalmanCell NaN process noise": (
        lambda s: ldm.predictors.KalmanCell(3, process_noise_init=float("nan")),
        r"`process_noise_init` must be a finite number > 0; received nan"),
    "KalmanCell unknown dynamics": (
        lambda s: ldm.predictors.KalmanCell(3, dynamics="cont"),
        r"`dynamics` must be one of \['continuous', 'discrete'\]; received 'cont'"),
    "KalmanCell innovation_history -1": (
        lambda s: ldm.predictors.KalmanCell(3, innovation_history=-1),
        r"`innovation_history` must be an integer >= 0; received -1"),
    "KalmanFilter cell not a cell": (
        lambda s: ldm.predictors.KalmanFilter("kalman"),
        r"`cell` must be a KalmanCell or a dict of its arguments; received 'kalman'"),
    "KalmanFilter float mask": (
        lambda s: _kf()(_seq(), mask=np.ones((2, 5), "float32")),
        r"`mask` must be a boolean tensor of shape \(batch, time\) .*received dtype float32"),
    "KalmanFilter mask of wrong shape": (
        lambda s: _kf()(_seq(), mask=np.ones((2, 4), bool)),
        r"`mask` must have shape \(batch, time\) = \(2, 5\); received shape \(2, 4\)"),
    "KalmanFilter negative dt": (
        lambda s: _kf(dynamics="continuous")(_seq(), dt=-np.ones((2, 5), "float32")),
        r"`dt` \(time gaps\) must be finite and >= 0; received values in \[-1, -1\]"),
    "KalmanFilter NaN dt": (
        lambda s: _kf(dynamics="continuous")(_seq(), dt=np.full((2, 5), np.nan, "float32")),
        r"`dt` \(time gaps\) must be finite and >= 0; .*10 non-finite"),
    "KalmanFilter dt of wrong shape": (
        lambda s: _kf(dynamics="continuous")(_seq(), dt=np.ones((2, 4), "float32")),
        r"`dt` must be a number, a \(time,\) = \(5,\) or a \(batch, time\) = \(2, 5\) "
        r"tensor .*received shape \(2, 4\)"),
    "KalmanFilter dt with a discrete cell": (
        lambda s: _kf()(_seq(), dt=np.ones((2, 5), "float32")),
        r"Time gaps `dt` need a continuous-time cell"),
    "PredictiveLDM predictor not a filter": (
        lambda s: ldm.models.PredictiveLDM(mlp(4, [8], 3), "kalman"),
        r"`predictor` must be a KalmanFilter or a RecurrentPredictor; received 'kalman'"),
    "CPCLDM prediction_steps 0": (
        lambda s: ldm.models.CPCLDM(mlp(4, [8], 3), prediction_steps=0),
        r"`prediction_steps` must be an integer >= 1; received 0"),
    "CPCLDM unknown context cell": (
        lambda s: ldm.models.CPCLDM(mlp(4, [8], 3), context_cell="rnn"),
        r"`context_cell` must be one of \['gru', 'lstm'\]; received 'rnn'"),
    "JEPALDM momentum 1": (
        lambda s: ldm.models.JEPALDM(mlp(4, [8], 3), ema_momentum=1.0),
        r"`ema_momentum` must be in \[0, 1\); received 1\.0"),
    "LinearICA n_components 0": (
        lambda s: ldm.models.LinearICA(0), r"`n_components` must be an integer >= 1; received 0"),
    "LinearICA unknown prior": (
        lambda s: ldm.models.LinearICA(4, prior="laplacee"),
        r"`prior` must be one of \['adaptive', 'gaussian', .*'logistic'\]; received 'laplacee'"),
    # -- estimator, prior and recipe arguments ---------------------------------------------
    "k = 1.5": (lambda s: ldm.entropy.KNNEntropy(k=1.5),
                r"`k` must be a positive integer; received 1\.5"),
    "k-NN clip_quantile 2": (
        lambda s: ldm.entropy.KNNEntropy(clip_quantile=2.0),
        r"`clip_quantile` must lie in \(0, 1\] or be None; received 2\.0"),
    "KDE bandwidth (precision) NaN": (
        lambda s: ldm.entropy.GaussianKDE(precision=float("nan")),
        r"`precision` must be a finite number > 0; received nan"),
    "KDE precision a string": (
        lambda s: ldm.entropy.GaussianKDE(precision="big"),
        r"`precision` must be a number; received 'big'"),
    "vMF-KDE unknown centres": (
        lambda s: ldm.entropy.VonMisesFisherKDE(centers="others"),
        r"`centers` must be one of \['other', 'self'\]; received 'others'"),
    "log-det negative jitter": (
        lambda s: ldm.entropy.GaussianLogDet(jitter=-1),
        r"`jitter` must be a finite number >= 0; received -1"),
    "Student-t dof 0": (
        lambda s: ldm.priors.StudentT(dof=0), r"`dof` must be a finite number > 0; received 0"),
    "categorical one class": (
        lambda s: ldm.priors.CategoricalPair(1),
        r"`num_classes` must be an integer >= 2; received 1"),
    "simclr temperature 0 (entropy_precision)": (
        lambda s: ldm.recipes.build("simclr", mlp(DIM, [8], 4), entropy_precision=0.0),
        r"`precision` must be a finite number > 0; received 0\.0"),
    "recipe k = 0": (
        lambda s: ldm.recipes.build("plane-knn", mlp(DIM, [8], 4), k=0),
        r"`k` must be a positive integer; received 0"),
    "recipe momentum -0.1": (
        lambda s: ldm.recipes.build("byol", mlp(DIM, [8], 4), ema_momentum=-0.1),
        r"`ema_momentum` must be a finite number >= 0; received -0\.1"),
    "recipe NaN entropy_weight": (
        lambda s: ldm.recipes.build("plane-kde", mlp(DIM, [8], 4), entropy_weight=float("nan")),
        r"`entropy_weight` must be a finite number >= 0; received nan"),
    "recipe unknown mode": (
        lambda s: ldm.recipes.build("plane-kde", mlp(DIM, [8], 4), mode="both"),
        r"`mode` must be one of \['joint', 'marginal', 'pooled'\]; received 'both'"),
    "recipe misspelt setting": (
        lambda s: ldm.recipes.build("simclr", mlp(DIM, [8], 4), temprature=0.1),
        r"Recipe 'simclr' has no setting\(s\) \['temprature'\]; settings: "),
    "recipe unknown entropy": (
        lambda s: ldm.recipes.build("kalman-ssl", mlp(DIM, [8], 4), entropy="nope"),
        r"Unknown entropy kind 'nope'; recipes use \["),
    "unknown view preset": (
        lambda s: ldm.augment.image_views("mnist"),
        r"`preset` must be one of \['cifar', 'cifar-strong', 'digits'\]; received 'mnist'"),
    # -- datasets, the CLI and the zoo by name ---------------------------------------------
    "unknown image dataset": (
        lambda s: ldm.data.load_image_dataset("mnist"),
        r"Unknown dataset 'mnist'; expected one of \['cifar10', "),
    "unknown sequence dataset": (
        lambda s: ldm.data.load_sequence_dataset("dotmotion-spiral"),
        r"Unknown dataset 'dotmotion-spiral'; expected one of \['dotmotion-circular'"),
    "CLI: a sequence recipe on an image dataset": (
        lambda s: cli.main(["train", "--debug", "--recipe", "kalman-ssl", "--dataset",
                                "digits", "--out", str(s[0] / "cli-seq")]),
        r"Unknown sequence dataset 'digits'; expected one of"),
    "zoo: misspelt name": (
        lambda s: ldm.zoo.load("dgits-simclr"),
        r"Unknown zoo entry 'dgits-simclr'\. Did you mean \['digits-simclr'"),
    "zoo: name None": (
        lambda s: ldm.zoo.load(None), r"Unknown zoo entry None\. Known entries: "),
    "images of the wrong rank (from_arrays)": (
        lambda s: ldm.data.arrays.from_arrays(np.zeros((4, 3)), rank=4),
        r"`x` must have rank 4; received shape \(4, 3\) \(rank 2\)"),
    "labels of another length (from_arrays)": (
        lambda s: ldm.data.arrays.from_arrays(np.zeros((4, 3)), np.zeros(3)),
        r"labels must have one entry per sample of `x` \(4\); received labels of shape "
        r"\(3,\)"),
    # -- files --------------------------------------------------------------------------
    "truncated .weights.h5": (
        lambda s: s[1].load_weights(_truncated(s, "m.weights.h5", "t.weights.h5")),
        r"expected an intact Keras weights file .*truncated or corrupted"),
    "garbage .weights.h5": (
        lambda s: (s[0] / "g.weights.h5").write_bytes(b"not hdf5" * 64)
        and s[1].load_weights(s[0] / "g.weights.h5"),
        r"expected an intact Keras weights file"),
    "weights of another architecture": (
        lambda s: _model(projector=(16, 4)).load_weights(s[0] / "m.weights.h5"),
        r"(?s)could not be loaded.*expected 1 variables.*Expected: \['kernel'\]"),
    "truncated .keras": (
        lambda s: keras.saving.load_model(_truncated(s, "m.keras", "t.keras"), safe_mode=True),
        r"accessible `\.keras` zip file"),
    ".keras naming an unknown class": (
        lambda s: keras.saving.load_model(_edited_keras(
            s, "cls", lambda c: c.update(class_name="FutureLDM",
                                         registered_name="ldm_keras>FutureLDM")),
            safe_mode=True),
        r"Could not locate class 'FutureLDM'", TypeError),  # Keras' own error type
    ".keras with an unknown argument": (
        lambda s: keras.saving.load_model(_edited_keras(
            s, "arg", lambda c: c["config"].update(temperature_schedule="cosine")),
            safe_mode=True),
        r"Unrecognized keyword arguments passed to MultiViewLDM: .*temperature_schedule"),
    ".keras with an invalid setting": (
        lambda s: keras.saving.load_model(_edited_keras(
            s, "val", lambda c: c["config"].update(nonfinite="sometimes")), safe_mode=True),
        r"`nonfinite` must be one of"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_clear_error(case, saved):
    fn, pattern, *exc = CASES[case]
    with pytest.raises(exc[0] if exc else ValueError, match=pattern):
        fn(saved)


def test_corrupted_weights_error_is_also_an_oserror(saved):
    """BackupAndRestore falls back to its previous backup on OSError: keep that working."""
    with pytest.raises(OSError):
        saved[1].load_weights(_truncated(saved, "m.weights.h5", "t2.weights.h5"))
    assert issubclass(WeightsFileError, ValueError)


# -- non-finite steps: the policy --------------------------------------------------------
def _weights(model):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]


def _optimizer_state(model):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables]


def _trained(recipe, data, nonfinite="skip", init=None, **kw):
    extra = {"predictor": (8,)} if recipe == "byol" else {}
    model = _model(recipe, **extra)
    if init is not None:
        model.set_weights(init)
    init = [w.copy() for w in _weights(model)]
    model.compile(keras.optimizers.Adam(1e-2), lr_multipliers={"default": 1.0},
                  nonfinite=nonfinite)
    history = model.fit(data, batch_size=8, epochs=1, verbose=0, shuffle=False, **kw)
    return model, history, init


@pytest.mark.parametrize("recipe, bad", [("plane-kde", np.nan), ("byol", np.inf)])
def test_nonfinite_batch_is_skipped_exactly(recipe, bad):
    """Batches A, B(bad), C train to the same state as A, C: nothing of B is applied.

    byol covers the EMA targets; lr_multipliers make the optimizer a GroupedOptimizer.
    """
    a1, a2 = _pairs(24, seed=1)
    b1 = a1.copy()
    b1[10, 3] = bad  # second batch of 8
    model, history, init = _trained(recipe, (b1, a2))
    keep = np.r_[0:8, 16:24]
    ref, ref_history, _ = _trained(recipe, (a1[keep], a2[keep]), init=init)
    assert history.history["skipped_steps"] == [1.0]
    assert ref_history.history["skipped_steps"] == [0.0]
    for w, r in zip(_weights(model), _weights(ref)):
        assert np.all(np.isfinite(w))
        np.testing.assert_allclose(w, r, rtol=1e-6, atol=1e-7)
    for o, r in zip(_optimizer_state(model), _optimizer_state(ref)):
        np.testing.assert_allclose(o, r, rtol=1e-6, atol=1e-7)
    # the epoch's mean loss is over the applied steps only
    np.testing.assert_allclose(history.history["loss"], ref_history.history["loss"],
                               rtol=1e-5)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2


def test_nonfinite_raise_names_the_step_and_keeps_previous_weights():
    a1, a2 = _pairs(24, seed=1)
    b1 = a1.copy()
    b1[12, 0] = np.nan
    model = _model()
    init = [w.copy() for w in _weights(model)]
    model.compile(keras.optimizers.Adam(1e-2), nonfinite="raise")
    with pytest.raises(NonFiniteStepError, match=r"training step 2 \(epoch 1, batch 2\)") as err:
        model.fit((b1, a2), batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert err.value.step == 2
    ref, _, _ = _trained("plane-kde", (a1[:8], a2[:8]), init=init)
    for w, r in zip(_weights(model), _weights(ref)):
        np.testing.assert_allclose(w, r, rtol=1e-6, atol=1e-7)


def test_nonfinite_ignore_lets_nan_in():
    """The opt-out does what it says: the NaN reaches the weights (no skipped_steps)."""
    a1, a2 = _pairs(16, seed=1)
    a1[3, 0] = np.nan
    model, history, _ = _trained("plane-kde", (a1, a2), nonfinite="ignore")
    assert "skipped_steps" not in history.history
    assert not all(np.all(np.isfinite(w)) for w in _weights(model))


@pytest.mark.parametrize("nonfinite", ["skip", "ignore"])
def test_a_nonfinite_update_is_skipped(nonfinite):
    """A finite loss and gradient whose update is NaN (a NaN learning rate): under "skip"
    the new weights are checked too, every step is skipped and the weights stay as they
    were; under "ignore" (the control) the NaN reaches the weights."""
    a1, a2 = _pairs(16, seed=1)
    model = _model()
    init = [w.copy() for w in _weights(model)]
    model.compile(keras.optimizers.Adam(float("nan")), lr_multipliers={"default": 1.0},
                  nonfinite=nonfinite)
    history = model.fit((a1, a2), batch_size=8, epochs=1, verbose=0, shuffle=False)
    if nonfinite == "ignore":
        assert not all(np.all(np.isfinite(w)) for w in _weights(model))
        return
    assert history.history["skipped_steps"] == [2.0]
    for w, r in zip(_weights(model), init):
        np.testing.assert_array_equal(w, r)
    slots = [o for v, o in zip(model.optimizer.variables, _optimizer_state(model))
             if "learning_rate" not in v.path]          # the NaN rate itself is state
    assert all(np.all(np.isfinite(o)) for o in slots)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0
