"""Model cards (``README.md``) of the zoo entries, written by :mod:`.builder`, and how to cite."""

import json

CITATION = (
    "Mikulasch, F. A. & Zenke, F. Understanding Self-Supervised Learning via Latent "
    "Distribution Matching. In Proceedings of the International Conference on Machine "
    "Learning (ICML), 2026. arXiv:2605.03517."
)
BIBTEX = """@inproceedings{mikulasch2026ldm,
  title     = {Understanding Self-Supervised Learning via Latent Distribution Matching},
  author    = {Mikulasch, Fabian A. and Zenke, Friedemann},
  booktitle = {Proceedings of the International Conference on Machine Learning (ICML)},
  year      = {2026},
  note      = {arXiv:2605.03517}
}"""

#: What each entry is for and where it falls short (honest notes for the cards).
NOTES = {
    "digits-simclr": (
        "Features of 8×8 grey digits for linear or k-NN read-out; a small worked example of "
        "the SimCLR recipe, and a fixture for testing pipelines.",
        "Trained on 1257 tiny images: not a general-purpose image encoder. Inputs must be "
        "(n, 8, 8, 1) floats in [0, 1] (scikit-learn digits / 16)."),
    "digits-vicreg-ldm": (
        "As digits-simclr, for the plane (Gaussian) latent model with log-det entropy.",
        "Tiny data; the log-det entropy sees only second moments, so the probe is below the "
        "sphere recipes."),
    "digits-byol": (
        "As digits-simclr, for the implicit-entropy (predictor + EMA target) recipe.",
        "Tiny data; BYOL relies on stop-gradient and EMA for uniformity. Seed spread of the "
        "recipe here (the same job, seeds 0–4, JAX): probe_10 0.934–0.955 (mean 0.944; the "
        "raw pixels 0.895), benchmarks/results/robustness.md §3. Version 1.0.0 (probe_10 "
        "0.763) was trained while the EMA target network normalised by its frozen "
        "BatchNorm moving averages instead of the batch's statistics."),
    "digits-categorical": (
        "Unsupervised clustering of the digits: `load_component(name, 'head')` gives the "
        "10-way softmax head; the argmax of head(encoder(x)) is a cluster id.",
        "Cluster ids are arbitrary (Hungarian-matched to the labels for the metric)."),
    "dotmotion-circular-noisy-kalman": (
        "Latents of noisy 10×10 DotMotion frames with calibrated predictive uncertainty: "
        "`load_model(name)` returns the PredictiveLDM whose Kalman filter gives the "
        "prediction, its covariance S_t and the filtered state. The same settings measured "
        "95 % predictive-interval coverage 0.960 (per coordinate) / 0.948 (ellipsoid) in "
        "benchmarks/results/dotmotion_kalman.md (run circular-noisy_heteroscedastic_e20).",
        "The data carry 135° jumps that the linear-Gaussian model cannot represent, so the "
        "learned rotation per step is larger than the true 0.314 rad (it compromises with "
        "the jumps), and the R² is limited by the 0.2 pixel noise of each frame. "
        "**Seed spread:** these settings through the same job on seeds 0–4 (JAX, the "
        "transition seeded by the run's seed): R² 0.818 / 0.928 / 0.036 / 0.938 / 0.931 — "
        "seed 2 collapses to one latent dimension with a real transition (the job warns "
        "that the run ended collapsed). The kalman-ssl defaults now (spread rotations, "
        "30×) do no better here: 0.930 / 0.935 / 0.353 / 0.939 / 0.938 (with the "
        "dynamics warm-up option 0.370 / 0.934 / 0.237 / 0.929 / 0.928), so this entry "
        "keeps the settings it was trained with "
        "(benchmarks/robustness/results/kalman/README.md)."),
    "dotmotion-figure-eight-kalman": (
        "Latents of figure-eight DotMotion frames and a 4-d linear state model of them "
        "(two rotating pairs for the motion's two frequencies, π/10 and π/20 per step).",
        "Seed 0, not selected. The same job with the same settings over seeds 0–4 "
        "(`jobs.train_sequence('kalman-ssl', 'dotmotion-figure-eight', seed=s)`): on JAX "
        "(this entry's backend) R² 0.969 / 0.947 / 0.960 / 0.995 / 0.898, on PyTorch "
        "0.998 / 0.990 / 0.992 / 0.996 / 0.906 — 5 of 10 runs reach the paper's 0.990; on "
        "most runs one state pair ends on the real axis instead of rotating at the slow "
        "frequency (benchmarks/robustness/results/kalman/README.md). Without the warm-up "
        "(the recipe's default), 0 of 10 runs reach 0.99 (PyTorch 0.710–0.988, JAX "
        "0.562–0.987); the warm-up is not the recipe's default because it breaks noisy "
        "circular DotMotion with jumps. A 2-d latent does not "
        "work here: the phase circle (cos θ, sin θ) is a predictable 2-d latent in which "
        "y = sin θ cos θ is not linear. Version 1.1.0 (R² 0.9995) was the best of three "
        "seeds of the earlier defaults, picked by its test-split R² (the others 0.895 and "
        "0.091)."),
    "dotmotion-circular-recurrent": (
        "An example of a nonlinear (GRU) predictor with an explicit k-NN entropy; "
        "`load_model(name)` returns the PredictiveLDM with its RecurrentPredictor.",
        "The latents are 8-d (the `recurrent-ldm` recipe's setting), and an affine read-out "
        "from 8 features is easy: an *untrained* encoder of this shape already reaches R² "
        "0.969 (RESULTS.md, sequence recipes), so the headline R² shows the latents keep "
        "the position, not that they are an affine map of it. Version 1.0.0 used 2-d "
        "latents (GRU 32, lr 1e-4, 10 epochs of 20-frame windows) and reached only R² "
        "0.477; side runs of that 2-d model: lr 1e-3 → 0.002, lr 3e-4 × 20 epochs → 0.44, "
        "stop-gradient targets without an explicit entropy → 0.979. The identifiability "
        "argument (docs/spec.md §7) is for predictors that contain the true dynamics; use the "
        "Kalman entries for a 2-d position read-out. Trained briefly (800 sequences cut to "
        "25 frames) to keep the k-NN entropy cheap; no reference number exists for this "
        "combination, and the predictive variances are not checked for calibration."),
    "cifar10-resnet18-simclr": (
        "The reference image recipe (ResNet-18, SimCLR as LDM) for users with CIFAR-10 and a GPU.",
        "**No weights are published**: `load` raises an error that says how to build them. "
        "The reference trains 1000 epochs; nothing here has been measured on CIFAR-10."),
}


