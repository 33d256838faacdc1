"""One benchmark worker: every selected case on the backend of this process.

Usage (run.py does this, one process per backend and mode)::

    KERAS_BACKEND=jax python -m bench.worker --mode time --out /tmp/jax.json [--quick]
        [--only entropy/gaussian_kde] [--sections entropy kalman flops train]

Results are written after every case, so a worker that is stopped keeps what it did.
"""

import argparse
import json
import os
import sys
import time
import traceback


def matches(case_id, only):
    return not only or any(pattern in case_id for pattern in only)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["time", "memory"], default="time")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--grid", choices=["quick", "core", "full"], default="full")
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument("--sections", nargs="*", default=["entropy", "flops", "kalman", "train"])
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    import keras

    from . import cases_entropy, cases_kalman, cases_train, native
    from .measure import can_measure_memory, environment

    backend = keras.backend.backend()
    be = native.Backend(backend)
    if args.quick:
        args.grid = "quick"
    repeats, budget, epochs = {"quick": (2, None, 1), "core": (3, 3.0, 2),
                               "full": (5, 4.0, 3)}[args.grid]
    result = {"backend": backend, "mode": args.mode, "grid": args.grid,
              "keras": keras.__version__, "env_start": environment(), "cases": {}}
    if args.mode == "memory" and not can_measure_memory():
        result["error"] = "cannot reset the resident high-water mark (/proc/self/clear_refs)"
        args.sections = []

    todo = []
    if "entropy" in args.sections:
        todo += [("entropy", c) for c in cases_entropy.cases(args.grid)]
    if args.mode == "time":
        if "flops" in args.sections:
            todo.append(("flops", cases_entropy.flops_case(args.grid)))
        if "kalman" in args.sections:
            todo += [("kalman", c) for c in cases_kalman.cases(args.grid)]
        if "train" in args.sections:
            todo += [("train", c) for c in cases_train.cases(args.grid, backend)]
    todo = [(s, c) for s, c in todo if matches(c["id"], args.only)]

    for section, case in todo:
        t0 = time.perf_counter()
        try:
            if section == "entropy":
                out = cases_entropy.run(case, be, args.mode, repeats, budget, args.grid)
            elif section == "flops":
                out = cases_entropy.run_flops(case, be, max(2, repeats - 2), budget)
            elif section == "kalman":
                out = cases_kalman.run(case, be, args.mode, max(2, repeats - 2), budget)
            else:
                out = cases_train.run(case, args.quick, epochs)
        except Exception as err:  # record and go on: one failing case must not stop the run
            out = {"error": f"{type(err).__name__}: {err}"[:2000],
                   "traceback": traceback.format_exc()[-3000:]}
        out["case"] = case
        out["wall_seconds"] = round(time.perf_counter() - t0, 2)
        result["cases"][case["id"]] = out
        result["env_end"] = environment()
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"[{backend}/{args.mode}] {case['id']}: {out['wall_seconds']} s", flush=True)
    result["env_end"] = environment()
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
