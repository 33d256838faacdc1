"""Recipe suite: every recipe × seeds on its reference data, sequence recipes over learning rates.

* multi-view recipes (``ldm_keras.recipes.list()``) on the bundled digits through
  ``ldm_keras.training.train_multiview`` (its per-dataset defaults: conv encoder, 60
  epochs, Adam 2e-3, batch 256); score ``probe_10`` (logistic regression with 10 labels
  per class, mean of 5 draws), ``probe_full`` and ``knn``. Baseline: the same probes on
  the raw pixels (``--raw``).
* sequence recipes (``ldm_keras.recipes.list("sequence")``) on DotMotion through
  ``ldm_keras.training.train_sequence`` (its defaults: 20 epochs, batch 32, the recipe's
  learning rate and schedule, latent size 2 for the Kalman recipes and 8 otherwise);
  score the held-out affine read-out R² of the dot position. ``--lr-scale`` multiplies
  the recipe's default learning rate (the suite uses 0.3, 1 and 3).

Every run writes one JSON under ``results/recipes/<config>/`` (skipped when present):

    KERAS_BACKEND=jax python benchmarks/robustness/recipes_suite.py multiview --seeds 0 1 2 3 4
    KERAS_BACKEND=jax python benchmarks/robustness/recipes_suite.py sequence \\
        --recipes kalman-ssl --datasets dotmotion-circular --lr-scale 0.3 1 3 --seeds 0 1 2
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.set_threads()

import numpy as np  # noqa: E402

SUITE = "recipes"


def run_multiview(recipe, seed, overrides=None, epochs=None, tag=None, force=False):
    config = tag or f"mv-{recipe}"

    def fn():
        from ldm_keras.training import train_multiview

        with tempfile.TemporaryDirectory() as out:
            res = train_multiview(recipe, "digits", epochs=epochs, seed=seed, out=out,
                                  verbose=0, **(overrides or {}))
        rec = dict(res["metrics"])
        rec.update(recipe=recipe, train_seconds=round(res["train_seconds"], 1),
                   epochs=res["epochs"], backend=res["backend"],
                   overrides=overrides or {})
        z = res["model"].encoder.predict(_digits()[0][0], verbose=0)
        rec["latent_std_mean"] = float(np.std(z, axis=0).mean())
        return rec

    return common.run_or_skip(SUITE, config, "digits", seed, fn, force=force)


#: Candidate fixes for multi-view recipes below the raw pixels: tag -> (recipe, overrides,
#: epochs); run with ``multiview --candidates TAG ...``.
MV_CANDIDATES = {
    "byol-m0.9": ("byol", {"ema_momentum": 0.9}, None),
    "byol-m0.95": ("byol", {"ema_momentum": 0.95}, None),
    "byol-m0.5": ("byol", {"ema_momentum": 0.5}, None),
    "byol-m0.8": ("byol", {"ema_momentum": 0.8}, None),
    "byol-m0.99-e180": ("byol", {}, 180),
    "byol-m0.9-e180": ("byol", {"ema_momentum": 0.9}, 180),
    "byol-norm": ("byol", {"normalize": True}, None),
    "simsiam-ref": ("simsiam", {}, None),
}


def _digits():
    from ldm_keras.training import load_image_dataset

    return load_image_dataset("digits", seed=0)


def raw_pixels():
    """Probe metrics of the raw pixels (the baseline every recipe must beat)."""
    from ldm_keras.evaluation import evaluate_embeddings

    (xtr, ytr), (xte, yte) = _digits()
    return {k: float(v) for k, v in evaluate_embeddings(
        xtr.reshape(len(xtr), -1), ytr, xte.reshape(len(xte), -1), yte).items()}


def run_sequence(recipe, dataset, seed, lr_scale=1.0, tag=None, force=False, **kwargs):
    import ldm_keras as ldm

    base_lr = ldm.recipes.get(recipe).defaults["learning_rate"]
    config = tag or f"seq-{recipe}-lr{lr_scale:g}"

    def fn():
        from ldm_keras.training import train_sequence

        with tempfile.TemporaryDirectory() as out:
            res = train_sequence(recipe, dataset, seed=seed, out=out, verbose=0,
                                 learning_rate=base_lr * lr_scale, **kwargs)
        rec = dict(res["metrics"])
        rec.update(recipe=recipe, dataset=dataset, lr_scale=lr_scale,
                   learning_rate=base_lr * lr_scale, history=res["history"],
                   train_seconds=round(res["train_seconds"], 1), backend=res["backend"],
                   kwargs=kwargs)
        return rec

    return common.run_or_skip(SUITE, config, dataset, seed, fn, force=force)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=["multiview", "sequence", "raw"])
    p.add_argument("--recipes", nargs="+", default=None)
    p.add_argument("--datasets", nargs="+", default=["dotmotion-circular"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--lr-scale", nargs="+", type=float, default=[1.0])
    p.add_argument("--candidates", nargs="+", default=None,
                   help="multi-view candidate fixes (MV_CANDIDATES) instead of the recipes")
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    import ldm_keras as ldm

    if a.kind == "raw":
        rec, _ = common.run_or_skip(SUITE, "raw-pixels", "digits", 0, raw_pixels, a.force)
        print(rec)
        return
    if a.kind == "multiview" and a.candidates:
        for tag in a.candidates:
            recipe, overrides, epochs = MV_CANDIDATES[tag]
            for seed in a.seeds:
                rec, new = run_multiview(recipe, seed, overrides, epochs, tag=f"cand-{tag}",
                                         force=a.force)
                print("ran " if new else "have", tag, seed,
                      {k: round(rec[k], 4) for k in ("probe_10", "probe_full", "knn")
                       if k in rec}, rec.get("wall_seconds"), flush=True)
        return
    if a.kind == "multiview":
        for recipe in a.recipes or ldm.recipes.list():
            for seed in a.seeds:
                rec, new = run_multiview(recipe, seed, force=a.force)
                print("ran " if new else "have", recipe, seed,
                      {k: round(rec[k], 4) for k in ("probe_10", "probe_full", "knn")
                       if k in rec}, rec.get("wall_seconds"), flush=True)
        return
    for recipe in a.recipes or ldm.recipes.list("sequence"):
        for dataset in a.datasets:
            for scale in a.lr_scale:
                for seed in a.seeds:
                    rec, new = run_sequence(recipe, dataset, seed, scale, force=a.force)
                    print("ran " if new else "have", recipe, dataset, scale, seed,
                          {k: round(rec[k], 4) for k in ("r2", "r2_untrained") if k in rec},
                          rec.get("wall_seconds"), flush=True)


if __name__ == "__main__":
    main()
