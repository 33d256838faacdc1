"""The recipes that build every zoo entry, their evaluations, and atomic writing.

Each entry of :data:`ENTRIES` says how it is trained (data, recipe, seed, schedule) and
evaluated. :func:`build` trains it from scratch with its fixed seed and writes the
entry atomically: everything goes to a temporary folder next to the entry, the folder is
checked (hashes, loading under ``safe_mode=True``, reference outputs), then renamed into
place, and ``index.json`` is replaced in one ``os.replace``.

Evaluations (what ``ldm-keras zoo verify --eval`` recomputes):

* digits entries: :func:`ldm_keras.training.evaluate_arrays` on the scikit-learn digits
  (30 % stratified test split, seed 0): ``probe_10`` (logistic regression with 10 labels
  per class, mean over label-draw seeds 0–4), ``probe_full``, ``knn`` and, for the
  categorical recipe, ``clustering``;
* DotMotion entries: ``r2``, the R² of an affine read-out of the positions from the
  per-frame latents, fitted on 800 training sequences of the preset
  (``dot_motion.load(preset, "train", num_sequences=800)``) and scored on the preset's
  full test split (:func:`ldm_keras.evaluation.dynamics.affine_r2`). Only the encoder is
  needed, so it is cheap on every backend.

Example:
    >>> from ldm_keras.zoo import builders
    >>> builders.build("digits-simclr")           # retrains and rewrites zoo/digits-simclr
"""

import json
import math
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from . import _paths, cards, registry

_PAPER_DIGITS = "the scikit-learn digits (1797 8×8 grey images, bundled; no network)"

#: name -> how the entry is built. ``kind`` is ``multiview`` (training.train_multiview),
#: ``kalman`` or ``recurrent`` (PredictiveLDM on DotMotion).
ENTRIES = {
    "digits-simclr": dict(
        kind="multiview", recipe="simclr", dataset="digits", seed=0, version="1.0.0",
        headline="probe_10",
        summary="Conv encoder (64-d) trained on the digits with the SimCLR recipe "
                "(vMF prior + vMF-KDE, InfoNCE), κ = γ = 10."),
    "digits-vicreg-ldm": dict(
        kind="multiview", recipe="vicreg-ldm", dataset="digits", seed=0, version="1.0.0",
        headline="probe_10",
        summary="Conv encoder (64-d) trained on the digits with VICReg as exact LDM "
                "(isotropic Gaussian prior + Gaussian log-det entropy)."),
    "digits-byol": dict(
        kind="multiview", recipe="byol", dataset="digits", seed=0, version="1.0.0",
        headline="probe_10",
        summary="Conv encoder (64-d) trained on the digits with the BYOL recipe "
                "(predictor, EMA target, implicit entropy)."),
    "digits-categorical": dict(
        kind="multiview", recipe="categorical", dataset="digits", seed=0, version="1.0.0",
        headline="clustering",
        summary="Conv encoder (64-d) + 10-way softmax head trained on the digits with the "
                "categorical (clustering) recipe."),
    "dotmotion-circular-noisy-kalman": dict(
        kind="kalman", preset="circular-noisy", seed=0, version="1.0.0", headline="r2",
        state_dim=2, latent_dim=2, heteroscedastic=True, epochs=20, batch_size=32,
        learning_rate=1e-4, width=128,
        summary="KalmanSSL on noisy circular DotMotion (pixel noise 0.2, 135° jumps): MLP "
                "encoder 100→128→2, Kalman filter S = 2, heteroscedastic observation noise "
                "inferred per frame by a noise encoder."),
    "dotmotion-figure-eight-kalman": dict(
        kind="kalman", preset="figure-eight", seed=1, version="1.1.0", headline="r2",
        state_dim=4, latent_dim=3, heteroscedastic=False, epochs=40, batch_size=32,
        learning_rate=1e-4, width=128,
        summary="KalmanSSL on figure-eight DotMotion: MLP encoder 100→128→3, Kalman filter "
                "S = 4, 40 epochs, seed 1 (chosen by held-out R²; see the card)."),
    "dotmotion-circular-recurrent": dict(
        kind="recurrent", preset="circular", seed=0, version="1.1.0", headline="r2",
        latent_dim=8, units=64, sequences=800, length=25, epochs=5, batch_size=32,
        learning_rate=1e-3, width=128, knn_k=3,
        summary="Predictive LDM on circular DotMotion with a GRU predictor (Gaussian "
                "heads, 8-d latents) and the explicit Kozachenko–Leonenko k-NN entropy."),
    "cifar10-resnet18-simclr": dict(
        kind="multiview", recipe="simclr", dataset="cifar10", seed=0, version="0.1.0",
        headline="probe_full", weights=False, epochs=1000,
        summary="ResNet-18 (CIFAR stem, 512-d) with the SimCLR recipe on CIFAR-10 — recipe "
                "only, no published weights (train it where CIFAR-10 can be downloaded)."),
}

