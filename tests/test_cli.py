"""The ldm-keras command line on the active backend."""

import json
import os

import keras
import pytest

from ldm_keras import cli


def test_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "--recipe", "plane-kde", "--dataset", "digits", "--epochs", "1",
                     "--batch-size", "256", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "probe_10" in printed and "probe_full" in printed and "knn" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert run["backend"] == keras.backend.backend() and run["epochs"] == 1
    for key in ("probe_full", "probe_10", "knn"):
        assert 0.0 <= metrics[key] <= 1.0
    assert os.path.exists(out / "encoder.keras")
    # a run's metrics are reproduced by `evaluate` from the saved encoder
    assert cli.main(["evaluate", str(out)]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("probe_full", "probe_10", "knn"):
        assert abs(again[key] - metrics[key]) < 1e-6


def test_recipes_lists_all(capsys):
    assert cli.main(["recipes"]) == 0
    printed = capsys.readouterr().out
    for name in ("simclr", "vicreg", "byol", "categorical"):
        assert name in printed


def test_unknown_recipe_and_dataset_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="Known recipes"):
        cli.main(["train", "--recipe", "nope", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="Unknown dataset"):
        cli.main(["train", "--dataset", "mnist", "--out", str(tmp_path)])


def test_evaluate_rejects_a_folder_without_a_run(tmp_path):
    with pytest.raises(ValueError, match="lacks run.json"):
        cli.main(["evaluate", str(tmp_path)])
