"""Cost of ldm_keras.callbacks.OnlineProbe on the digits main job, as a ratio of epoch times.

The job is the one ``ldm_keras.jobs.train_multiview("simclr", "digits")`` runs (the
``ldm-keras train`` default): the digits' default encoder, view preset, recipe settings
and learning rate from ``jobs.DATASETS["digits"]``, Adam, batch 256, shuffled. The
probe uses 10 labels per class of the training images (``sample_per_class``, seed 0)
and the 540 test images as the validation split, every epoch.

One model is trained throughout; after a warm-up fit (compilation, first probe), fits of
``--epochs`` epochs alternate between the conditions (without the probe, with the
probe, with the probe and k-NN; the order reverses every repeat), ``--repeats`` times.
Each epoch is timed from the first callback's ``on_epoch_begin`` to the last callback's
``on_epoch_end``, so the probe's work at the epoch end is inside the time. The overhead
is the ratio of the median epoch times, with and without the probe; the per-repeat
ratios show the spread.

Usage (one backend per process):

    KERAS_BACKEND=jax python benchmarks/online_probe_overhead.py \
        --out benchmarks/results/online_probe_overhead_jax.json
"""

import argparse
import json
import os
import sys
import time

import keras
import numpy as np

from ldm_keras import jobs, recipes
from ldm_keras.augment import image_views
from ldm_keras.callbacks import OnlineProbe
from ldm_keras.data.datasets import load_image_dataset
from ldm_keras.evaluation import sample_per_class


class _Start(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()


class _Stop(keras.callbacks.Callback):
    def __init__(self, start, times):
        super().__init__()
        self.start, self.times = start, times

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start.t0)


def build_job(seed=0):
    """The model, data and fit arguments of train_multiview("simclr", "digits")."""
    recipe, dataset = "simclr", "digits"
    keras.utils.set_random_seed(seed)
    train, test = load_image_dataset(dataset, seed=0)
    d = jobs.DATASETS[dataset]
    encoder = d["encoder"](tuple(train[0].shape[1:]))
    views = image_views(d["preset"], seed=seed)
    model = recipes.build(recipe, encoder, views=views, **d["recipe_overrides"][recipe])
    model.compile(optimizer=recipes.default_optimizer(recipe, d["learning_rate"]))
    fit = {"batch_size": min(256, len(train[0])), "shuffle": True, "verbose": 0}
    return model, train, test, fit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=5, help="epochs per timed fit")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    model, (x, y), (x_test, y_test), fit = build_job()
    lab = sample_per_class(y, 10, seed=0)

    def probe(knn):
        return OnlineProbe(x[lab], y[lab], x_test, y_test, knn_k=20 if knn else None)

    conditions = {"none": lambda: [], "probe": lambda: [probe(False)],
                  "probe+knn": lambda: [probe(True)]}
    times = {name: [] for name in conditions}
    per_repeat = {name: [] for name in conditions}
    probe_seconds = []
    start = _Start()
    warm = probe(True)
    model.fit(x, epochs=2, callbacks=[start, warm, _Stop(start, [])], **fit)   # compile
    order = list(conditions)
    for r in range(args.repeats):
        for name in (order if r % 2 == 0 else order[::-1]):
            run_times = []
            extra = conditions[name]()
            model.fit(x, epochs=args.epochs, callbacks=[start, *extra,
                                                        _Stop(start, run_times)], **fit)
            times[name] += run_times
            per_repeat[name].append(float(np.median(run_times)))
            for cb in extra:
                probe_seconds += [rec["seconds"] for rec in cb.records]
    base = np.median(times["none"])
    result = {
        "backend": keras.backend.backend(), "job": "train_multiview('simclr', 'digits')",
        "labelled": int(len(lab)), "validation": int(len(x_test)),
        "epochs_per_fit": args.epochs, "repeats": args.repeats,
        "median_epoch_seconds": {k: float(np.median(v)) for k, v in times.items()},
        "ratio": {k: float(np.median(v) / base) for k, v in times.items() if k != "none"},
        "ratio_per_repeat": {k: [a / b for a, b in zip(per_repeat[k], per_repeat["none"])]
                             for k in conditions if k != "none"},
        "probe_seconds_median": float(np.median(probe_seconds)),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
