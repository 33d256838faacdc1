"""Benchmarks: the runner works end to end, and baselines compute what our code computes.

The speed/memory ratios in benchmarks/results/bench.md compare our estimators and Kalman
filter with straightforward baselines written in benchmarks/bench/native.py and
cases_kalman.py; these tests check that each baseline returns the same value (and, for
the entropy estimators, the same gradient) as our implementation, so the comparison is
apples to apples. Tolerances are float32 round-off of differently ordered sums.
"""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from bench import cases_kalman, measure, native  # noqa: E402


def test_quick_run_smoke(tmp_path):
    """`run.py --quick --only <one case>` on this backend writes finite ratios."""
    backend = keras.backend.backend()
    env = dict(os.environ, KERAS_BACKEND=backend)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--only",
         "entropy/gaussian_kde", "--backends", backend, "--no-memory",
         "--out-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "bench.json") as f:
        result = json.load(f)
    assert {"meta", "entropy", "kalman", "train", "flops", "targets"} <= set(result)
    assert len(result["meta"]["env_start"]["loadavg"]) == 3
    (row,) = result["entropy"]
    assert (row["backend"], row["estimator"], row["N"], row["d"]) == (
        backend, "gaussian_kde", 64, 16)
    for key in ("median", "low", "high"):
        assert math.isfinite(row["speedup"][key]) and row["speedup"][key] > 0
    assert row["speedup"]["low"] <= row["speedup"]["median"] <= row["speedup"]["high"]
    assert (tmp_path / "bench.md").read_text().startswith("# ldm_keras benchmarks")


@pytest.mark.skipif(not measure.can_measure_memory(), reason="needs Linux clear_refs")
def test_peak_memory_sees_native_allocations():
    """The VmHWM method sees a 64 MiB NumPy buffer (allocated outside Python's heap)."""
    size = 64 * 2**20

    def alloc():
        a = np.ones(size // 8)  # float64, touched
        return float(a[-1])

    peak = measure.peak_memory(alloc)
    assert 0.9 * size <= peak <= 1.5 * size


@pytest.mark.parametrize("estimator", ["gaussian_kde", "vmf_kde", "knn", "logdet"])
def test_baselines_match_our_estimators(estimator):
    """Value within 1e-4 relative, gradient within 1e-3 (max abs, scaled) of ours."""
    be = native.Backend(keras.backend.backend())
    rng = np.random.default_rng(3)
    z = be.tensor(rng.standard_normal((48, 8)))
    kw = {"gaussian_kde": {"precision": 5.0}, "vmf_kde": {"precision": 5.0},
          "knn": {"k": 3}, "logdet": {"jitter": 1e-6}}[estimator]
    h_ours, g_ours = be.value_and_grad(native.ours(estimator, **kw))(z)
    h_base, g_base = be.value_and_grad(be.baseline(estimator, **kw))(z)
    h_ours, h_base = float(be.numpy(h_ours)), float(be.numpy(h_base))
    g_ours, g_base = be.numpy(g_ours), be.numpy(g_base)
    assert h_base == pytest.approx(h_ours, rel=1e-4, abs=1e-4)
    scale = max(1.0, float(np.abs(g_base).max()))
    np.testing.assert_allclose(g_ours, g_base, rtol=0, atol=1e-3 * scale)


def test_kalman_baseline_matches_our_filter():
    """The eager torch.inverse loop gives our KalmanFilter's Σ_t mean_b nll (rel 1e-4)."""
    torch = pytest.importorskip("torch")
    case = {"B": 3, "T": 6, "S": 2}
    z = cases_kalman.inputs(case)
    kf = cases_kalman.build_ours(case["S"], case["T"])
    ours = float(keras.ops.convert_to_numpy(
        keras.ops.sum(keras.ops.mean(kf(z)["nll"], axis=0))))
    p = {k: torch.tensor(v) for k, v in cases_kalman.params(case["S"]).items()}
    base = float(cases_kalman.reference_loss(torch.from_numpy(z), p, torch))
    # Independent check of the baseline itself: a float64 NumPy filter, same model.
    ref = _numpy_kalman_loss(z.astype("float64"), cases_kalman.params(case["S"]))
    assert base == pytest.approx(ref, rel=1e-4)
    assert ours == pytest.approx(ref, rel=1e-4)


def _numpy_kalman_loss(z, p):
    a, b = p["transition"].astype("float64"), p["offset"].astype("float64")
    scale = math.exp(float(p["log_noise_scale"]))
    q = np.diag(np.exp(p["log_process_var"].astype("float64")) * scale)
    r = np.diag(np.exp(p["log_observation_var"].astype("float64")) * scale)
    bsz, steps, s = z.shape
    total = 0.0
    for i in range(bsz):
        h, cov = np.zeros(s), np.eye(s)
        for t in range(steps):
            hp = a @ (h - b) + b
            pp = a @ cov @ a.T + q
            sm = pp + r + 1e-6 * np.eye(s)
            e = z[i, t] - hp
            gain = np.linalg.solve(sm, pp).T
            h = hp + gain @ e
            ikd = np.eye(s) - gain
            cov = ikd @ pp @ ikd.T + gain @ r @ gain.T
            total += (0.5 * e @ np.linalg.solve(sm, e)
                      + 0.5 * np.linalg.slogdet(sm)[1]) / bsz
    return total


def test_interleaved_timing_repeats_the_faster_call():
    """A fast callable is called several times per round, the slow one once; both timed."""
    import time

    calls = {"slow": 0, "fast": 0}

    def slow():
        calls["slow"] += 1
        time.sleep(0.06)

    def fast():
        calls["fast"] += 1
        time.sleep(0.002)

    out = measure.time_interleaved({"slow": slow, "fast": fast}, repeats=3)
    assert out["slow"]["calls_per_round"] == 1
    assert 2 <= out["fast"]["calls_per_round"] <= 10
    assert out["slow"]["n"] == 3 and out["fast"]["n"] == 3 * out["fast"]["calls_per_round"]
    # warm-up and the steady-time probe are not timed
    assert calls["slow"] == 3 + 2 and calls["fast"] == out["fast"]["n"] + 2
    assert out["fast"]["median"] < out["slow"]["median"] / 3


def test_merge_uses_the_in_process_kalman_baseline_and_keeps_repeated_workers():
    from bench import report

    def summary(t):
        return {"time": measure.summarize([t, t, t])}

    case = {"id": "kalman/B32_T100_S2", "section": "kalman", "B": 32, "T": 100, "S": 2}
    jax_w = {"backend": "jax", "mode": "time", "sections": ["kalman", "train"],
             "cases": {case["id"]: {"case": case, "ours": summary(0.01),
                                    "baseline": summary(0.2)}}}
    torch_w = {"backend": "torch", "mode": "time", "sections": ["kalman", "train"],
               "cases": {case["id"]: {"case": case, "ours": summary(0.5),
                                      "baseline": summary(0.3)}}}
    again = {**jax_w, "cases": {}}
    merged = report.merge([jax_w, torch_w, again], {"command": "test"})
    jax_row = [r for r in merged["kalman"] if r["backend"] == "jax"][0]
    assert jax_row["speedup"]["median"] == pytest.approx(20.0)   # 0.2 / 0.01, same worker
    assert set(merged["raw"]) == {"jax/time/kalman+train", "torch/time/kalman+train",
                                  "jax/time/kalman+train#2"}
