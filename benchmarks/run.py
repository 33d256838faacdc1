"""Speed and memory benchmarks of ldm_keras, as ratios against baselines measured in the same run.

Usage::

    python benchmarks/run.py                 # full run (≈ 15 min on 2 CPU cores)
    python benchmarks/run.py --grid core     # target sizes only (a busy machine)
    python benchmarks/run.py --quick         # tiny sizes, 2 repeats (smoke test)
    python benchmarks/run.py --only entropy/gaussian_kde kalman/B32_T100_S2 --backends jax

Every backend runs in its own worker processes (``KERAS_BACKEND`` is read once, at
import): timings of the entropy and FLOP cases, peak memory of the entropy cases, and
timings of the Kalman and training cases, each in a fresh process. PyTorch workers
run with ``OMP_NUM_THREADS=1`` (eager code of small ops is much faster single-threaded
on a small, shared CPU). ``run.py`` merges the workers'
JSON into ``benchmarks/results/bench.json`` and a markdown report ``bench.md``
(``--out-dir`` changes the folder). Methods are described in ``bench/measure.py``,
``bench/native.py`` and the ``bench/cases_*.py`` docstrings, and in the report.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench import report  # noqa: E402
from bench.measure import MEMORY_ENV, environment  # noqa: E402

BACKENDS = ("jax", "tensorflow", "torch")


def worker_plan(backends, memory):
    """(backend, mode, sections, extra env) for every worker process, in run order.

    PyTorch workers run with ``OMP_NUM_THREADS=1``: on a small, shared CPU its intra-op
    thread pool makes eager code of small ops many times slower (both ours and the
    baselines run in the same single-threaded process, so the ratios stay fair).
    """
    plan = []
    for b in backends:
        env = {"OMP_NUM_THREADS": "1"} if b == "torch" else {}
        plan.append((b, "time", ["entropy", "flops"], env))
        if memory:
            plan.append((b, "memory", ["entropy"], {**env, **MEMORY_ENV}))
        plan.append((b, "time", ["kalman", "train"], env))
    return plan


def case_ids(backend, sections, grid):
    """Ids of the cases a worker would run (to skip workers that --only empties)."""
    from bench import cases_entropy, cases_kalman, cases_train

    ids = []
    if "entropy" in sections:
        ids += [c["id"] for c in cases_entropy.cases(grid)]
    if "flops" in sections:
        ids.append(cases_entropy.flops_case(grid)["id"])
    if "kalman" in sections:
        ids += [c["id"] for c in cases_kalman.cases(grid)]
    if "train" in sections:
        ids += [c["id"] for c in cases_train.cases(grid, backend)]
    return ids


def run_worker(backend, mode, sections, extra_env, args, tmp):
    out = os.path.join(tmp, f"{backend}_{mode}_{'_'.join(sections)}.json")
    cmd = [sys.executable, "-m", "bench.worker", "--mode", mode, "--out", out,
           "--sections", *sections]
    cmd += ["--grid", args.grid]
    if args.only:
        cmd += ["--only", *args.only]
    env = dict(os.environ)
    env.update({"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
                "PYTHONPATH": os.pathsep.join([HERE, ROOT, env.get("PYTHONPATH", "")])})
    env.update(extra_env)
    t0 = time.time()
    status = "ok"
    try:
        timeout = args.worker_timeout * (2 if "train" in sections else 1)
        proc = subprocess.run(cmd, cwd=HERE, env=env, timeout=timeout,
                              capture_output=True, text=True)
        if proc.returncode:
            status = f"exit code {proc.returncode}: {proc.stderr[-1500:]}"
        if args.verbose:
            sys.stderr.write(proc.stdout)
    except subprocess.TimeoutExpired:
        status = f"stopped after the worker timeout ({timeout} s)"
    result = {}
    if os.path.exists(out):
        with open(out) as f:
            result = json.load(f)
    result.update({"backend": backend, "mode": mode, "sections": sections,
                   "env_overrides": extra_env, "status": status,
                   "wall_seconds": round(time.time() - t0, 1)})
    print(f"[run] {backend} {mode} {sections}: {status.splitlines()[0]} "
          f"({result['wall_seconds']} s, {len(result.get('cases', {}))} cases)", flush=True)
    return result


def merge_runs(paths, out_dir):
    """Merge runs made side by side (e.g. one per backend) into one bench.json / bench.md.

    Every ratio still compares two measurements from one worker process, except the
    Kalman ratios, whose eager-PyTorch baseline comes from the PyTorch worker; the
    merged meta keeps each run's start time, command and load averages.
    """
    workers, metas = [], []
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        metas.append(run["meta"])
        for key, w in zip(report.worker_keys(run["workers"]), run["workers"]):
            workers.append({**w, "cases": run["raw"].get(key, {})})
    meta = dict(metas[0])
    meta.update({
        "command": " ; ".join(m["command"] for m in metas) + " ; then --merge",
        "merged_runs": metas,
        "backends": [b for m in metas for b in m["backends"]],
        "env_start": min((m["env_start"] for m in metas), key=lambda e: 0),
        "env_end": metas[-1]["env_end"],
        "wall_seconds": max(m["wall_seconds"] for m in metas),
    })
    merged = report.merge(workers, meta)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "bench.json"), "w") as f:
        json.dump(merged, f, indent=1)
    with open(os.path.join(out_dir, "bench.md"), "w") as f:
        f.write(report.markdown(merged, report.analysis_text()))
    print(f"[run] merged {len(paths)} runs into {out_dir}/bench.json and bench.md")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 repeats (= --grid quick)")
    p.add_argument("--grid", choices=["quick", "core", "full"], default="full",
                   help="full: the issue's sizes (N ∈ {256, 512, 1024, 4096} × d ∈ {128, 256, "
                        "2048}, 10 Kalman sizes; ≈ 15 min on 2 idle cores); core: the target "
                        "sizes and a spread around them, for a busy machine; quick: tiny")
    p.add_argument("--only", nargs="*", default=[],
                   help="keep cases whose id contains one of these strings "
                        "(ids: entropy/<estimator>/N<n>_d<d>, flops/..., kalman/B<b>_T<t>_S<s>, "
                        "train/simclr_digits, train/kalman_dotmotion, train/hand_loop_simclr)")
    p.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory workers")
    p.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    p.add_argument("--worker-timeout", type=float, default=None,
                   help="seconds per worker process (default 300 quick, 500 full; doubled for training workers)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                   help="merge bench.json files of runs over disjoint backends (run side "
                        "by side) into --out-dir instead of running anything")
    p.add_argument("--render", metavar="JSON", default=None,
                   help="only re-render bench.md (with bench/ANALYSIS.md) from a bench.json")
    args = p.parse_args(argv)
    if args.merge:
        return merge_runs(args.merge, args.out_dir)
    if args.render:
        with open(args.render) as f:
            merged = json.load(f)
        with open(os.path.join(os.path.dirname(args.render), "bench.md"), "w") as f:
            f.write(report.markdown(merged, report.analysis_text()))
        return 0
    if args.quick:
        args.grid = "quick"
    if args.worker_timeout is None:
        args.worker_timeout = 300 if args.quick else 500

    started = datetime.datetime.now(datetime.timezone.utc)
    env_start = environment()
    t0 = time.time()
    workers = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend, mode, sections, extra in worker_plan(args.backends, not args.no_memory):
            ids = case_ids(backend, sections, args.grid)
            if args.only and not any(p in i for i in ids for p in args.only):
                continue
            workers.append(run_worker(backend, mode, sections, extra, args, tmp))
    meta = {
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - t0, 1),
        "command": " ".join(["python", "benchmarks/run.py"] + list(argv or sys.argv[1:])),
        "grid": args.grid, "only": args.only, "backends": args.backends,
        "env_start": env_start, "env_end": environment(),
    }
    merged = report.merge(workers, meta)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "bench.json"), "w") as f:
        json.dump(merged, f, indent=1)
    with open(os.path.join(args.out_dir, "bench.md"), "w") as f:
        f.write(report.markdown(merged, None if args.quick else report.analysis_text()))
    print(f"[run] wrote {args.out_dir}/bench.json and bench.md "
          f"({meta['wall_seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
