"""Shared plumbing of the robustness suites: resumable one-JSON-per-run results, summaries.

Every run writes ``benchmarks/robustness/results/<suite>/<config>/<case>__s<seed>.json``;
a run whose file exists is skipped, so an interrupted suite resumes where it stopped.
"""

import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def result_path(suite, config, case, seed):
    safe = case.replace("/", "--")
    return os.path.join(RESULTS, suite, config, f"{safe}__s{seed}.json")


def load_result(path):
    with open(path) as fh:
        return json.load(fh)


def save_result(path, record):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(record, fh, indent=1, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def run_or_skip(suite, config, case, seed, fn, force=False):
    """Run ``fn()`` unless its result file exists; return the record (read or new)."""
    path = result_path(suite, config, case, seed)
    if os.path.exists(path) and not force:
        return load_result(path), False
    t0 = time.time()
    cpu0 = time.process_time()
    record = fn()
    record.update(suite=suite, config=config, case=case, seed=seed,
                  wall_seconds=round(time.time() - t0, 1),
                  cpu_seconds=round(time.process_time() - cpu0, 1),
                  command="python " + " ".join(sys.argv),
                  finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    save_result(path, record)
    return record, True


def collect(suite, config=None):
    """Every stored record of ``suite`` (optionally one config), a list of dicts."""
    root = os.path.join(RESULTS, suite)
    out = []
    if not os.path.isdir(root):
        return out
    for cfg in sorted(os.listdir(root)):
        if config is not None and cfg != config:
            continue
        folder = os.path.join(root, cfg)
        if not os.path.isdir(folder):  # a README next to the configs
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                record = load_result(os.path.join(folder, name))
                if "config" in record:  # not a summary file of several runs
                    out.append(record)
    return out


def spread(values):
    """``(mean, min, max, n)`` of the finite values (NaN counts as a failure: min NaN)."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    if len(v) == 0:
        return (np.nan, np.nan, np.nan, 0)
    if np.any(~np.isfinite(v)):
        return (float(np.nanmean(v)) if np.any(np.isfinite(v)) else np.nan, np.nan,
                float(np.nanmax(v)) if np.any(np.isfinite(v)) else np.nan, len(v))
    return (float(v.mean()), float(v.min()), float(v.max()), len(v))


def fmt_spread(values, digits=3):
    m, lo, hi, n = spread(values)
    if n == 0:
        return "—"
    f = lambda x: "nan" if not np.isfinite(x) else f"{x:.{digits}f}"  # noqa: E731
    return f"{f(m)} [{f(lo)}, {f(hi)}] (n={n})"


def set_threads():
    """One intra-op thread per process on the shared CPU (set before importing keras)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                          "intra_op_parallelism_threads=1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "jax")
