"""The zoo's building layer: train an entry through the training jobs and write it atomically.

:func:`build` runs the entry's job of :mod:`ldm_keras.jobs` (its recipe, dataset, seed and
settings from :mod:`.entries`), then writes everything to a temporary folder next to the
entry, checks the folder (hashes, loading under ``safe_mode=True`` and the reference
outputs, through :mod:`.verifier` on a temporary zoo given as ``root``), renames it into
place and replaces ``index.json`` in one ``os.replace`` (:func:`.index.write_index_entry`).

Example:
    >>> from ldm_keras.zoo import build
    >>> build.build("digits-simclr")           # retrains and rewrites zoo/digits-simclr
"""

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np

from .. import jobs
from ..data import dot_motion
from ..data.datasets import load_image_dataset
from ..evaluation.dynamics import eigen_angles
from ..models.predictive import DEFAULT_LR_MULTIPLIERS
from . import _paths, cards, entries, index, verifier
from ._errors import ZooError


# -- training ------------------------------------------------------------------------------
def _train_multiview(name, spec, workdir, verbose):
    dataset = jobs.DATASETS.get(spec["dataset"], {})
    settings = dict(dataset.get("recipe_overrides", {}).get(spec["recipe"], {}))
    result = jobs.train_multiview(spec["recipe"], spec["dataset"], epochs=spec.get("epochs"),
                                  seed=spec["seed"], out=str(workdir / "run"), verbose=verbose)
    model = result["model"]
    run = index.read_json(workdir / "run" / "run.json")
    comps = {"encoder": model.encoder}
    if model.projector is not None:
        comps["head" if spec["recipe"] == "categorical" else "projector"] = model.projector
    if model.predictor is not None:
        comps["predictor"] = model.predictor
    _, test = load_image_dataset(spec["dataset"], seed=0)
    ref = np.asarray(test[0][:16], dtype="float32")  # fixed inputs: the first test images
    extra = {"recipe": spec["recipe"], "settings": settings, "views": dataset.get("preset"),
             "training": {k: run[k] for k in ("epochs", "batch_size", "learning_rate")},
             "optimizer": result["optimizer"],   # as compiled (jobs.describe_optimizer)
             "data": {"dataset": spec["dataset"], "split": "30 % stratified test, seed 0"}}
    return comps, result["metrics"], ref, None, extra, result["train_seconds"]


def _train_sequences(name, spec, workdir, verbose):
    t = spec["training"]
    result = jobs.train_sequence(
        spec["recipe"], f"dotmotion-{spec['preset']}", epochs=t["epochs"],
        batch_size=t["batch_size"], learning_rate=t["learning_rate"], seed=spec["seed"],
        out=str(workdir / "run"), verbose=verbose, sequences=t.get("sequences"),
        latent_dim=t["latent_dim"], train_length=t.get("train_length"), evaluate_untrained=False,
        **spec["settings"])
    model = result["model"]
    metrics = verifier.dotmotion_r2(model.encoder, spec["preset"])
    losses = result["history"]
    metrics["loss_first_last"] = [losses[0], losses[-1]]
    if spec["kind"] == "kalman":
        a = keras.ops.convert_to_numpy(model.predictor.transition_matrix)
        metrics["rotation_angles"] = [float(x) for x in eigen_angles(a)]
    run = index.read_json(workdir / "run" / "run.json")
    test = dot_motion.load(spec["preset"], "test", num_sequences=2)
    ref = test.frames[:, :8].reshape(-1, test.frames.shape[-1]).astype("float32")
    seq = test.frames[:, :8].astype("float32")
    extra = {"preset": spec["preset"], "recipe": spec["recipe"],
             "settings": spec["settings"],
             "training": {"sequences": run["num_train"], "length": run["sequence_length"],
                          "epochs": t["epochs"], "batch_size": t["batch_size"],
                          "learning_rate": t["learning_rate"],
                          "schedule": "cosine decay to 1 % over the run"},
             "optimizer": "Adam" + (_multipliers_text(model.lr_multipliers)
                                    + _warmup_text(model.lr_warmup_steps)
                                    if spec["kind"] == "kalman" else ""),
             "data": {"dataset": f"dot_motion.load({spec['preset']!r})",
                      "readout_sequences": entries.DOTMOTION_READOUT_SEQUENCES}}
    return {"model": model}, metrics, ref, seq, extra, result["train_seconds"]