def _metric_rows(metrics, headline):
    rows = []
    for k, v in metrics.items():
        if k in ("headline", "command"):
            continue
        if isinstance(v, float):
            v = f"{v:.4f}"
        elif isinstance(v, list):
            v = ", ".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in v)
        mark = " (headline)" if k == headline else ""
        rows.append(f"| `{k}`{mark} | {v} |")
    return "\n".join(rows)


def render(name, spec, config, metrics, trained, how):
    """The Markdown card of an entry."""
    use, limits = NOTES.get(name, ("", ""))
    built = config.get("built_with", {})
    lines = [f"# {name} (version {spec['version']})", "", spec["summary"], ""]
    lines += ["## Data", ""]
    if spec["kind"] == "multiview":
        if spec["dataset"] == "digits":
            lines.append("The scikit-learn digits (1797 8×8 grey images, bundled with "
                         "scikit-learn; no network), scaled to [0, 1]; 70 % train / 30 % test, "
                         "stratified, seed 0 (`ldm_keras.data.datasets.load_image_dataset`). "
                         "Training sees the training images only, without labels.")
        else:
            lines.append("CIFAR-10 (downloaded by `keras.datasets.cifar10`; needs the "
                         "network once), 50 000 train / 10 000 test images.")
    else:
        lines.append(f"DotMotion preset `{spec['preset']}` (`ldm_keras.data.dot_motion.load`, "
                     "generated on the fly; train and test splits use distinct seeds). "
                     "Frames are 10×10 (flattened to 100), T = 100.")
    lines += ["", "## Recipe", ""]
    if spec["kind"] == "multiview":
        lines.append(f"Recipe `{spec['recipe']}` (`ldm_keras.recipes`), built by "
                     f"`ldm_keras.jobs.train_multiview({spec['recipe']!r}, "
                     f"{spec['dataset']!r}, seed={spec['seed']})` with its dataset defaults.")
    lines.append("")
    lines.append("```json")
    lines.append(json.dumps({k: config[k] for k in ("recipe", "settings", "views", "training",
                                                    "optimizer", "preset") if k in config},
                            indent=2, default=str))
    lines.append("```")
    lines += ["", f"Seed: {spec['seed']} (`keras.utils.set_random_seed`)."]
    if trained:
        lines.append(f"Trained on the **{built.get('backend')}** backend (Keras "
                     f"{built.get('keras')}, CPU, {built.get('platform')}), "
                     f"{built.get('train_seconds')} s of training (wall clock on a shared 2-core "
                     "machine).")
        lines += ["", "Rebuild (deterministic on the same backend and machine type):", "",
                  f"    {how}"]
    else:
        lines += ["", "## How to obtain weights", "", how]
    lines += ["", "## Metrics", ""]
    if trained:
        lines += ["| metric | value |", "|---|---|", _metric_rows(metrics, spec["headline"]), ""]
        lines += ["Recompute the headline from the stored weights and the data (on any "
                  "backend; it must agree within 0.01):", "",
                  f"    ldm-keras zoo verify --eval {name}", ""]
        if spec["kind"] == "multiview":
            lines.append("`probe_10`: logistic regression on standardised embeddings with 10 "
                         "labels per class (mean of label draws with seeds 0–4); "
                         "`probe_full`: all labels; `knn`: k = 20, cosine; `clustering`: "
                         "Hungarian-matched argmax of the softmax head.")
        else:
            lines.append("`r2`: R² of an affine read-out of the true positions from the "
                         "per-frame latents, fitted on 800 training sequences and scored on "
                         "the held-out test split.")
    else:
        lines.append("None measured (no weights).")
    lines += ["", "## Use", "", "```python", "import ldm_keras as ldm",
              f"encoder = ldm.zoo.load({name!r})            # frozen; trainable=True to fine-tune"]
    if spec["kind"] != "multiview":
        lines.append(f"model = ldm.zoo.load_model({name!r})      # the full PredictiveLDM")
    lines += ["```", "", "## Intended use", "", use, "", "## Limitations", "", limits, "",
              "## How to cite", "", "If you use this model, please cite the LDM paper:", "",
              CITATION, "", "```bibtex", BIBTEX, "```", ""]
    return "\n".join(lines)
