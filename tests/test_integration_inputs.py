"""Integration paths that had no test (issue 20), each checked against something that can
fail:

* multi-view training through the job and the CLI on ``cifar10`` / ``cifar100`` (tiny
  fake ``keras.datasets`` data, nothing downloaded) and on ``file.h5:images:labels``:
  the number of optimizer steps (so the number of training images), the input shape the
  encoder was built for, and ``probe_full`` recomputed with scikit-learn from the saved
  encoder on an independently recomputed split;
* mixed-precision ``fit`` of a whole model (``mixed_float16``): a MultiViewLDM with random
  views and a PredictiveLDM with a Kalman filter train; the encoder computes in float16,
  the loss, entropy and filter outputs are float32, the loss after the steps is close to
  the float32 run's, and the non-finite guard still skips a NaN batch;
* ``steps_per_execution=2`` trains to the same weights as 1 after the same batches
  (random views included) on JAX and TensorFlow; the PyTorch trainer refuses it with a
  ``ValueError`` naming it.

CIFAR's default encoder is a ResNet-18; the CIFAR tests swap it for a small conv encoder
in the job's ``DATASETS`` table (the job has no encoder option), so the job's loading,
views, LARS optimizer, evaluation and saving are what is tested.
"""

import contextlib
import io
import json
import os
import pickle

import keras
import numpy as np
import pytest
from helpers import to_numpy

import ldm_keras as ldm
from ldm_keras import cli, jobs, recipes
from ldm_keras.augment import image_views
from ldm_keras.data import dot_motion
from ldm_keras.models.encoders import mlp
from ldm_keras.predictors import KalmanCell, KalmanFilter

BACKEND = keras.backend.backend()

# ---------------------------------------------------------------------------------------
# multi-view jobs on CIFAR fixtures and HDF5
# ---------------------------------------------------------------------------------------


def _flip_views(seed=None, name="digits"):
    """Random views that compile in a blink: the preset with its ops off but the flip."""
    return image_views(name, seed=seed, crop=None, affine=None, color_jitter=None,
                       grayscale=None, solarize=None, flip={"p": 0.5})


def _tiny_encoder(shape):
    return keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                             keras.layers.Dense(8)], name="tiny")


def _tiny(encoder_owner, monkeypatch):
    """A tiny encoder and light views for the job (it compiles in seconds); returns the
    list of the view presets the job asked for, for the test to check."""
    asked = []

    def views(name, seed=None):
        asked.append(name)
        return _flip_views(seed, name)

    monkeypatch.setattr(jobs, "image_views", views)
    if encoder_owner is None:           # a dataset outside DATASETS: its conv_encoder
        monkeypatch.setattr(jobs, "conv_encoder", lambda shape, dim: _tiny_encoder(shape))
    else:
        monkeypatch.setitem(jobs.DATASETS[encoder_owner], "encoder", _tiny_encoder)
    return asked


