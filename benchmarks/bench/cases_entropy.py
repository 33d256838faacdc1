"""Entropy estimators, value + gradient w.r.t. the batch: ours against native baselines.

Sizes: ``N ∈ {256, 512, 1024, 4096}``, ``d ∈ {128, 256, 2048}`` (``--quick``: N=64, d=16).
A broadcast baseline whose ``N × N × d`` float32 tensor would exceed ``BROADCAST_CAP``
bytes is not run and reported as "infeasible (memory)": at N=4096, d=2048 it is 137 GB,
and backward needs two or three such tensors.
"""

import numpy as np

from . import native
from .measure import peak_memory, time_interleaved

ESTIMATORS = ("gaussian_kde", "vmf_kde", "knn", "logdet")
FULL_N = (256, 512, 1024, 4096)
FULL_D = (128, 256, 2048)
QUICK_N = (64,)
QUICK_D = (16,)
#: Largest N·N·d·4 bytes we let a broadcast baseline allocate (its peak is ~3× this).
BROADCAST_CAP = 1.1e9
SETTINGS = {"gaussian_kde": {"precision": 5.0}, "vmf_kde": {"precision": 5.0},
            "knn": {"k": 3}, "logdet": {"jitter": 1e-6}}


#: Left out of the grid: the broadcast baseline is infeasible (137 GB) and our Gaussian
#: KDE is timed at this size by the FLOP-rate case (``flops_case``); on 2 shared cores
#: ~200 GFLOP per call for each estimator would not fit the run's time budget.
GRID_SKIP = {(4096, 2048)}


#: The ``--grid core`` sizes: the target size (512, 256) and a spread around it, for a
#: run that must fit a busy machine.
CORE = ((256, 128), (512, 256), (1024, 256), (4096, 128))


def sizes(grid):
    if grid == "quick":
        return [(n, d) for n in QUICK_N for d in QUICK_D]
    if grid == "core":
        return list(CORE)
    return [(n, d) for n in FULL_N for d in FULL_D if (n, d) not in GRID_SKIP]


def cases(grid):
    return [{"id": f"entropy/{e}/N{n}_d{d}", "section": "entropy", "estimator": e, "N": n,
             "d": d} for e in ESTIMATORS for n, d in sizes(grid)]


def broadcast_bytes(case, backend):
    """Bytes of the baseline's N × N × d tensor (0 when the baseline has none)."""
    e = case["estimator"]
    if e == "logdet" or (e == "knn" and backend == "torch"):
        return 0
    return 4 * case["N"] ** 2 * case["d"]


def batch(case, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((case["N"], case["d"])).astype("float32")


#: ``--grid core`` also skips broadcast baselines above this many bytes (time budget on
#: a busy machine: at N=1024, d=256 one broadcast value+gradient took ~40 s under load 16).
CORE_BROADCAST_CAP = 3e8


def run(case, be, mode, repeats, budget, grid="full"):
    """Measure ours and the baseline for one case; returns a dict of results."""
    z = be.tensor(batch(case))
    kw = SETTINGS[case["estimator"]]
    impls = {"ours": native.ours(case["estimator"], **kw),
             "baseline": be.baseline(case["estimator"], **kw)}
    out = {"broadcast_bytes": broadcast_bytes(case, be.name)}
    runners = {}
    for name, f in impls.items():
        if name == "baseline" and out["broadcast_bytes"] > BROADCAST_CAP:
            out[name] = {"skipped": "infeasible (memory): the N×N×d tensor alone is "
                                    f"{out['broadcast_bytes'] / 1e9:.1f} GB"}
            continue
        if name == "baseline" and grid == "core" and out["broadcast_bytes"] > CORE_BROADCAST_CAP:
            out[name] = {"skipped": "not run (time budget of --grid core): the N×N×d tensor "
                                    f"is {out['broadcast_bytes'] / 1e9:.1f} GB"}
            continue
        runners[name] = be.runner(f, z)
    if mode == "memory":
        for name, runner in runners.items():
            out[name] = {"peak_bytes": peak_memory(runner)}
    else:
        for name, summary in time_interleaved(runners, repeats, budget=budget).items():
            out[name] = {"time": summary}
    return out

def flops_case(grid):
    n, d = {"quick": (256, 64), "core": (4096, 256), "full": (4096, 2048)}[grid]
    return {"id": f"flops/gaussian_kde/N{n}_d{d}", "section": "flops", "N": n, "d": d}


def run_flops(case, be, repeats, budget):
    """KDE value+gradient vs one float32 matmul of the same ``N × d × N`` shape.

    Model FLOPs of the KDE: the forward ``z zᵀ`` (2N²d) and its two backward matmuls
    (4N²d): 6N²d; the O(N²) elementwise work is ignored. The matmul does 2N²d.
    """
    n, d = case["N"], case["d"]
    rng = np.random.default_rng(1)
    z = be.tensor(batch({"N": n, "d": d}))
    a = be.tensor(rng.standard_normal((n, d)))
    b = be.tensor(rng.standard_normal((d, n)))
    runners = {"kde": be.runner(native.ours("gaussian_kde", precision=5.0), z),
               "matmul": be.matmul_runner(a, b)}
    times = time_interleaved(runners, repeats, budget=budget)
    kde, mm = times["kde"], times["matmul"]
    kde_rate = 6.0 * n * n * d / kde["median"]
    mm_rate = 2.0 * n * n * d / mm["median"]
    return {"ours": {"time": kde}, "matmul": {"time": mm}, "kde_flops": 6.0 * n * n * d,
            "kde_flop_rate": kde_rate, "matmul_flop_rate": mm_rate,
            "fraction": kde_rate / mm_rate,
            "fraction_low": (6.0 * n * n * d / kde["q3"]) / (2.0 * n * n * d / mm["q1"]),
            "fraction_high": (6.0 * n * n * d / kde["q1"]) / (2.0 * n * n * d / mm["q3"])}