DOTMOTION_READOUT_SEQUENCES = 800


def _spec(name):
    if name not in ENTRIES:
        registry._entry(name, {"entries": ENTRIES})  # raises with close matches
    return ENTRIES[name]


def how_to_build(name):
    """The command that (re)builds an entry."""
    spec = _spec(name)
    if spec.get("weights", True):
        return f"KERAS_BACKEND=jax ldm-keras zoo build {name}"
    return (f"Train it where CIFAR-10 can be downloaded (about {spec['epochs']} epochs; a GPU "
            f"is advised): `KERAS_BACKEND=jax ldm-keras zoo build {name} --train`, which "
            f"runs ldm_keras.training.train_multiview('{spec['recipe']}', "
            f"'{spec['dataset']}', seed={spec['seed']}) and writes the weights, reference "
            "outputs and metrics into the entry.")


# -- data and evaluation -----------------------------------------------------------------
def _dotmotion_eval_data(preset):
    from ..data import dot_motion

    readout = dot_motion.load(preset, "train", num_sequences=DOTMOTION_READOUT_SEQUENCES)
    test = dot_motion.load(preset, "test")
    return readout, test


def dotmotion_r2(encoder, preset):
    """Held-out affine R² of the positions from the per-frame latents (see module doc)."""
    from ..evaluation.dynamics import affine_r2

    readout, test = _dotmotion_eval_data(preset)
    frame = readout.frames.shape[-1]
    z_read = np.asarray(encoder.predict(readout.frames.reshape(-1, frame), batch_size=4096,
                                        verbose=0))
    z_test = np.asarray(encoder.predict(test.frames.reshape(-1, frame), batch_size=4096,
                                        verbose=0))
    r2 = affine_r2(z_read, readout.positions.reshape(-1, 2), z_test,
                   test.positions.reshape(-1, 2))
    return {"r2": float(r2)}


def evaluate_entry(name, config=None):
    """Recompute an entry's metrics from its stored weights and the data."""
    spec = _spec(name)
    config = config or registry._read_json(registry.entry_files(name)["config.json"])
    if spec["kind"] == "multiview":
        from ..training import evaluate_arrays, load_image_dataset

        encoder = registry.load(name)
        head = registry.load_component(name, "head") if spec["recipe"] == "categorical" \
            else None
        train, test = load_image_dataset(spec["dataset"], seed=0)
        return evaluate_arrays(encoder, head, train, test, spec["recipe"])
    return dotmotion_r2(registry.load(name), spec["preset"])


# -- training ------------------------------------------------------------------------------
def _train_multiview(name, spec, workdir, verbose):
    from ..training import DATASETS, train_multiview

    settings = dict(DATASETS.get(spec["dataset"], {}).get("recipe_overrides", {})
                    .get(spec["recipe"], {}))
    result = train_multiview(spec["recipe"], spec["dataset"], epochs=spec.get("epochs"),
                             seed=spec["seed"], out=str(workdir / "run"), verbose=verbose)
    model = result["model"]
    with open(workdir / "run" / "run.json") as f:
        run = json.load(f)
    comps = {"encoder": model.encoder}
    if model.projector is not None:
        comps["head" if spec["recipe"] == "categorical" else "projector"] = model.projector
    if model.predictor is not None:
        comps["predictor"] = model.predictor
    from ..training import load_image_dataset

    _, test = load_image_dataset(spec["dataset"], seed=0)
    ref = np.asarray(test[0][:16], dtype="float32")  # fixed inputs: the first test images
    extra = {"recipe": spec["recipe"], "settings": settings,
             "views": DATASETS.get(spec["dataset"], {}).get("preset"),
             "training": {k: run[k] for k in ("epochs", "batch_size", "learning_rate")},
             "optimizer": "Adam (recipes.default_optimizer)",
             "data": {"dataset": spec["dataset"], "split": "30 % stratified test, seed 0"}}
    return comps, result["metrics"], ref, None, extra, result["train_seconds"]


