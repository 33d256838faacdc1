"""The model zoo: integrity, cross-backend loading, verification, CLI and packaging.

The cross-backend check: every entry stores fixed inputs and the encoder's outputs on
them, computed on the backend that built it (JAX); here they are recomputed from the
loaded weights on the active backend and must agree to 1e-5. The SHA-256 reference is
``hashlib`` over the file bytes, computed independently of ``ldm_keras.zoo.sha256``.
"""

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from ldm_keras import cli, zoo
from ldm_keras.zoo import builder, entries, loader

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "zoo"
INDEX = json.loads((ZOO / "index.json").read_text())
ENTRIES = sorted(INDEX["entries"])
WITH_WEIGHTS = [n for n in ENTRIES if INDEX["entries"][n].get("weights", True)]
DIGITS = [n for n in WITH_WEIGHTS if n.startswith("digits-")]
SEQUENCES = [n for n in WITH_WEIGHTS if n.startswith("dotmotion-")]


@pytest.fixture(autouse=True)
def _packaged_zoo(monkeypatch, tmp_path):
    monkeypatch.delenv("LDM_KERAS_ZOO", raising=False)
    monkeypatch.setenv("LDM_KERAS_CACHE", str(tmp_path / "cache"))


def _copy_zoo(tmp_path, monkeypatch, names):
    """A private zoo in tmp_path with ``names`` copied from the packaged one."""
    root = tmp_path / "zoo"
    root.mkdir()
    for name in names:
        shutil.copytree(ZOO / name, root / name)
    index = {"format": INDEX["format"], "entries": {n: INDEX["entries"][n] for n in names}}
    (root / "index.json").write_text(json.dumps(index))
    monkeypatch.setenv("LDM_KERAS_ZOO", str(root))
    return root, index


