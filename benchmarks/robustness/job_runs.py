"""A sequence recipe trained through ``ldm_keras.jobs.train_sequence`` with no overrides.

The check that a default measured in a suite holds through the job (so the CLI) itself:
the epochs and batch size are the job's own defaults for the dataset, and the run prints
what it used. One JSON line per seed on stdout, and one record per seed under
``results/kalman/<tag>/<case>__s<seed>.json`` (``--tag``, default ``job-<recipe>``; the
case is the dataset without ``dotmotion-``), which the robustness report reads:

    KERAS_BACKEND=torch OMP_NUM_THREADS=1 python benchmarks/robustness/job_runs.py \\
        kalman-ssl dotmotion-square 0 1 2 3 4
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe")
    p.add_argument("dataset")
    p.add_argument("seeds", nargs="+", type=int)
    p.add_argument("--tag", default=None, help="the results folder (default job-<recipe>)")
    p.add_argument("--settings", type=json.loads, default={},
                   help='recipe overrides as JSON, e.g. \'{"noise_encoder": [64]}\' '
                   "(default: none, the recipe's own)")
    a = p.parse_args(argv)
    recipe, dataset, seeds = a.recipe, a.dataset, a.seeds
    tag = a.tag or f"job-{recipe}"
    case = dataset.removeprefix("dotmotion-")
    from ldm_keras import jobs

    for seed in seeds:
        t0 = time.time()
        with tempfile.TemporaryDirectory() as out:
            res = jobs.train_sequence(recipe, dataset, seed=seed, out=out, verbose=0,
                                      **a.settings)
            with open(os.path.join(out, "run.json")) as f:
                run = json.load(f)
        row = {"recipe": recipe, "dataset": dataset, "seed": seed,
               "r2": res["metrics"].get("r2"), "epochs": res["epochs"],
               "batch_size": run["batch_size"], "latent_dim": run["latent_dim"],
               "settings": run["settings"], "backend": res["backend"],
               "secs": round(time.time() - t0)}
        print(json.dumps(row, default=str), flush=True)
        common.save_result(common.result_path("kalman", tag, case, seed),
                           {**row, "suite": "kalman", "config": tag, "case": case,
                            "wall_seconds": row["secs"],
                            "command": "python " + " ".join(sys.argv)})


if __name__ == "__main__":
    main()