def _probe_full(encoder_path, train, test):
    """probe_full recomputed: standardise with the train statistics, sklearn's lbfgs
    logistic regression (C = 1), accuracy on test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    enc = keras.saving.load_model(encoder_path, safe_mode=True)
    ztr = np.asarray(enc.predict(train[0], verbose=0), "float64")
    zte = np.asarray(enc.predict(test[0], verbose=0), "float64")
    scaler = StandardScaler().fit(ztr)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(ztr), train[1])
    return enc, float(np.mean(clf.predict(scaler.transform(zte)) == test[1]))


def _iterations(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def test_train_multiview_on_cifar10_fixture(tmp_path, monkeypatch):
    # keras' own CIFAR-10 reader insists on 50 000 training images (five batches of
    # 10 000), so the fixture stands in for keras.datasets.cifar10.load_data itself,
    # returning keras' format: uint8 NHWC and labels (n, 1).
    rng = np.random.default_rng(0)
    raw = {part: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                  (np.arange(n) % 2).reshape(n, 1).astype(np.uint8))
           for part, n in (("train", 48), ("test", 24))}
    monkeypatch.setattr(keras.datasets.cifar10, "load_data",
                        lambda: (raw["train"], raw["test"]))
    asked = _tiny("cifar10", monkeypatch)
    result = jobs.train_multiview("plane-kde", "cifar10", epochs=1, batch_size=16,
                                  out=str(tmp_path / "run"), verbose=0)
    assert _iterations(result["model"]) == 3          # 48 train images / 16
    assert asked == ["cifar"]
    assert "LARS" in result["optimizer"]
    train = (raw["train"][0] / np.float32(255.0), raw["train"][1].ravel())
    test = (raw["test"][0] / np.float32(255.0), raw["test"][1].ravel())
    enc, want = _probe_full(result["encoder_path"], train, test)
    assert tuple(enc.input_shape) == (None, 32, 32, 3)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["probe_full"] == pytest.approx(want, abs=1e-12)
    assert result["metrics"]["probe_full"] == metrics["probe_full"]


def _write_cifar100(root, n_train, n_test, rng):
    """The official pickled batches (CHW uint8 rows) where keras' get_file would find the
    extracted archive."""
    folder = root / "datasets" / "cifar-100-python-target" / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for part, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine, coarse = np.arange(n) % 2 * 7, rng.integers(0, 20, n)   # 2 fine classes
        with open(folder / part, "wb") as f:
            pickle.dump({b"data": data, b"fine_labels": [int(v) for v in fine],
                         b"coarse_labels": [int(v) for v in coarse]}, f, protocol=4)
        out[part] = (data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1) / np.float32(255.0),
                     fine)
    return out


def test_cli_train_on_cifar100_fixture(tmp_path, monkeypatch):
    import keras.src.datasets.cifar100 as kc100

    raw = _write_cifar100(tmp_path, 48, 24, np.random.default_rng(1))
    calls = []

    def get_file(fname=None, origin=None, extract=False, **kwargs):
        calls.append(fname)
        return os.path.join(str(tmp_path), "datasets", fname)

    monkeypatch.setattr(kc100, "get_file", get_file)
    asked = _tiny("cifar100", monkeypatch)
    trained = {}
    real = jobs._train_multiview

    def spy(*args):
        trained["result"] = real(*args)
        return trained["result"]

    monkeypatch.setattr(jobs, "_train_multiview", spy)
    out, printed = tmp_path / "run", io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["train", "--recipe", "plane-kde", "--dataset", "cifar100",
                         "--epochs", "1", "--batch-size", "16", "--out", str(out), "--quiet"])
    assert code == 0 and calls == ["cifar-100-python-target"]
    assert _iterations(trained["result"]["model"]) == 3  # 48 train images / 16
    assert asked == ["cifar"]
    enc, want = _probe_full(str(out / "encoder.keras"), raw["train"], raw["test"])
    assert tuple(enc.input_shape) == (None, 32, 32, 3)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["probe_full"] == pytest.approx(want, abs=1e-12)
    table = dict(line.rsplit(None, 1) for line in printed.getvalue().splitlines()
                 if line.strip().startswith("probe_full"))
    assert float(table["probe_full"]) == pytest.approx(want, abs=5e-4)
    assert json.loads((out / "run.json").read_text())["dataset"] == "cifar100"


def test_train_multiview_on_h5_images_and_labels(tmp_path, monkeypatch):
    import h5py

    asked = _tiny(None, monkeypatch)

    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (69, 8, 8, 1)).astype("float32")
    y = (np.arange(69) % 2).astype("int64")
    x[y == 1, :4] += 1.0                                  # something to probe
    path = tmp_path / "mine.h5"
    with h5py.File(path, "w") as f:
        f["pics"] = x
        f["lab"] = y
    result = jobs.train_multiview("plane-kde", f"{path}:pics:lab", epochs=1, batch_size=16,
                                  out=str(tmp_path / "run"), verbose=0)
    # 30 % held out by a seed-0 permutation: 21 test, 48 train images -> 48 / 16 steps
    order = np.random.default_rng(0).permutation(69)
    te, tr = order[:21], order[21:]
    assert _iterations(result["model"]) == 3
    assert asked == ["digits"]
    enc, want = _probe_full(result["encoder_path"], (x[tr], y[tr]), (x[te], y[te]))
    assert tuple(enc.input_shape) == (None, 8, 8, 1)
    assert result["metrics"]["probe_full"] == pytest.approx(want, abs=1e-12)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["dataset"] == f"{os.path.abspath(path)}:pics:lab"


# ---------------------------------------------------------------------------------------
# mixed precision
# ---------------------------------------------------------------------------------------


def _digits(n=64):
    from ldm_keras.data import digits

    (x, _), _ = digits.load_digits(test_size=0.3, seed=0)
    return x[:n]


_FLOAT32 = {}


def _float32_run(kind, steps_per_execution=1):
    """The float32 run of ``kind`` (weights and history), trained once per process."""
    key = (kind, steps_per_execution)
    if key not in _FLOAT32:
        model, history = (_multiview("float32", _digits(), steps_per_execution)
                          if kind == "multiview" else
                          _predictive("float32", _frames(), steps_per_execution))
        _FLOAT32[key] = ([to_numpy(v) for v in model.trainable_variables], history,
                         _iterations(model))
    return _FLOAT32[key]


def _multiview(policy, x, steps_per_execution=1):
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(5)
    model = recipes.build("plane-kde", _tiny_encoder((8, 8, 1)), views=_flip_views(3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  steps_per_execution=steps_per_execution)
    history = model.fit(x, epochs=1, batch_size=16, shuffle=False, verbose=0)
    return model, history.history


def _predictive(policy, frames, steps_per_execution=1):
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(6)
    model = ldm.models.PredictiveLDM(
        mlp(100, [16], 2, batch_norm=False),
        KalmanFilter(KalmanCell(state_dim=2, observation_dim=2, seed=0,
                                stop_gradient_targets=False),
                     return_covariances=False),
        entropy=ldm.entropy.GaussianKDE(precision=5.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  steps_per_execution=steps_per_execution)
    history = model.fit(frames, epochs=1, batch_size=16, shuffle=False, verbose=0)
    return model, history.history


def _dtype(t):
    return keras.backend.standardize_dtype(t.dtype)


def _frames(n=64, t=8):
    return dot_motion.generate("circular", num_sequences=n, length=t, dt=0.1, period=2.0,
                               seed=3).frames


_MIXED = {}


def _mixed_run(kind):
    """The mixed_float16 run of ``kind``: the model and a copy of its history."""
    if kind not in _MIXED:
        model, history = (_multiview("mixed_float16", _digits()) if kind == "multiview"
                          else _predictive("mixed_float16", _frames()))
        _MIXED[kind] = (model, {k: list(v) for k, v in history.items()})
    return _MIXED[kind]



# Relative gap of the training loss, mixed_float16 against float32. Before any update
# (the first batch) the two runs agree to 1e-4 relative (measured 2.35202 vs 2.35225 on
# JAX): float16 rounds to ~3 significant digits and the loss, entropy and filter run in
# float32, so 5e-3 is 50x the rounding; a float16 entropy (overflowing exp) or a wrongly
# scaled update is well outside it (the loss-scale bug gives 2.5e-2 - 3e-2).
MIXED_RTOL = 5e-3


@pytest.mark.parametrize("kind", ["multiview", "predictive"])
def test_mixed_precision_fit_dtypes_and_guard(kind):
    model, hist = _mixed_run(kind)
    data = _digits() if kind == "multiview" else _frames()
    assert model.encoder.dtype_policy.compute_dtype == "float16"
    frame = data[:4] if kind == "multiview" else data[:4, 0]
    assert _dtype(model.encoder(frame)) == "float16"
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert hist["skipped_steps"] == [0.0] and _iterations(model) == 4
    out = model.compute_ldm_loss(keras.ops.convert_to_tensor(data[:16]), training=False)
    keys = ("loss", "entropy") if kind == "multiview" else ("loss", "alignment", "entropy")
    for key in keys:
        assert _dtype(out[key]) == "float32", key
    if kind == "predictive":
        pred = model.predict(data[:4], verbose=0)
        assert pred["prediction"].dtype == np.float32 and pred["nll"].dtype == np.float32


def test_a_nonfinite_frame_skips_exactly_its_step():
    """float32, every backend (PyTorch eagerly too): the Kalman filter does not check its
    inputs' values in a training step, so an inf frame makes the loss non-finite and the
    guard skips that step; the run then equals one without that batch (it raised a
    ValueError on PyTorch before)."""
    frames = _frames()
    bad = frames.copy()
    bad[17, 3, 5] = np.inf  # the second of four batches of 16
    model, hist = _predictive("float32", bad)
    ref, _ = _predictive("float32", np.concatenate([frames[:16], frames[32:]]))
    keras.config.set_dtype_policy("float32")
    assert hist["skipped_steps"] == [1.0]
    assert _iterations(model) == _iterations(ref) == 3
    for w, r in zip(model.trainable_variables, ref.trainable_variables, strict=True):
        np.testing.assert_allclose(to_numpy(w), to_numpy(r), atol=1e-6)


@pytest.mark.parametrize("kind", ["multiview", "predictive"])
def test_mixed_precision_nonfinite_guard(kind):
    """A NaN / inf in the second of four batches is skipped under mixed_float16, the
    other three applied, the weights stay finite."""
    model, _ = _mixed_run(kind)
    bad = (_digits() if kind == "multiview" else _frames()).copy()
    if kind == "multiview":
        bad[20, 2, 2, 0] = np.nan
    else:
        bad[17, 3, 5] = np.inf
    before = _iterations(model)
    hist = model.fit(bad, epochs=1, batch_size=16, shuffle=False, verbose=0).history
    assert hist["skipped_steps"] == [1.0]
    assert _iterations(model) == before + 3
    assert all(np.all(np.isfinite(to_numpy(w))) for w in model.trainable_variables)


@pytest.mark.parametrize("kind", [
    "multiview", "predictive"])
def test_mixed_precision_loss_after_steps_matches_float32(kind):
    _, ref, _ = _float32_run(kind)
    _, hist = _mixed_run(kind)
    assert hist["loss"][-1] == pytest.approx(ref["loss"][-1], rel=MIXED_RTOL)


def test_mixed_precision_sgd_step_matches_float32():
    """One SGD step on one batch of pairs: the weight change under mixed_float16 is the
    float32 one to 1e-2 (float16 gradients carry ~1e-3 relative error); measured
    ratio 1/32768 on the three backends before the trainers scaled the loss."""
    x = _digits()
    change = {}
    for policy in ("float32", "mixed_float16"):
        keras.config.set_dtype_policy(policy)
        keras.utils.set_random_seed(5)
        model = recipes.build("plane-kde", _tiny_encoder((8, 8, 1)), views=None)
        w0 = to_numpy(model.encoder.trainable_variables[0])
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit((x, x[:, :, ::-1]), epochs=1, batch_size=64, shuffle=False, verbose=0)
        change[policy] = to_numpy(model.encoder.trainable_variables[0]) - w0
    assert np.abs(change["float32"]).max() > 1e-2           # the float32 step moved
    np.testing.assert_allclose(change["mixed_float16"], change["float32"], rtol=1e-2,
                               atol=1e-2 * np.abs(change["float32"]).max())


# ---------------------------------------------------------------------------------------
# steps_per_execution
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["multiview", "predictive"])
def test_steps_per_execution_2_same_weights(kind):
    """64 samples, batches of 16: 4 optimizer steps either way (random views included)."""
    if BACKEND == "torch":            # Keras' PyTorch trainer refuses it, naming it
        with pytest.raises(ValueError, match="steps_per_execution"):
            _float32_run(kind, 2)
        return
    w1, h1, n1 = _float32_run(kind, 1)
    w2, h2, n2 = _float32_run(kind, 2)
    assert n1 == n2 == 4
    assert len(w1) == len(w2) > 0
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert h1["loss"][-1] == pytest.approx(h2["loss"][-1], rel=1e-6)
