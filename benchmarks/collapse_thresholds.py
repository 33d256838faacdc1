"""Where the RepresentationMonitor's collapse thresholds come from: runs that collapse vs not.

Trains, per seed, every multi-view recipe on the scikit-learn digits (the digits
settings of ``ldm_keras.training``: conv encoder, batch 256, Adam 2e-3, κ = γ = 10 for
the sphere recipes) plus two that collapse — BYOL and SimSiam with ``predictor=None`` —
and sequence models on DotMotion (64 circular sequences of 12 frames, an MLP encoder
100 → 32 → L, batch 8, Adam 3e-3 with cosine decay): ``recurrent-ldm``, ``kalman-ssl``,
``jepa`` and the collapsing ``recurrent-ldm`` with entropy weight 0. A
:class:`~ldm_keras.callbacks.RepresentationMonitor` (default thresholds) measures the
latents of a fixed batch at every epoch end. Each row gives the lowest spread, effective
rank (as a fraction of the latent size) and shrink over the run, the final values, and
the first epoch (1-based) at which the monitor flagged a collapse.

Usage (one backend per process):

    KERAS_BACKEND=jax python benchmarks/collapse_thresholds.py --seeds 0 1 2 \
        --out benchmarks/results/collapse_thresholds_jax.json
"""

import argparse
import json
import os
import sys
import warnings

import keras
import numpy as np

from ldm_keras import recipes
from ldm_keras.augment import image_views
from ldm_keras.callbacks import RepresentationMonitor
from ldm_keras.data import dot_motion
from ldm_keras.data.digits import load_digits
from ldm_keras.models.encoders import conv_encoder, mlp

SPHERE10 = {"precision": 10.0, "entropy_precision": 10.0}
IMAGE_RUNS = [(r, SPHERE10 if r in ("simclr", "sphere-ldm") else {}, False)
              for r in recipes.names("multiview")] + [("byol", {"predictor": None}, True),
                                          ("simsiam", {"predictor": None}, True)]
SEQUENCE_RUNS = [("recurrent-ldm", {"units": 8, "hidden_units": ()}, False),
                 ("kalman-ssl", {}, False),
                 ("jepa", {"units": 8, "hidden_units": (8,)}, False),
                 ("recurrent-ldm", {"units": 8, "hidden_units": (), "entropy_weight": 0.0},
                  True)]


def _row(name, overrides, collapses, seed, history, epochs):
    flagged = [i + 1 for i, c in enumerate(history["collapsed"]) if c]
    return {"recipe": name, "overrides": {k: v for k, v in overrides.items()
                                          if k in ("predictor", "entropy_weight")},
            "expected_collapse": collapses, "seed": seed, "epochs": epochs,
            "min_spread": float(np.min(history["rep_spread"])),
            "min_rank": float(np.min(history["rep_rank"])),
            "min_shrink": float(np.min(history["rep_shrink"])),
            "final_spread": float(history["rep_spread"][-1]),
            "final_rank": float(history["rep_rank"][-1]),
            "final_shrink": float(history["rep_shrink"][-1]),
            "first_flagged_epoch": flagged[0] if flagged else None}


def image_run(name, overrides, collapses, seed, epochs, x):
    keras.utils.set_random_seed(seed)
    model = recipes.build(name, conv_encoder((8, 8, 1), dim=64),
                          views=image_views("digits", seed=seed), **overrides)
    model.compile(optimizer=recipes.default_optimizer(name, 2e-3))
    monitor = RepresentationMonitor(x[:256], alignment=False, warn=False)
    h = model.fit(x, epochs=epochs, batch_size=256, verbose=0,
                  callbacks=[monitor] + recipes.callbacks(name, epochs)).history
    return _row(name, overrides, collapses, seed, h, epochs)


def sequence_run(name, overrides, collapses, seed, epochs, frames):
    keras.utils.set_random_seed(seed)
    dim = 2 if name.startswith("kalman") else 8
    model = recipes.build(name, mlp(100, [32], dim, batch_norm=False), **overrides)
    steps = epochs * int(np.ceil(len(frames) / 8))
    model.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(3e-3, steps, alpha=0.0)))
    monitor = RepresentationMonitor(frames[:32], warn=False)
    h = model.fit(frames, epochs=epochs, batch_size=8, verbose=0, callbacks=[monitor]).history
    return _row(name, overrides, collapses, seed, h, epochs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--image-epochs", type=int, default=30)
    p.add_argument("--sequence-epochs", type=int, default=25)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    (x, _), _ = load_digits()
    frames = dot_motion.generate("circular", num_sequences=64, length=12, seed=3).frames
    rows = []
    for seed in args.seeds:
        for name, overrides, collapses in IMAGE_RUNS:
            rows.append(image_run(name, overrides, collapses, seed, args.image_epochs, x))
            print(json.dumps(rows[-1]), flush=True)
        for name, overrides, collapses in SEQUENCE_RUNS:
            rows.append(sequence_run(name, overrides, collapses, seed, args.sequence_epochs,
                                     frames))
            print(json.dumps(rows[-1]), flush=True)
    result = {"backend": keras.backend.backend(), "rows": rows}
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    cols = ["recipe", "overrides", "seed", "min_spread", "min_rank", "min_shrink",
            "final_spread", "first_flagged_epoch"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c])
                                for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