def _sequence_model(spec):
    from ..entropy import KNNEntropy
    from ..models.encoders import mlp
    from ..models.predictive import PredictiveLDM
    from ..predictors import KalmanCell, KalmanFilter, RecurrentPredictor

    frame, l_ = 100, spec["latent_dim"]
    encoder = mlp(frame, [spec["width"]], l_, batch_norm=False, name="encoder")
    if spec["kind"] == "kalman":
        noise_encoder = None
        if spec["heteroscedastic"]:
            noise_encoder = mlp(frame, [spec["width"] // 2], l_, batch_norm=False,
                                name="noise_encoder")
        cell = KalmanCell(state_dim=spec["state_dim"], observation_dim=l_,
                          observation_noise="input" if spec["heteroscedastic"] else "learned",
                          observation_noise_init=0.1, process_noise_init=0.01,
                          stop_gradient_targets=True, seed=spec["seed"])
        return PredictiveLDM(encoder, KalmanFilter(cell, return_covariances=False),
                             noise_encoder=noise_encoder, clamp_radius=1.02)
    predictor = RecurrentPredictor(units=spec["units"], cell="gru",
                                   hidden_units=(spec["units"],), stop_gradient_targets=False)
    return PredictiveLDM(encoder, predictor, entropy=KNNEntropy(k=spec["knn_k"]),
                         lr_multipliers=None)


def _train_sequences(name, spec, workdir, verbose):
    from ..data import dot_motion

    keras.utils.set_random_seed(spec["seed"])
    train = dot_motion.load(spec["preset"], "train", num_sequences=spec.get("sequences"))
    frames = train.frames
    if spec.get("length"):
        frames = frames[:, :spec["length"]]
    model = _sequence_model(spec)
    steps = math.ceil(len(frames) / spec["batch_size"]) * spec["epochs"]
    lr = keras.optimizers.schedules.CosineDecay(spec["learning_rate"], decay_steps=steps,
                                                alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(lr))
    t0 = time.time()
    history = model.fit(frames, epochs=spec["epochs"], batch_size=spec["batch_size"],
                        shuffle=True, verbose=verbose)
    seconds = time.time() - t0
    metrics = dotmotion_r2(model.encoder, spec["preset"])
    losses = [float(v) for v in history.history["loss"]]
    metrics["loss_first_last"] = [losses[0], losses[-1]]
    if spec["kind"] == "kalman":
        from ..evaluation.dynamics import rotation_per_step

        a = keras.ops.convert_to_numpy(model.predictor.transition_matrix)
        metrics["rotation_angles"] = [float(x) for x in rotation_per_step(a)]
    test = dot_motion.load(spec["preset"], "test", num_sequences=2)
    ref = test.frames[:, :8].reshape(-1, test.frames.shape[-1]).astype("float32")
    seq = test.frames[:, :8].astype("float32")
    extra = {"preset": spec["preset"],
             "training": {"sequences": int(len(frames)), "length": int(frames.shape[1]),
                          "epochs": spec["epochs"], "batch_size": spec["batch_size"],
                          "learning_rate": spec["learning_rate"],
                          "schedule": "cosine decay to 1 % over the run"},
             "optimizer": "Adam" + (" with PredictiveLDM's default per-group multipliers "
                                    "(dynamics ×100, innovation net ×10, noise encoder ×0.03)"
                                    if spec["kind"] == "kalman" else ""),
             "data": {"dataset": f"dot_motion.load({spec['preset']!r})",
                      "readout_sequences": DOTMOTION_READOUT_SEQUENCES}}
    return {"model": model}, metrics, ref, seq, extra, seconds


# -- writing ----------------------------------------------------------------------------------
def _component_record(part, obj, build_shape=None):
    config = keras.saving.serialize_keras_object(obj)
    config["compile_config"] = None  # published uncompiled (see registry._deserialize)
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


def _file_table(folder):
    return {p.name: {"size": p.stat().st_size, "sha256": registry.sha256(p)}
            for p in sorted(folder.iterdir()) if p.is_file()}


def write_index_entry(root, name, record):
    """Set ``index.json[entries][name]`` atomically (write a temporary file, replace)."""
    root = Path(root)
    _paths.check_name(name, "entry name")
    path = root / registry.INDEX
    index = registry.read_index(root) if _paths.check_regular_file(path, registry.INDEX) else {
        "format": registry.FORMAT_VERSION, "entries": {}}
    index["entries"][name] = record
    index["entries"] = dict(sorted(index["entries"].items()))
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".tmp", dir=root)
    with os.fdopen(fd, "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _entry_folder(root, name):
    """``root / name`` once ``name`` is a valid entry name, the path stays inside ``root``
    and is not a symbolic link (see :mod:`._paths`)."""
    _paths.check_name(name, "entry name")
    folder = _paths.safe_join(root, name, field=f"folder of zoo entry {name!r}")
    _paths.check_directory(folder, f"folder of zoo entry {name!r}")
    return folder


def _default_root():
    env = os.environ.get("LDM_KERAS_ZOO")
    if env:
        return Path(env)
    try:
        return registry.zoo_dir()
    except registry.ZooError:
        return Path(__file__).resolve().parent.parent / "_zoo_data"


def build(name, root=None, train=None, verbose=0):
    """Train entry ``name`` from its recipe and fixed seed; write it atomically.

    ``root`` is the zoo directory to write into (default: ``$LDM_KERAS_ZOO`` or the
    package's zoo). ``train=False`` writes only the config and card (the default for
    entries published without weights). Returns the entry's index record.

    Example:
        >>> build("digits-simclr")
    """
    spec = _spec(name)
    root = Path(root) if root is not None else _default_root()
    _entry_folder(root, name)  # the whole target checked before anything is created
    root.mkdir(parents=True, exist_ok=True)
    train = spec.get("weights", True) if train is None else bool(train)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
    work = Path(tempfile.mkdtemp(prefix=f"ldm-zoo-{name}-"))
    try:
        config = {"name": name, "version": spec["version"], "kind": spec["kind"],
                  "summary": spec["summary"], "seed": spec["seed"],
                  "headline": spec["headline"], "format": registry.FORMAT_VERSION}
        metrics = {"headline": spec["headline"]}
        if train:
            trainer = _train_multiview if spec["kind"] == "multiview" else _train_sequences
            comps, measured, ref, seq, extra, seconds = trainer(name, spec, work, verbose)
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
        with open(tmp / "README.md", "w") as f:
            f.write(cards.render(name, spec, config, metrics, train, how_to_build(name)))
        record = {"version": spec["version"], "kind": spec["kind"], "summary": spec["summary"],
                  "weights": train, "files": _file_table(tmp)}
        if not train:
            record["how_to_build"] = how_to_build(name)
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
        write_index_entry(root, name, record)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return record
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _check_written(folder, name, record):
    """Reload the freshly written folder (safe mode) and compare the reference outputs."""
    check = Path(tempfile.mkdtemp(prefix=".check-", dir=folder.parent))
    try:
        shutil.copytree(folder, check / name)
        with open(check / registry.INDEX, "w") as f:
            json.dump({"format": registry.FORMAT_VERSION, "entries": {name: record}}, f)
        previous = os.environ.get("LDM_KERAS_ZOO")
        os.environ["LDM_KERAS_ZOO"] = str(check)
        try:
            result = registry.check_reference(name)
        finally:
            if previous is None:
                os.environ.pop("LDM_KERAS_ZOO", None)
            else:
                os.environ["LDM_KERAS_ZOO"] = previous
        if not result["ok"]:
            raise registry.ZooError(f"The freshly built {name!r} does not reload to its own "
                                    f"outputs: {result}.")
    finally:
        shutil.rmtree(check, ignore_errors=True)


def rewrite_card(name, root=None):
    """Re-render an entry's ``README.md`` from its stored config and metrics (no
    retraining) and update its size and SHA-256 in the index atomically."""
    spec = _spec(name)
    root = Path(root) if root is not None else _default_root()
    folder = _entry_folder(root, name)
    config = registry._read_json(folder / "config.json")  # a link is refused
    metrics = registry._read_json(folder / "metrics.json")
    record = registry.read_index(root)["entries"][name]
    text = cards.render(name, spec, config, metrics, record.get("weights", True),
                        how_to_build(name))
    fd, tmp = tempfile.mkstemp(prefix=".README.", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / "README.md")
    record["files"]["README.md"] = _file_table(folder)["README.md"]
    write_index_entry(root, name, record)
    return record
