"""KalmanSSL on DotMotion circular at a short budget: the recipe's defaults against others.

The CLI's reduced run (``ldm-keras train --recipe kalman-ssl --dataset dotmotion-circular
--sequences 800 --test-sequences 160 --epochs 10``: 250 optimizer steps, 8× fewer than
the reference's 3200 sequences × 20 epochs) through ``ldm_keras.jobs.train_sequence``,
seeds 0-4, for each setting of ``SETTINGS`` (recipe overrides). Writes one JSON with the
held-out R² and the learned rotation per run to ``results/kalman_short/<backend>.json``.

    KERAS_BACKEND=jax python benchmarks/robustness/kalman_short_budget.py [--settings recipe]
"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.set_threads()

MULT = {"noise_network": 10.0, "observation_noise": 0.03}
SETTINGS = {
    "recipe": {},                                                   # π/8 start, 30×
    "warmup-1000": dict(lr_warmup_steps={"dynamics": 1000}),   # the warm-up option
    "warmup-125": dict(lr_warmup_steps={"dynamics": 125}),     # half of this run's steps
    "reference": dict(initial_rotation=None, lr_multipliers="default"),  # old: I + noise, 100×
    "rotation-100x": dict(lr_multipliers={"dynamics": 100.0, **MULT}),
    "identity-30x": dict(initial_rotation=None),
    "rotation-50x": dict(lr_multipliers={"dynamics": 50.0, **MULT}),
}


def main(argv=None):
    import argparse

    import keras

    from ldm_keras import jobs

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                   help="run these settings only; the other rows of the file are kept")
    a = p.parse_args(argv)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "kalman_short",
                       f"{keras.backend.backend()}.json")
    rows = {}
    if os.path.exists(out):
        with open(out) as f:
            rows = json.load(f)["runs"]
    for tag in a.settings:
        over = SETTINGS[tag]
        rows[tag] = []
        for seed in range(5):
            with tempfile.TemporaryDirectory() as tmp:
                r = jobs.train_sequence("kalman-ssl", "dotmotion-circular", epochs=10,
                                        sequences=800, test_sequences=160, seed=seed,
                                        out=os.path.join(tmp, "run"), verbose=0, **over)
            m = r.get("metrics", r)
            rows[tag].append({"seed": seed, "r2": float(m["r2"]),
                              "rotation": float(m["rotation"])})
            print(tag, seed, round(m["r2"], 4), round(m["rotation"], 4), flush=True)
    with open(out, "w") as f:
        json.dump({"settings": {k: str(v) for k, v in SETTINGS.items() if k in rows},
                   "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