def _multipliers_text(multipliers):
    """How the card names a Kalman entry's per-group learning rates (the model's own)."""
    names = {"dynamics": "dynamics", "noise_network": "innovation net",
             "observation_noise": "noise encoder"}
    parts = [f"{names.get(g, g)} ×{f:g}" for g, f in multipliers.items()]
    default = multipliers == DEFAULT_LR_MULTIPLIERS
    return ((" with PredictiveLDM's default per-group multipliers" if default
             else " with per-group multipliers") + f" ({', '.join(parts)})")


def _warmup_text(warmup):
    """How the card names the per-group warm-ups (none: nothing)."""
    if not warmup:
        return ""
    parts = [f"{g} over {n} steps" for g, n in warmup.items()]
    return f", ramped linearly from 0: {', '.join(parts)}"


#: job -> the function that trains an entry of that job.
TRAINERS = {"multiview": _train_multiview, "sequence": _train_sequences}


# -- writing ----------------------------------------------------------------------------------
def _component_record(part, obj, build_shape=None):
    config = keras.saving.serialize_keras_object(obj)
    config["compile_config"] = None  # published uncompiled (see load.deserialize)
    if part == "model":
        pred = config["config"]["predictor"]
        if pred["class_name"] == "KalmanFilter":
            pred["config"]["return_covariances"] = True  # the loaded model gives S_t too
    return {"config": config, "weights": f"{part}.weights.h5", "build_shape": build_shape}


def _write_reference(path, encoder, inputs, model=None, sequences=None):
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("inputs", data=inputs)
        out = f.create_group("outputs")
        out.create_dataset("encoder", data=np.asarray(keras.ops.convert_to_numpy(
            encoder(inputs, training=False)), dtype="float32"))
        if sequences is not None:
            f.create_dataset("sequences", data=sequences)
            pred = model(sequences, training=False)
            out.create_dataset("prediction", data=np.asarray(
                keras.ops.convert_to_numpy(pred["prediction"]), dtype="float32"))


def _entry_folder(root, name):
    """``root / name`` once ``name`` is a valid entry name, the path stays inside ``root``
    and is not a symbolic link (see :mod:`._paths`)."""
    _paths.check_name(name, "entry name")
    folder = _paths.safe_join(root, name, field=f"folder of zoo entry {name!r}")
    _paths.check_directory(folder, f"folder of zoo entry {name!r}")
    return folder


