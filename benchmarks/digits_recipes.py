"""Train recipes on the scikit-learn digits and record probe / k-NN / clustering accuracy.

Usage (one backend per process):

    KERAS_BACKEND=jax python benchmarks/digits_recipes.py --recipes simclr categorical \
        --epochs 60 --out benchmarks/results/digits_jax.json

Each run uses ``ldm_keras.jobs.train_multiview`` — the same job as ``ldm-keras
train`` — with seed 0, the 30 % stratified test split (seed 0), Adam, batch 256.
Writes a JSON list of rows and prints a markdown table.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import keras

from ldm_keras import jobs, recipes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipes", nargs="+", default=sorted(recipes.names("multiview")))
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    rows = []
    for name in args.recipes:
        start = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            result = jobs.train_multiview(name, "digits", epochs=args.epochs,
                                              learning_rate=args.learning_rate,
                                              seed=args.seed, out=tmp, verbose=0)
        row = {"recipe": name, "backend": keras.backend.backend(), "epochs": result["epochs"],
               "train_seconds": round(result["train_seconds"], 1),
               "total_seconds": round(time.time() - start, 1),
               **{k: round(v, 4) for k, v in result["metrics"].items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
    cols = ["recipe", "backend", "epochs", "probe_10", "probe_10_std", "probe_full", "knn",
            "clustering", "train_seconds"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
