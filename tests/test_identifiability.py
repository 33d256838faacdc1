"""Smoke test of benchmarks/identifiability.py: windows, models and the R² read-out run."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
import identifiability as ident  # noqa: E402

from ldm_keras.data import state_space  # noqa: E402


def test_windows_cut_the_preset_sequences():
    x, s = ident.load_windows("nonlinear-2d", "train", window=50, num_sequences=3)
    ref = state_space.load("nonlinear-2d", "train", num_sequences=3)
    assert x.shape == (12, 50, 20) and s.shape == (12, 50, 2)
    np.testing.assert_array_equal(x[4], ref.observations[1, :50])
    np.testing.assert_array_equal(s[5], ref.latents[1, 50:100])


def test_one_short_run_reports_a_finite_r2():
    out = ident.run("knn", "nonlinear-2d", seed=0, epochs=1, window=10, batch_size=8,
                    num_sequences=2, readout_frames=400)
    assert out["method"] == "knn" and np.isfinite(out["r2_test"]) and out["r2_test"] <= 1.0