def test_the_zoo_is_complete_and_small():
    # every entry the builders know is published; at least seven carry weights
    assert set(ENTRIES) == set(entries.ENTRIES)
    assert len(WITH_WEIGHTS) >= 7
    assert zoo.list() == ENTRIES
    # the packaged path resolves to the top-level zoo/ of the checkout
    assert zoo.zoo_dir().resolve() == ZOO.resolve()
    total = sum(p.stat().st_size for p in ZOO.rglob("*") if p.is_file())
    assert total <= 20 * 1024 * 1024, f"zoo/ is {total / 2**20:.1f} MB (limit 20 MB)"
    # no temporary folders left behind by an interrupted build
    assert not [p.name for p in ZOO.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name", ENTRIES)
def test_index_sizes_and_sha256(name):
    files = INDEX["entries"][name]["files"]
    on_disk = {p.name for p in (ZOO / name).iterdir() if p.is_file()}
    assert on_disk == set(files)
    for fname, meta in files.items():
        data = (ZOO / name / fname).read_bytes()
        assert len(data) == meta["size"]
        assert hashlib.sha256(data).hexdigest() == meta["sha256"]
    card = (ZOO / name / "README.md").read_text()
    for needed in ("## Data", "## Metrics", "## Intended use", "## Limitations",
                   "Mikulasch", "Zenke", "ICML", "2026"):
        assert needed in card, f"{name} card lacks {needed!r}"


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_loaded_encoder_reproduces_reference_outputs(name):
    encoder = zoo.load(name)
    assert isinstance(encoder, keras.Model) and not encoder.trainable
    with h5py.File(ZOO / name / "reference.h5", "r") as f:
        x = np.asarray(f["inputs"])
        expected = np.asarray(f["outputs"]["encoder"])
    z = keras.ops.convert_to_numpy(encoder(x, training=False))
    assert z.shape == expected.shape
    np.testing.assert_allclose(z, expected, rtol=0, atol=1e-5)
    assert zoo.load(name, trainable=True).trainable


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_components_load_under_safe_mode(name):
    config = json.loads((ZOO / name / "config.json").read_text())
    assert config["built_with"]["backend"] == "jax"
    for part in config["components"].values():
        obj = keras.saving.deserialize_keras_object(part["config"], safe_mode=True)
        assert isinstance(obj, keras.layers.Layer)
    assert not list((ZOO / name).glob("*.pkl")) and not list((ZOO / name).glob("*.npz"))


@pytest.mark.parametrize("name", SEQUENCES)
def test_full_predictive_model_reproduces_predictions(name):
    model = zoo.load_model(name)
    with h5py.File(ZOO / name / "reference.h5", "r") as f:
        seq = np.asarray(f["sequences"])
        expected = np.asarray(f["outputs"]["prediction"])
    out = model(seq, training=False)
    pred = keras.ops.convert_to_numpy(out["prediction"])
    np.testing.assert_allclose(pred, expected, rtol=0, atol=1e-5)   # README: to 1e-5
    if "prediction_cov" in out:  # Kalman entries: S_t against statsmodels, below
        cov = keras.ops.convert_to_numpy(out["prediction_cov"])
        assert cov.shape == seq.shape[:2] + (pred.shape[-1],) * 2


KALMAN_SEQUENCES = [n for n in SEQUENCES if n.endswith("-kalman")]


def _numpy_kalman(z, a, b, d, q, r, jitter):
    """A float64 Kalman filter with the cell's conventions: prior N(0, I) before the first
    step, ``h⁻ = A (h - b) + b``, ``S = D P⁻ Dᵀ + diag(r_t) + jitter·I``, the gain from that
    ``S``, the Joseph update with ``diag(r_t)`` (the covariance of the estimate for that
    gain). ``r``: ``(T, L)`` variances. Returns predictions, ``S_t`` and filtered means."""
    s = a.shape[0]
    m, p = np.zeros(s), np.eye(s)
    preds, covs, means = [], [], []
    for t in range(len(z)):
        mp, pp = a @ (m - b) + b, a @ p @ a.T + np.diag(q)
        rt = np.diag(r[t])
        s_t = d @ pp @ d.T + rt + jitter * np.eye(len(rt))
        k = pp @ d.T @ np.linalg.inv(s_t)
        m = mp + k @ (z[t] - d @ mp)
        ikd = np.eye(s) - k @ d
        p = ikd @ pp @ ikd.T + k @ rt @ k.T
        preds.append(d @ mp)
        covs.append(s_t)
        means.append(m)
    return np.array(preds), np.array(covs), np.array(means)


@pytest.mark.parametrize("name", KALMAN_SEQUENCES)
def test_zoo_kalman_model_matches_a_numpy_filter_on_its_own_parameters(name):
    """The loaded model's predictions, predictive covariances S_t and filtered means equal
    a float64 NumPy filter (:func:`_numpy_kalman`) run with the loaded cell's A, b, D,
    Σ_A, Σ_D (per frame for input noise) on the model's own latents: the covariances, not
    only their shape, survive saving and loading on every backend. (statsmodels, which has
    no place for the jitter, matches the circular entry but not the figure-eight one, whose
    Σ_D ≈ 1e-7 lies below the 1e-6 jitter.)"""
    model = zoo.load_model(name)
    with h5py.File(ZOO / name / "reference.h5", "r") as f:
        seq = np.asarray(f["sequences"])[:3]
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(seq, training=False).items()}
    _, inputs = model._predictor_inputs(keras.ops.convert_to_tensor(seq), False)
    inputs = keras.ops.convert_to_numpy(inputs).astype("float64")
    cell = model.predictor.cell
    num = lambda v: np.asarray(keras.ops.convert_to_numpy(v), "float64")  # noqa: E731
    scale = np.exp(num(cell.log_noise_scale)) if cell.learn_noise_scale else 1.0
    a, b = num(cell.transition_value()), num(cell.offset)
    d = num(cell.observation_matrix_value())
    q = np.exp(num(cell.log_process_var)) * scale
    l_ = cell.observation_dim
    for i in range(len(seq)):
        z = inputs[i, :, :l_]
        if cell.observation_noise == "input":
            clip = cell.log_variance_clip
            r = np.exp(np.clip(inputs[i, :, l_:], -clip, clip)) * scale
        else:
            var = np.exp(num(cell.log_observation_var)) if cell.observation_noise == "learned" \
                else np.full(l_, cell.observation_noise_init)
            r = np.tile(var * scale, (len(z), 1))
        pred, cov, mean = _numpy_kalman(z, a, b, d, q, r, cell.jitter)
        # measured: ≤ 2.3e-7 (predictions) and ≤ 6e-8 of max |S| (covariances), float32
        np.testing.assert_allclose(out["prediction"][i], pred, rtol=0, atol=1e-5)
        assert np.abs(out["prediction_cov"][i] - cov).max() <= 1e-5 * np.abs(cov).max()
        if "state_mean" in out:
            np.testing.assert_allclose(out["state_mean"][i], mean, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", DIGITS)
def test_verify_eval_reproduces_the_card(name):
    report = zoo.verify(name, eval=True)
    assert report["ok"], report
    stored = json.loads((ZOO / name / "metrics.json").read_text())
    headline = stored["headline"]
    # recomputed on every backend to the stored value (one of the 540 test samples
    # classified otherwise would move an accuracy by 1.9e-3)
    assert abs(report["eval"]["recomputed"] - stored[headline]) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", SEQUENCES)
def test_verify_eval_sequences(name):
    report = zoo.verify(name, eval=True)
    assert report["ok"], report


def test_digits_model_and_head():
    model = zoo.load_model("digits-categorical")
    with h5py.File(ZOO / "digits-categorical" / "reference.h5", "r") as f:
        x = np.asarray(f["inputs"])
    q = keras.ops.convert_to_numpy(model.projector(model.encoder(x, training=False),
                                                   training=False))
    head = zoo.load_component("digits-categorical", "head")
    q2 = keras.ops.convert_to_numpy(head(zoo.load("digits-categorical")(x)))
    np.testing.assert_allclose(q.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(q, q2, atol=1e-6)


def test_tampered_weights_are_refused_before_reading(tmp_path, monkeypatch):
    name = DIGITS[0]
    root, _ = _copy_zoo(tmp_path, monkeypatch, [name])
    path = root / name / "encoder.weights.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte changed, same size
    path.write_bytes(bytes(data))

    def no_reading(*args, **kwargs):
        raise AssertionError("weights were read before the integrity check")

    monkeypatch.setattr(loader, "deserialize", no_reading)
    monkeypatch.setattr(h5py, "File", no_reading)
    for call in (zoo.load, zoo.load_model, zoo.verify):
        with pytest.raises(zoo.ZooIntegrityError, match="encoder.weights.h5.*SHA-256"):
            call(name)
    # a truncated file fails on its size
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(zoo.ZooIntegrityError, match="bytes, the index says"):
        zoo.load(name)


def test_unknown_name_lists_close_matches():
    with pytest.raises(zoo.ZooError, match=r"Did you mean \['digits-simclr'"):
        zoo.load("digits-simclrr")
    with pytest.raises(ValueError, match="Known entries"):
        zoo.info("no-such-model")


def test_missing_file_is_named(tmp_path, monkeypatch):
    name = DIGITS[0]
    root, _ = _copy_zoo(tmp_path, monkeypatch, [name])
    (root / name / "reference.h5").unlink()
    with pytest.raises(zoo.ZooError, match="missing the file 'reference.h5'"):
        zoo.load(name)


def test_bad_zoo_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("LDM_KERAS_ZOO", str(tmp_path))
    with pytest.raises(zoo.ZooError, match="has no index.json"):
        zoo.list()


def test_recipe_only_entry_has_no_weights():
    name = "cifar10-resnet18-simclr"
    assert name in zoo.list()
    info = zoo.info(name)
    assert info["has_weights"] is False and info["config"]["recipe"] == "simclr"
    assert not [f for f in info["files"] if f.endswith(".h5")]
    for call in (zoo.load, zoo.load_model, zoo.verify):
        with pytest.raises(zoo.ZooError, match="without published weights.*zoo build"):
            call(name)


def test_build_is_atomic(tmp_path, monkeypatch):
    root = tmp_path / "zoo"
    name = "cifar10-resnet18-simclr"  # no training: config and card only
    builder.build(name, root=root)
    first = json.loads((root / "index.json").read_text())
    assert list(first["entries"]) == [name]
    assert (root / name / "README.md").is_file()
    before = (root / name / "config.json").read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(builder.cards, "render", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        builder.build(name, root=root)
    # the old entry and index are untouched, no temporary folder is left
    assert (root / name / "config.json").read_bytes() == before
    assert json.loads((root / "index.json").read_text()) == first
    assert {p.name for p in root.iterdir()} == {"index.json", name}


def test_cli_list_info_verify(capsys):
    assert cli.main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for name in ENTRIES:
        assert name in out
    assert "recipe only" in out
    assert cli.main(["zoo", "info", "digits-simclr"]) == 0
    assert "## How to cite" in capsys.readouterr().out
    assert cli.main(["zoo", "verify", "digits-simclr"]) == 0
    assert "OK" in capsys.readouterr().out
    # user errors: one line on stderr, exit code 2 (1 is for an entry that fails verify)
    assert cli.main(["zoo", "verify", "digits-simclrr"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean" in err and err.count("\n") == 1
    assert cli.main(["zoo", "verify", "cifar10-resnet18-simclr"]) == 2
    assert "without published weights" in capsys.readouterr().err


def test_pyproject_ships_the_zoo():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"_zoo_data/*/*.h5"' in text
    link = ROOT / "ldm_keras" / "_zoo_data"
    assert link.is_dir() and link.resolve() == ZOO.resolve()


def test_cli_verify_failure_exits_1(tmp_path, monkeypatch, capsys):
    # a consistent entry (hashes match) whose reference outputs are off: verify says so
    name = DIGITS[0]
    root, index = _copy_zoo(tmp_path, monkeypatch, [name])
    path = root / name / "reference.h5"
    with h5py.File(path, "a") as f:
        f["outputs"]["encoder"][...] = np.asarray(f["outputs"]["encoder"]) + 1.0
    data = path.read_bytes()
    index["entries"][name]["files"]["reference.h5"] = {
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (root / "index.json").write_text(json.dumps(index))
    assert cli.main(["zoo", "verify", name]) == 1
    assert f"{name}: FAILED" in capsys.readouterr().out


def test_builder_records_the_optimizer_the_job_used(tmp_path, monkeypatch):
    # a new build's config names the optimizer train_multiview compiled with (LARS for
    # CIFAR), not a fixed string; the job itself is replaced by a stand-in here
    import types

    from ldm_keras import jobs

    seen = {}

    def fake_job(recipe, dataset, **kwargs):
        seen.update(recipe=recipe, dataset=dataset)
        run = tmp_path / "work" / "run"
        run.mkdir(parents=True)
        opt = jobs.job_optimizer(recipe, dataset, steps=10)
        (run / "run.json").write_text(json.dumps({"epochs": 1, "batch_size": 256,
                                                  "learning_rate": 0.3}))
        model = types.SimpleNamespace(encoder="enc", projector=None, predictor=None)
        return {"model": model, "metrics": {}, "train_seconds": 1.0,
                "optimizer": jobs.describe_optimizer(opt)}

    x = np.zeros((16, 32, 32, 3), "float32")
    monkeypatch.setattr(builder.jobs, "train_multiview", fake_job)
    monkeypatch.setattr(builder, "load_image_dataset", lambda name, seed=0: ((x, None),
                                                                             (x, None)))
    spec = entries.spec("cifar10-resnet18-simclr")
    comps, _, _, _, extra, _ = builder._train_multiview(
        "cifar10-resnet18-simclr", spec, tmp_path / "work", 0)
    assert seen == {"recipe": "simclr", "dataset": "cifar10"}
    assert extra["optimizer"].startswith("LARS (lr 0.3, CosineDecay over 10 steps")
    assert "weight decay 1e-06" in extra["optimizer"]


def _printed_json(text):
    """The JSON object ``zoo build`` prints last (after the training's progress lines)."""
    return json.loads(text[text.index('{\n  "built"'):])


def test_cli_build_of_a_recipe_only_entry_rewrites_the_published_files(tmp_path, capsys):
    # `zoo build NAME --root DIR` for the entry without weights: the config, metrics and
    # card it writes are byte for byte the published ones, and so is its index record
    name = "cifar10-resnet18-simclr"
    root = tmp_path / "built"
    assert cli.main(["zoo", "build", name, "--root", str(root)]) == 0
    printed = _printed_json(capsys.readouterr().out)
    assert printed == {"built": name, **INDEX["entries"][name]}
    assert json.loads((root / "index.json").read_text())["entries"] == {
        name: INDEX["entries"][name]}
    for fname in INDEX["entries"][name]["files"]:
        assert (root / name / fname).read_bytes() == (ZOO / name / fname).read_bytes(), fname


def test_cli_build_trains_writes_and_scores_an_entry(tmp_path, capsys, monkeypatch):
    """``zoo build`` of a trained entry, shrunk to a one-epoch run on 16 short sequences
    (and a 16-sequence read-out): the files it writes are those its index record lists
    (sizes and SHA-256 by hashlib), the reference outputs are the reloaded encoder's and
    model's on the stored inputs, and the headline R² is the affine read-out's,
    recomputed here with scikit-learn from the reloaded encoder."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    from ldm_keras.data import dot_motion

    name = "dotmotion-circular-recurrent"
    spec = entries.ENTRIES[name]
    monkeypatch.setitem(entries.ENTRIES, name, {**spec, "training": {
        **spec["training"], "epochs": 1, "sequences": 16, "train_length": 20}})
    monkeypatch.setattr(entries, "DOTMOTION_READOUT_SEQUENCES", 16)
    root = tmp_path / "built"
    assert cli.main(["zoo", "build", name, "--root", str(root)]) == 0
    record = _printed_json(capsys.readouterr().out)
    assert record.pop("built") == name
    assert json.loads((root / "index.json").read_text())["entries"] == {name: record}
    assert record["weights"] is True
    assert {p.name for p in (root / name).iterdir()} == set(record["files"])
    for fname, meta in record["files"].items():
        data = (root / name / fname).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (meta["size"], meta["sha256"])
    config = json.loads((root / name / "config.json").read_text())
    assert config["built_with"]["backend"] == keras.backend.backend()
    assert config["training"]["epochs"] == 1 and config["training"]["sequences"] == 16
    assert config["training"]["length"] == 20
    monkeypatch.setenv("LDM_KERAS_ZOO", str(root))
    encoder, model = zoo.load(name), zoo.load_model(name)
    test = dot_motion.load("circular", "test")
    with h5py.File(root / name / "reference.h5", "r") as f:
        inputs, sequences = np.asarray(f["inputs"]), np.asarray(f["sequences"])
        z_ref, pred_ref = np.asarray(f["outputs"]["encoder"]), np.asarray(
            f["outputs"]["prediction"])
    np.testing.assert_array_equal(sequences, test.frames[:2, :8])
    np.testing.assert_array_equal(inputs, test.frames[:2, :8].reshape(16, -1))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(encoder(inputs)), z_ref, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(sequences)["prediction"]),
                               pred_ref, atol=1e-5)
    readout = dot_motion.load("circular", "train", num_sequences=16)
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    z_tr, z_te = (encoder.predict(flat(d.frames), verbose=0).astype("float64")
                  for d in (readout, test))
    want = r2_score(flat(test.positions),
                    LinearRegression().fit(z_tr, flat(readout.positions)).predict(z_te))
    metrics = json.loads((root / name / "metrics.json").read_text())
    assert abs(metrics["r2"] - want) < 1e-6, (metrics["r2"], want)
    assert len(metrics["loss_first_last"]) == 2
