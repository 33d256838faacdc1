"""A sequence recipe trained through ``ldm_keras.jobs.train_sequence`` with no overrides.

The check that a default measured in a suite holds through the job (so the CLI) itself:
the epochs and batch size are the job's own defaults for the dataset, and the run prints
what it used. One JSON line per seed on stdout:

    KERAS_BACKEND=torch OMP_NUM_THREADS=1 python benchmarks/robustness/job_runs.py \\
        kalman-ssl dotmotion-square 0 1 2 3 4
"""

import json
import os
import sys
import tempfile
import time


def main(argv=None):
    recipe, dataset, *seeds = argv or sys.argv[1:]
    from ldm_keras import jobs

    for seed in map(int, seeds):
        t0 = time.time()
        with tempfile.TemporaryDirectory() as out:
            res = jobs.train_sequence(recipe, dataset, seed=seed, out=out, verbose=0)
            with open(os.path.join(out, "run.json")) as f:
                run = json.load(f)
        print(json.dumps({"recipe": recipe, "dataset": dataset, "seed": seed,
                          "r2": res["metrics"].get("r2"), "epochs": res["epochs"],
                          "batch_size": run["batch_size"], "backend": res["backend"],
                          "secs": round(time.time() - t0)}), flush=True)


if __name__ == "__main__":
    main()