def build(name, root=None, train=None, verbose=0):
    """Train entry ``name`` from its recipe and fixed seed; write it atomically.

    ``root`` is the zoo directory to write into (default:
    :func:`.index.configured_root`). ``train=False`` writes only the config and card (the
    default for entries published without weights). Returns the entry's index record.

    Example:
        >>> build("digits-simclr")
    """
    spec = entries.spec(name)
    root = Path(root) if root is not None else index.configured_root()
    _entry_folder(root, name)  # the whole target checked before anything is created
    root.mkdir(parents=True, exist_ok=True)
    train = spec.get("weights", True) if train is None else bool(train)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
    work = Path(tempfile.mkdtemp(prefix=f"ldm-zoo-{name}-"))
    try:
        config = {"name": name, "version": spec["version"], "kind": spec["kind"],
                  "summary": spec["summary"], "seed": spec["seed"],
                  "headline": spec["headline"], "format": index.FORMAT_VERSION}
        metrics = {"headline": spec["headline"]}
        if train:
            comps, measured, ref, seq, extra, seconds = TRAINERS[spec["job"]](
                name, spec, work, verbose)
            config.update(extra)
            records = {}
            for part, obj in comps.items():
                shape = None
                if part == "model":
                    shape = [None, int(seq.shape[1]), int(seq.shape[2])]
                records[part] = _component_record(part, obj, shape)
                obj.save_weights(str(tmp / records[part]["weights"]))
            config["components"] = records
            encoder = comps["encoder"] if "encoder" in comps else comps["model"].encoder
            config["input_shape"] = [None, *[int(s) for s in encoder.input_shape[1:]]]
            config["output_dim"] = int(encoder.output_shape[-1])
            _write_reference(tmp / "reference.h5", encoder, ref, comps.get("model"), seq)
            metrics.update({k: v for k, v in measured.items()})
            config["built_with"] = {"backend": keras.backend.backend(),
                                    "keras": keras.__version__,
                                    "python": platform.python_version(),
                                    "platform": platform.platform(),
                                    "train_seconds": round(seconds, 1)}
        else:
            config.update({"recipe": spec.get("recipe"), "data": {"dataset": spec["dataset"]},
                           "training": {"epochs": spec.get("epochs"), "batch_size": 256},
                           "architecture": "ldm_keras.models.encoders.resnet18((32, 32, 3))",
                           "components": {}})
        metrics["command"] = f"ldm-keras zoo verify --eval {name}"
        for fname, obj in (("config.json", config), ("metrics.json", metrics)):
            with open(tmp / fname, "w") as f:
                json.dump(obj, f, indent=2, default=str)
                f.write("\n")
        how = entries.how_to_build(name)
        with open(tmp / "README.md", "w") as f:
            f.write(cards.render(name, spec, config, metrics, train, how))
        record = {"version": spec["version"], "kind": spec["kind"], "summary": spec["summary"],
                  "weights": train, "files": index.file_table(tmp)}
        if not train:
            record["how_to_build"] = how
        if train:
            _check_written(tmp, name, record)
        final = _entry_folder(root, name)
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=root))
            os.rmdir(old)
            os.rename(final, old)
        os.chmod(tmp, 0o755)
        os.rename(tmp, final)
        index.write_index_entry(root, name, record)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return record
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _check_written(folder, name, record):
    """Reload the freshly written folder (safe mode) and compare the reference outputs, in
    a temporary zoo of its own (passed as ``root``)."""
    check = Path(tempfile.mkdtemp(prefix=".check-", dir=folder.parent))
    try:
        shutil.copytree(folder, check / name)
        with open(check / index.INDEX, "w") as f:
            json.dump({"format": index.FORMAT_VERSION, "entries": {name: record}}, f)
        result = verifier.check_reference(name, root=check)
        if not result["ok"]:
            raise ZooError(f"The freshly built {name!r} does not reload to its own "
                           f"outputs: {result}.")
    finally:
        shutil.rmtree(check, ignore_errors=True)


def rewrite_card(name, root=None):
    """Re-render an entry's ``README.md`` from its stored config and metrics (no
    retraining) and update its size and SHA-256 (and the how-to-build text of an entry
    without weights) in the index atomically."""
    spec = entries.spec(name)
    root = Path(root) if root is not None else index.configured_root()
    folder = _entry_folder(root, name)
    config = index.read_json(folder / "config.json")  # a link is refused
    metrics = index.read_json(folder / "metrics.json")
    record = index.read_index(root)["entries"][name]
    how = entries.how_to_build(name)
    text = cards.render(name, spec, config, metrics, record.get("weights", True), how)
    fd, tmp = tempfile.mkstemp(prefix=".README.", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / "README.md")
    record["files"]["README.md"] = index.file_table(folder)["README.md"]
    if "how_to_build" in record:
        record["how_to_build"] = how
    index.write_index_entry(root, name, record)
    return record
