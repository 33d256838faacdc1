"""The tutorials run top to bottom in fast mode, print their numbers and write figures.

Each tutorial (``tutorials/NN_*.py``, jupytext percent format) is executed in a
subprocess with ``LDM_KERAS_FAST=1`` and its figures redirected to a temporary folder
(``LDM_KERAS_TUTORIAL_OUT``), so the committed full-mode figures are never touched. The
suite runs them on its backend, so CI runs every tutorial on all three (about two
minutes per backend); ``nox -s tutorials`` runs them alone.
"""

import math
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS_DIR = os.path.join(ROOT, "tutorials")
BACKEND = keras.backend.backend()

# tutorial -> (numbers it must print as "RESULT name = value", figures it must write)
TUTORIALS = {
    "01_quick_start.py": (
        ["reload_max_abs_diff", "cross_backend_max_abs_diff", "probe_10", "probe_full", "knn",
         "raw_pixels_probe_10", "raw_pixels_probe_full", "online_probe_acc", "online_knn_acc",
         "rep_rank_first_epoch", "rep_rank_final", "collapsed_epochs"],
        ["01_training_curves.png", "01_linear_probe.png", "01_online_monitoring.png"]),
    "02_one_objective_many_methods.py": (
        ["simclr_probe_10", "sphere-ldm_probe_10", "vicreg_probe_10", "simsiam_probe_10",
         "byol_probe_10", "categorical_probe_10", "raw_pixels_probe_10",
         "categorical_clustering", "sphere_ldm_mutual_information", "simclr_mutual_information",
         "sphere_ldm_view_cosine", "simclr_view_cosine", "raw_pixels_effective_rank",
         *[f"{m}_{kind}effective_rank" for m in ("simclr", "sphere_ldm", "vicreg", "simsiam",
                                                  "byol", "categorical")
           for kind in ("", "latent_")]],
        ["02_probe_accuracy.png", "02_embeddings.png", "02_joint_vs_marginal.png",
         "02_effective_rank.png"]),
    "03_kalman_filtering.py": (
        ["position_r2", "coverage95", "rotation_per_step", "spectral_radius",
         "rollout_rmse_10_steps", "jump_detection_auc", "variance_ratio_after_jump",
         "r2_missing_frames_filtered", "r2_missing_frames_smoothed",
         "band_width_missing_filtered_over_smoothed"],
        ["03_frames.png", "03_latents_and_predictions.png", "03_rollout.png", "03_jumps.png",
         "03_smoothing.png"]),
    "04_identifiability.py": (
        ["r2_raw_observations", "r2_predictive_ldm", "r2_no_entropy", "r2_autoencoder",
         "latent_std_no_entropy", "r2_predictive_ldm_seed_mean"],
        ["04_data.png", "04_latents.png", "04_r2.png"]),
    "05_ica.py": (
        ["images_amari_linearica", "images_amari_linearica_logistic", "images_amari_fastica",
         "ou_amari_linearica_temporal", "ou_amari_fastica"],
        ["05_images.png", "05_amari.png"]),
    "06_using_the_zoo.py": (
        ["zoo_verify_ok", "zoo_reference_max_abs_diff", "digits_simclr_probe_10",
         "digits_vicreg_ldm_probe_10", "frozen_zoo_encoder_accuracy", "from_scratch_accuracy",
         "kalman_zoo_r2"],
        ["06_zoo_embeddings.png", "06_few_labels.png", "06_zoo_kalman.png"]),
}


NAN_OK = {"jump_detection_auc", "variance_ratio_after_jump"}


def _tutorial_files():
    return sorted(f for f in os.listdir(TUTORIALS_DIR)
                  if f.endswith(".py") and not f.startswith("_"))


def test_every_tutorial_is_registered_here():
    assert set(_tutorial_files()) == set(TUTORIALS), (
        "tutorials/ and TUTORIALS in tests/test_tutorials.py disagree: "
        f"{sorted(set(_tutorial_files()) ^ set(TUTORIALS))}")


@pytest.mark.parametrize("name", sorted(TUTORIALS))
def test_tutorial_is_a_percent_notebook(name):
    with open(os.path.join(TUTORIALS_DIR, name), encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("# ---\n# jupyter:"), "jupytext header missing"
    cells = re.split(r"^# %%", text, flags=re.M)
    assert len(cells) >= 6, "too few cells for a notebook"
    assert cells[1].startswith(" [markdown]"), "the first cell must be markdown"
    assert "**What this shows.**" in cells[1], "the first cell must say what it shows"
    assert 'print(f"RESULT ' in text, "the tutorial must print its numbers as RESULT lines"


def _check_figure(path):
    import matplotlib.image as mpimg

    assert os.path.exists(path), f"figure not written: {path}"
    assert os.path.getsize(path) > 2000, f"figure nearly empty: {path}"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] >= 200 and img.shape[1] >= 300, img.shape
    rgb = img[..., :3].reshape(-1, 3)
    assert float(rgb.std()) > 0.02, f"figure is one flat colour: {path}"
    # Not a blank canvas with a few marks: > 1 % of the pixels differ from the commonest.
    values, counts = np.unique(np.round(rgb * 255).astype(np.int32) @ [65536, 256, 1],
                               return_counts=True)
    assert 1.0 - counts.max() / len(rgb) > 0.01, f"figure nearly blank: {path}"
    assert len(values) > 20, f"figure has too few colours: {path}"


@pytest.mark.parametrize("name", sorted(TUTORIALS))
def test_tutorial_runs_in_fast_mode(name, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "LDM_KERAS_FAST": "1", "MPLBACKEND": "Agg",
           "LDM_KERAS_TUTORIAL_OUT": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if BACKEND == "torch":
        env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, os.path.join(TUTORIALS_DIR, name)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    tail = (proc.stdout[-3000:] + "\n--- stderr ---\n" + proc.stderr[-3000:])
    assert proc.returncode == 0, f"{name} failed:\n{tail}"
    keys, figures = TUTORIALS[name]
    for key in keys:
        m = re.search(rf"^RESULT {re.escape(key)} = (\S+)", proc.stdout, flags=re.M)
        assert m, f"{name} did not print RESULT {key}:\n{tail}"
        value = m.group(1)
        if value not in ("True", "False"):
            # fast mode may have no jump in the scored frames: those two may be nan
            assert math.isfinite(float(value)) or key in NAN_OK, (key, value)
    for fig in figures:
        _check_figure(os.path.join(str(tmp_path), fig))
