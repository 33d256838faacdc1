"""End-of-run warnings of the training jobs and the CLI (issue: robustness, item 4): a run
that ends collapsed, skipped steps, evaluated to NaN or learned nothing the read-out sees
says so at the end, with the likely cause."""

import json
import math
import warnings

import numpy as np
import pytest

from ldm_keras import cli, jobs
from ldm_keras.models.encoders import mlp

HEALTHY = {"rep_rank": 1.9, "rep_spread": 0.36, "rep_shrink": 0.99, "collapsed": 0.0,
           "size": 2}
COLLAPSED = {"rep_rank": 1.01, "rep_spread": 0.01, "rep_shrink": 0.02, "collapsed": 1.0,
             "size": 64}


def test_a_healthy_run_gets_no_warning():
    assert jobs.run_warnings("simclr", {}, HEALTHY, 0, 120, {"probe_10": 0.9}) == []
    assert jobs.run_warnings("kalman-ssl", {}, HEALTHY, 0, 60,
                             {"r2": 0.9, "r2_untrained": 0.4}) == []


@pytest.mark.parametrize("recipe, settings, cause", [
    ("simclr", {}, "raise `entropy_weight`"),
    ("byol", {}, "no explicit entropy term"),            # predictor + EMA, no entropy
    ("plane-knn", {"entropy_weight": 0.0}, "no explicit entropy term"),
    ("kalman-ssl-knn", {}, "raise `entropy_weight`"),
])
def test_a_collapsed_run_names_the_numbers_and_the_likely_cause(recipe, settings, cause):
    (said,) = jobs.run_warnings(recipe, settings, COLLAPSED, 0, 120, {})
    assert said.startswith("The run ended collapsed: effective rank 1.01 of 64 latent "
                           "dimensions, spread 0.010, shrink 0.020"), said
    assert cause in said, said


def test_skipped_steps_nan_metrics_and_no_gain_over_untrained_are_said():
    said = jobs.run_warnings("kalman-ssl", {}, HEALTHY, 3, 40,
                             {"r2": 0.31, "r2_untrained": 0.35, "rotation": math.nan})
    assert len(said) == 3, said
    assert said[0].startswith("3 of the 40 training steps were skipped as non-finite")
    assert said[1].startswith("The evaluation gave non-finite rotation.")
    assert "no better than the untrained one (held-out R² 0.3100 against 0.3500)" in said[2]
    (said,) = jobs.run_warnings("kalman-ssl", {}, {"nonfinite": 1.0, "collapsed": 0.0,
                                                   "size": 2}, 0, 40, {})
    assert said.startswith("The latents at the end hold NaN or inf."), said
    # a trained read-out above the untrained one is not a warning
    assert jobs.run_warnings("kalman-ssl", {}, HEALTHY, 0, 40,
                             {"r2": 0.36, "r2_untrained": 0.35}) == []


TRAIN = ["train", "--recipe", "kalman-ssl", "--dataset", "state-space-nonlinear-2d",
         "--sequences", "4", "--test-sequences", "2", "--window", "20", "--stride", "20",
         "--batch-size", "40", "--epochs", "2", "--quiet"]


def _frozen_constant_encoder(frame_shape, latent_dim):
    """Every frame to the same latent (zero kernels, frozen): collapsed by construction."""
    enc = mlp(frame_shape[0], [8], latent_dim, batch_norm=False, name="encoder")
    enc.set_weights([np.zeros_like(w) for w in enc.get_weights()])
    enc.trainable = False
    return enc


def test_the_job_and_the_cli_say_a_collapsed_run_ended_collapsed(monkeypatch, tmp_path,
                                                                 capsys):
    monkeypatch.setattr(jobs, "_sequence_encoder", _frozen_constant_encoder)
    code = cli.main(TRAIN + ["--out", str(tmp_path / "collapsed")])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "ldm-keras train: warning: The run ended collapsed: effective rank" in captured.err
    assert "Likely cause: the objective has no explicit entropy term" in captured.err
    with open(tmp_path / "collapsed" / "run.json") as f:
        record = json.load(f)
    assert record["latents_at_end"]["collapsed"] == 1.0
    assert any(w.startswith("The run ended collapsed") for w in record["warnings"])


def test_the_same_run_with_a_learning_encoder_is_not_called_collapsed(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = jobs.train_sequence("kalman-ssl", "state-space-nonlinear-2d", epochs=2,
                                     batch_size=40, sequences=4, test_sequences=2, window=20,
                                     stride=20, out=str(tmp_path / "ok"), verbose=0)
    assert not any(w.startswith("The run ended collapsed") for w in result["warnings"])
    said = [str(w.message) for w in caught if issubclass(w.category, jobs.RunWarning)]
    assert said == result["warnings"]   # what the job returns is what it warned
    with open(tmp_path / "ok" / "run.json") as f:
        assert '"collapsed": 0.0' in f.read()
    assert np.isfinite(result["metrics"]["r2"])
