"""The ldm-keras command line on the active backend."""

import json
import os

import h5py
import keras
import numpy as np
import pytest

from ldm_keras import cli


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """Two one-epoch ``plane-kde`` runs on digits (seeds 0 and 1), trained once for the
    tests below, with what ``train`` printed."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("cli_runs")
    runs = []
    for seed in (0, 1):
        out, printed = root / f"seed{seed}", io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = cli.main(["train", "--recipe", "plane-kde", "--dataset", "digits",
                             "--epochs", "1", "--batch-size", "256", "--seed", str(seed),
                             "--out", str(out), "--quiet"])
        runs.append((out, code, printed.getvalue()))
    return runs


def test_train_then_evaluate(digits_runs, capsys):
    out, code, printed = digits_runs[0]
    assert code == 0
    assert "probe_10" in printed and "probe_full" in printed and "knn" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    # the RepresentationMonitor's final values: RankMe of projector(encoder(x[:512]))
    table = dict(line.rsplit(None, 1) for line in printed.splitlines() if "final" in line)
    assert table["final collapsed"] == "no"
    from ldm_keras.data.datasets import load_image_dataset

    (x, _), _ = load_image_dataset("digits", seed=0)
    enc, head = (keras.saving.load_model(str(out / f)) for f in ("encoder.keras", "head.keras"))
    z = head.predict(enc.predict(x[:512], verbose=0), verbose=0).astype("float64")
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum() + 1e-7
    assert abs(float(table["final rep_rank"]) - np.exp(-np.sum(p * np.log(p)))) < 2e-3
    assert 0.0 < float(table["final rep_spread"]) <= 1.0 + 1e-6
    assert run["backend"] == keras.backend.backend() and run["epochs"] == 1
    # the metrics read the labels: the same read-outs of the saved encoder's features with
    # the training labels shuffled (the control) sit at chance (0.1 for ten digits); the
    # run's metrics are far above it
    from ldm_keras.evaluation.classification import evaluate_embeddings

    (_, y), (x_test, y_test) = load_image_dataset("digits", seed=0)
    ztr, zte = (enc.predict(a, verbose=0) for a in (x, x_test))
    control = evaluate_embeddings(ztr, np.random.default_rng(0).permutation(y), zte, y_test)
    for key in ("probe_full", "probe_10", "knn"):
        assert control[key] < 0.25, (key, control[key])
        assert metrics[key] > control[key] + 0.3, (key, metrics[key], control[key])
    assert os.path.exists(out / "encoder.keras")
    assert run["out"] == os.path.abspath(out)
    assert run["encoder"] == os.path.join(os.path.abspath(out), "encoder.keras")
    assert {"encoder.keras", "head.keras", "metrics.json", "run.json"} <= set(os.listdir(out))
    assert not [f for f in os.listdir(out) if f.startswith(".")]  # no lock, no temporary
    # a run's metrics are reproduced by `evaluate` from the saved encoder; --plot writes
    # the held-out embeddings' PCA next to them
    assert cli.main(["evaluate", str(out), "--plot"]) == 0
    assert (out / "embedding.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("probe_full", "probe_10", "knn"):
        assert abs(again[key] - metrics[key]) < 1e-6
    # a second run on the same --out is refused before it trains; the first is kept
    before = (out / "encoder.keras").read_bytes()
    code = cli.main(["train", "--recipe", "plane-kde", "--dataset", "digits", "--epochs", "1",
                     "--out", str(out), "--quiet"])
    assert code == 2 and "already holds a finished run" in _one_line_error(capsys)
    assert (out / "encoder.keras").read_bytes() == before


def test_recipes_lists_all(capsys):
    assert cli.main(["recipes"]) == 0
    printed = capsys.readouterr().out
    for name in ("simclr", "vicreg", "byol", "categorical"):
        assert name in printed


def _one_line_error(capsys, command="train"):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"ldm-keras {command}: error: ") and err.endswith(
        "(--debug shows the traceback)"), err
    return err


def test_unknown_recipe_and_dataset_are_one_line_errors(tmp_path, capsys):
    assert cli.main(["train", "--recipe", "nope", "--out", str(tmp_path / "a")]) == 2
    assert "Known recipes" in _one_line_error(capsys)
    assert cli.main(["train", "--dataset", "mnist", "--out", str(tmp_path / "b")]) == 2
    assert "Unknown dataset" in _one_line_error(capsys)
    with pytest.raises(ValueError, match="Unknown dataset"):  # --debug: the exception itself
        cli.main(["train", "--dataset", "mnist", "--out", str(tmp_path / "c"), "--debug"])


def test_evaluate_rejects_a_folder_without_a_run(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path)]) == 2
    assert "lacks run.json" in _one_line_error(capsys, "evaluate")
    with pytest.raises(ValueError, match="lacks run.json"):
        cli.main(["evaluate", str(tmp_path), "--debug"])


@pytest.mark.parametrize("flag,value", [("--epochs", "0"), ("--batch-size", "0"),
                                        ("--window", "0"), ("--stride", "-2"),
                                        ("--epochs", "1.5"), ("--learning-rate", "-1"),
                                        ("--learning-rate", "nan"), ("--learning-rate", "0")])
def test_numbers_are_checked_before_anything_runs(flag, value, tmp_path, capsys):
    # 0 used to mean "unset" (--epochs 0 ran 50 epochs), -1 trained by gradient ascent
    with pytest.raises(SystemExit) as e:
        cli.main(["train", flag, value, "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and ("integer >= 1" in err or "finite number > 0" in err), err
    assert not (tmp_path / "x").exists()


def test_out_is_checked_before_training(tmp_path, capsys):
    taken = tmp_path / "file"
    taken.write_text("not a folder")
    assert cli.main(["train", "--recipe", "plane-kde", "--out", str(taken)]) == 2
    assert "is an existing file" in _one_line_error(capsys)
    assert taken.read_text() == "not a folder"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / ".lock").write_text("123\n")
    assert cli.main(["train", "--recipe", "plane-kde", "--out", str(busy)]) == 2
    assert "in use by another run" in _one_line_error(capsys)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "ro"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            assert cli.main(["train", "--recipe", "plane-kde",
                             "--out", str(locked / "run")]) == 2
            assert "cannot be created or written" in _one_line_error(capsys)
        finally:
            locked.chmod(0o700)


#: The backend a run is trained on by ``--backend`` below: another than the active one,
#: and not TensorFlow (the slowest to import, in a subprocess).
OTHER_BACKEND = "torch" if keras.backend.backend() != "torch" else "jax"


class _Exec(Exception):
    """Raised by the stand-in for ``os.execvpe``: the process is not replaced."""


def test_backend_option_reexecutes_and_the_run_evaluates_on_another_backend(
        tmp_path, capsys, monkeypatch):
    """``--backend B`` with Keras loaded on another backend re-executes the same command
    with ``KERAS_BACKEND=B`` (``os.execvpe``, recorded here instead of replacing the test
    process, then run as it would have run: a subprocess with that program, those
    arguments and that environment). A sequence recipe trains there, on ``B``; its saved
    encoder is then evaluated here, on the active backend: the held-out R² recomputed
    with scikit-learn, and ``evaluate``, give back the R² the run wrote."""
    import subprocess
    import sys

    calls = []

    def execvpe(file, args, env):
        calls.append((file, list(args), dict(env)))
        raise _Exec

    monkeypatch.setattr(cli.os, "execvpe", execvpe)
    out = tmp_path / "seq"
    argv = ["--backend", OTHER_BACKEND, "train", "--recipe", "kalman-ssl",
            "--dataset", "dotmotion-circular", "--sequences", "16", "--test-sequences", "8",
            "--window", "10", "--epochs", "1", "--batch-size", "8", "--out", str(out),
            "--quiet"]
    with pytest.raises(_Exec):
        cli.main(argv)
    ((file, args, env),) = calls
    assert file == sys.executable and args == [sys.executable, "-m", "ldm_keras.cli", *argv]
    assert env == {**os.environ, "KERAS_BACKEND": OTHER_BACKEND}
    assert not out.exists()                         # nothing ran before the re-execution
    # the sub-commands' spelling (`train --backend B`, `zoo --backend B`) re-executes too;
    # the active backend does not
    for sub in (["train", "--backend", OTHER_BACKEND, "--out", str(out)],
                ["zoo", "--backend", OTHER_BACKEND, "list"]):
        with pytest.raises(_Exec):
            cli.main(sub)
        assert calls[-1][1][3:] == sub and calls[-1][2]["KERAS_BACKEND"] == OTHER_BACKEND
    assert cli.main(["--backend", keras.backend.backend(), "recipes"]) == 0
    assert len(calls) == 3
    capsys.readouterr()

    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = dict(line.split(None, 1) for line in proc.stdout.splitlines()
                 if len(line.split(None, 1)) == 2)
    assert table["backend"].strip() == OTHER_BACKEND and "rotation" in table
    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert run["backend"] == OTHER_BACKEND
    assert float(table["r2"]) == pytest.approx(metrics["r2"], abs=1e-4)
    assert run["kind"] == "sequence" and run["sequence_length"] == 10
    assert run["num_train"] == 16 * 10  # 100-step sequences cut into 10-step windows
    assert metrics["final_loss"] == run["loss_per_epoch"][-1]
    encoder = keras.saving.load_model(out / "encoder.keras", safe_mode=True)
    assert encoder.output_shape == (None, 2)
    # the held-out R², recomputed here with scikit-learn from the saved encoder: an affine
    # read-out of the positions fitted on the training windows' per-frame latents, scored
    # on the test windows' (the same windows as the run: its own settings reload them)
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    from ldm_keras.data.datasets import load_sequence_dataset

    (xtr, ytr), (xte, yte), _ = load_sequence_dataset(
        run["dataset"], run["sequences"], run["test_sequences"], run["window"], run["stride"],
        seed=run["seed"])
    assert len(xtr) == 160 and len(xte) == 80
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    ztr, zte = (encoder.predict(flat(a), verbose=0).astype("float64") for a in (xtr, xte))
    want = r2_score(flat(yte), LinearRegression().fit(ztr, flat(ytr)).predict(zte))
    assert abs(metrics["r2"] - want) < 1e-6, (metrics["r2"], want)
    # `evaluate` here reproduces the R² (and --plot draws the test windows' latents,
    # coloured by time step)
    assert cli.main(["evaluate", str(out), "--plot"]) == 0
    assert (out / "embedding.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(again["r2"] - metrics["r2"]) < 1e-6


def test_sequence_recipe_trains_on_a_users_h5_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "rec.h5"
    with h5py.File(path, "w") as f:  # two recordings of different lengths, with targets
        for i, n in enumerate((60, 45)):
            s = np.cumsum(rng.normal(size=(n, 2)), axis=0).astype("float32")
            f[f"frames/{i}"] = np.tanh(s @ rng.normal(size=(2, 12))).astype("float32")
            f[f"state/{i}"] = s
    out = tmp_path / "h5run"
    code = cli.main(["train", "--recipe", "kalman-ssl", "--dataset",
                     f"{path}:frames:state", "--window", "8", "--epochs", "1",
                     "--batch-size", "16", "--latent-dim", "3", "--learning-rate", "3e-4",
                     "--seed", "5", "--out", str(out), "--quiet"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "r2" in metrics and "r2_untrained" in metrics
    run = json.loads((out / "run.json").read_text())
    assert run["window"] == 8 and run["stride"] == 4
    # --latent-dim 3 (the targets are 2-wide, the default would be 2), --learning-rate, --seed
    assert (run["latent_dim"], run["learning_rate"], run["seed"]) == (3, 3e-4, 5)
    encoder = keras.saving.load_model(out / "encoder.keras", safe_mode=True)
    assert encoder.output_shape == (None, 3)
    # one epoch on 105 frames may end with the "no better than untrained" warning on
    # stderr; the error line below is the next command's alone
    capsys.readouterr()
    assert cli.main(["train", "--recipe", "cpc", "--dataset", f"{tmp_path}/nothere.h5:frames",
                     "--out", str(tmp_path / "x")]) == 2
    assert "nothere.h5" in _one_line_error(capsys)


def _recording(path, rows=60, bad_row=None):
    rng = np.random.default_rng(0)
    s = np.cumsum(rng.normal(size=(rows, 2)), axis=0).astype("float32")
    frames = np.tanh(s @ rng.normal(size=(2, 12))).astype("float32")
    if bad_row is not None:
        frames[bad_row, 3] = np.nan
    with h5py.File(path, "w") as f:
        f["frames"], f["state"] = frames, s


def test_a_nan_row_in_a_recording_is_named_before_training(tmp_path, capsys):
    # before: every step skipped, exit 0, "final_loss 0.0000", an untrained encoder saved
    _recording(tmp_path / "rec.h5", bad_row=17)
    out = tmp_path / "run"
    code = cli.main(["train", "--recipe", "kalman-ssl", "--dataset",
                     f"{tmp_path}/rec.h5:frames:state", "--window", "8", "--epochs", "1",
                     "--out", str(out), "--quiet"])
    assert code == 2
    assert "row 17 of 'frames' holds NaN or inf" in _one_line_error(capsys)
    assert os.listdir(out) == []  # checked and created, but nothing written


def test_a_run_with_every_step_skipped_fails_and_saves_nothing(tmp_path, capsys,
                                                             monkeypatch):
    # NaN frames that get past the loader (its own check is tested above): every step is
    # skipped (before: exit 0, "final_loss 0.0000", an untrained encoder saved as trained)
    from ldm_keras import jobs

    load = jobs.load_sequence_dataset

    def nan_frames(*args, **kwargs):
        train, test, info = load(*args, **kwargs)
        return (np.full_like(np.asarray(train[0]), np.nan), train[1]), test, info

    monkeypatch.setattr(jobs, "load_sequence_dataset", nan_frames)
    _recording(tmp_path / "rec.h5", rows=80)
    out = tmp_path / "run"
    code = cli.main(["train", "--recipe", "cpc", "--dataset", f"{tmp_path}/rec.h5:frames",
                     "--window", "8", "--epochs", "2", "--batch-size", "8", "--out", str(out),
                     "--quiet"])
    assert code == 1
    err = _one_line_error(capsys)
    assert "4 of the 4 training steps were skipped as non-finite" in err, err
    assert os.listdir(out) == []


def test_evaluate_works_from_another_directory(tmp_path, capsys, monkeypatch):
    # run.json held the dataset path as given (relative): evaluate elsewhere failed
    monkeypatch.chdir(tmp_path)
    _recording("rec.h5")
    assert cli.main(["train", "--recipe", "kalman-ssl", "--dataset", "rec.h5:frames:state",
                     "--window", "8", "--epochs", "1", "--batch-size", "16", "--out", "run",
                     "--quiet"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["dataset"] == f"{os.path.abspath('rec.h5')}:frames:state"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path / "run")]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(again["r2"] - metrics["r2"]) < 1e-5


def test_writes_are_atomic(tmp_path):
    from ldm_keras.outputs import write_atomic

    target = tmp_path / "encoder.keras"
    target.write_bytes(b"the previous run")

    def full_disk(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half of a new fi")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, full_disk, suffix=".keras")
    assert target.read_bytes() == b"the previous run"
    assert os.listdir(tmp_path) == ["encoder.keras"]  # the temporary file is gone
    write_atomic(target, lambda tmp: open(tmp, "wb").write(b"new"), suffix=".keras")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["encoder.keras"]


def test_train_options_reach_the_training_job(monkeypatch, capsys):
    """``--seed``, ``--learning-rate``, ``--batch-size`` (and, for a sequence recipe,
    ``--latent-dim``, ``--stride``) are passed to the job as given, not dropped or
    replaced by their defaults."""
    from ldm_keras import jobs

    seen = {}

    def fake(kind):
        def job(**kwargs):
            seen[kind] = kwargs
            return {"backend": "x", "epochs": 1, "metrics": {}, "train_seconds": 0.0,
                    "encoder_path": "e"}
        return job

    monkeypatch.setattr(jobs, "train_multiview", fake("multiview"))
    monkeypatch.setattr(jobs, "train_sequence", fake("sequence"))
    assert cli.main(["train", "--recipe", "byol", "--seed", "7", "--learning-rate", "3e-4",
                     "--batch-size", "64", "--quiet"]) == 0
    got = seen["multiview"]
    assert (got["recipe"], got["seed"], got["learning_rate"], got["batch_size"]) == (
        "byol", 7, 3e-4, 64)
    assert cli.main(["train", "--recipe", "kalman-ssl", "--dataset", "dotmotion-circular",
                     "--seed", "3", "--learning-rate", "2e-4", "--latent-dim", "5",
                     "--window", "12", "--stride", "3", "--quiet"]) == 0
    got = seen["sequence"]
    assert (got["seed"], got["learning_rate"], got["latent_dim"], got["window"],
            got["stride"]) == (3, 2e-4, 5, 12, 3)
    # the defaults: seed 0, the recipe's learning rate (None), batch size 256
    assert cli.main(["train", "--recipe", "byol", "--quiet"]) == 0
    got = seen["multiview"]
    assert (got["seed"], got["learning_rate"], got["batch_size"]) == (0, None, 256)
    capsys.readouterr()


def test_zoo_info_json_is_the_entry_record(capsys):
    """``zoo info --json`` prints only JSON, and it is :func:`ldm_keras.zoo.info` of the
    entry: the index record, the config summary and the published metrics."""
    from ldm_keras import zoo

    assert cli.main(["zoo", "info", "digits-simclr", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)          # nothing but JSON
    assert printed == json.loads(json.dumps(zoo.info("digits-simclr"), default=str))
    assert printed["name"] == "digits-simclr" and printed["has_weights"] is True
    metrics = json.loads(zoo.entry_files("digits-simclr")["metrics.json"].read_text())
    assert printed["metrics"] == metrics and "probe_10" in metrics
    # without --json: the card, then the short record
    assert cli.main(["zoo", "info", "digits-simclr"]) == 0
    out = capsys.readouterr().out
    assert "## How to cite" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_evaluate_plots_and_reports_the_consistency_of_two_runs(digits_runs, capsys):
    from ldm_keras.data.datasets import load_image_dataset
    from ldm_keras.evaluation import consistency

    runs = [out for out, code, _ in digits_runs]
    assert [code for _, code, _ in digits_runs] == [0, 0]
    for run in runs:                       # written by another test on the same runs
        (run / "embedding.png").unlink(missing_ok=True)
    # two runs: the consistency of their held-out embeddings, as evaluation.consistency;
    # --plot writes each run's embedding.png next to its metrics
    assert cli.main(["evaluate", str(runs[0]), str(runs[1]), "--plot"]) == 0
    printed = capsys.readouterr().out
    assert "consistency" in printed
    for run in runs:
        png = (run / "embedding.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    got = json.loads(printed.strip().splitlines()[-1])
    _, (x_test, _) = load_image_dataset("digits", seed=0)
    z = [keras.saving.load_model(str(r / "encoder.keras")).predict(x_test, verbose=0)
         for r in runs]
    want = consistency(z[0], z[1])
    np.testing.assert_allclose([got["consistency_a_to_b"], got["consistency_b_to_a"]],
                               [want.a_to_b, want.b_to_a], atol=1e-6)
    # a run against itself is an exact affine map
    assert cli.main(["evaluate", str(runs[1]), str(runs[1])]) == 0
    same = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert same["consistency"] > 0.999
    with pytest.raises(SystemExit):
        cli.main(["evaluate", str(runs[0]), str(runs[1]), str(runs[1])])


def test_the_monitor_leaves_the_training_alone(digits_runs, tmp_path):
    # `train` attaches a RepresentationMonitor; without it the same job trains the same
    from ldm_keras import jobs

    out, code, _ = digits_runs[0]
    plain = jobs.train_multiview("plane-kde", "digits", epochs=1, batch_size=256, seed=0,
                                 out=str(tmp_path / "plain"), verbose=0, monitor=False)
    assert code == 0 and plain["monitor"] is None
    watched = keras.saving.load_model(str(out / "encoder.keras"))
    for a, b in zip(plain["model"].encoder.get_weights(), watched.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
