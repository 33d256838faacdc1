"""The training jobs behind ``ldm-keras train`` / ``evaluate`` and the zoo's builds.

:func:`train_multiview` loads an image dataset (:mod:`ldm_keras.data.datasets`), builds
the dataset's default encoder and view generator, builds a recipe around them
(:func:`ldm_keras.recipes.build`), trains with ``model.fit``, evaluates the frozen encoder
(:func:`ldm_keras.evaluation.encoders.evaluate_encoder`: linear probe with all labels
and with 10 labels per class, k-NN, and clustering accuracy for the categorical recipe)
and saves

* ``encoder.keras`` — the trained encoder (reloads on any backend, ``safe_mode=True``);
* ``head.keras`` — the projector / softmax head, when the recipe has one;
* ``metrics.json`` — the evaluation; ``run.json`` — the settings of the run.

:func:`train_sequence` does the same for the sequence recipes on sequence datasets (the
held-out R² of an affine read-out of the ground truth), and :func:`evaluate_run`
re-evaluates a folder written by either.

Outputs are safe (docs/reliability.md): ``out`` is checked and created before any data is
loaded or step taken (an existing file, an unwritable place, or a folder that already
holds a run or a run in progress is refused with a ``ValueError``; a ``.lock`` file held
for the run, removed at its end, refuses a second run on the same ``out``); every file is
written atomically (a temporary file in the same folder, flushed to disk, then renamed),
so a full disk or a kill leaves no truncated ``encoder.keras``; ``run.json`` holds
absolute paths (``out``, ``encoder``, and the dataset when it is a file), so ``evaluate``
works from any directory. A run whose steps were mostly skipped as non-finite raises
:class:`TrainingFailedError` and saves nothing; a run that finished but collapsed, skipped
steps or learned nothing the read-out sees says so at the end (:mod:`ldm_keras.run_health`).

Across processes (:mod:`ldm_keras.distributed`) every process trains on its share and
evaluates; process 0 alone checks, locks and writes ``out``.

Long module: the two jobs share one flow (output folder, processes, end-of-run checks,
evaluation, files written) that reads best in one place.
"""

import contextlib
import json
import os
import time

import keras
import numpy as np

from . import distributed, recipes
from .augment import image_views
from .callbacks import RepresentationMonitor
from .data.datasets import H5_TEST_FRACTION, H5_WINDOW, load_image_dataset, load_sequence_dataset
from .data.pairs import same_class_pairs
from .evaluation.encoders import FrameEncoder, evaluate_encoder, evaluate_sequence_model
from .models.encoders import conv_encoder, mlp, resnet18
from .models.fitdata import SKIPPED_STEPS_LIMIT, skipped_steps
from .outputs import output_folder, save_json, save_model
from .run_health import (
    LatentCheck,
    RunWarning,  # noqa: F401 - re-exported: jobs.RunWarning
    encoder_latents,
    run_warnings,
    warn_all,
)


class TrainingFailedError(RuntimeError):
    """The run did not train: most of its steps were skipped as non-finite."""


def _absolute_dataset(name):
    """A dataset name with its file made absolute (``path.h5:key`` → ``/abs/path.h5:key``)."""
    name = str(name)
    if ".h5:" in name:
        head, rest = name.split(".h5:", 1)
        return os.path.abspath(head + ".h5") + ":" + rest
    return os.path.abspath(name) if name.endswith(".h5") else name  # "digits" stays a name


def _output_folder(out):
    """The run folder, checked and locked (:func:`~ldm_keras.outputs.output_folder`), on
    the chief; the other processes of a multi-process run write nothing."""
    if distributed.is_chief():
        return output_folder(out)
    return contextlib.nullcontext(os.path.abspath(os.path.expanduser(str(out))))


def _processes(batch_size, n):
    """``(R, batch_size)`` for a run on ``R`` processes (the global batch must split)."""
    count = distributed.process_count()
    if count > 1 and batch_size % count:
        raise ValueError(f"`batch_size` (the global batch) must be a multiple of the {count} "
                         f"processes; received {batch_size}.")
    if count > 1 and n // count < batch_size // count:
        raise ValueError(f"{n} training rows shared by {count} processes give each fewer "
                         f"rows ({n // count}) than its share of the batch "
                         f"({batch_size // count}); choose a smaller `batch_size`.")
    return count, batch_size


def _not_the_chief(model, epochs, history, metrics):
    """What a process other than the chief returns (it writes nothing)."""
    return {"metrics": metrics, "train_seconds": None, "epochs": epochs,
            "backend": keras.backend.backend(), "encoder_path": None,
            "history": [float(v) for v in history.history["loss"]], "monitor": None,
            "model": model, "process": distributed.process_index(),
            "weights_fingerprint": distributed.weights_fingerprint(model)}


def _check_trained(model, history):
    skipped, total = skipped_steps(history)
    if total and skipped > SKIPPED_STEPS_LIMIT * total:
        raise TrainingFailedError(
            f"{skipped} of the {total} training steps were skipped as non-finite (NaN/inf "
            "loss or gradient): the encoder has not trained and nothing was saved; check "
            "the data for NaN/inf or huge values, and the learning rate.")

#: Per-dataset defaults: encoder factory, view preset, epochs, optimizer, learning rate
#: and schedule, and recipe settings tuned for the dataset. On the 8×8 digits the sphere
#: recipes use κ = γ = 10 (temperature 0.1), which probed better than κ = 5 (RESULTS.md,
#: "Digits"); digits trains with Adam. CIFAR-10/100 follow the reference image recipe
#: (docs/spec.md §5): LARS, lr 0.3 at batch 256, weight decay 1e-6, biases and
#: normalisation parameters excluded from weight decay and trust ratio, cosine decay over
#: the run (:func:`ldm_keras.recipes.default_optimizer` with ``optimizer="lars"``).
_SPHERE10 = {"precision": 10.0, "entropy_precision": 10.0}
DATASETS = {
    "digits": {"preset": "digits", "epochs": 60, "learning_rate": 2e-3,
               "encoder": lambda shape: conv_encoder(shape, dim=64),
               "recipe_overrides": {"simclr": _SPHERE10, "sphere-ldm": _SPHERE10}},
    # Same-class pairs as the two views (the reference clustering protocol, docs/spec.md §5):
    # 3 partners per image, no augmentation.
    "digits-pairs": {"preset": None, "pairs": 3, "epochs": 30, "learning_rate": 2e-3,
                     "encoder": lambda shape: conv_encoder(shape, dim=64)},
    "cifar10": {"preset": "cifar", "epochs": 1000, "optimizer": "lars", "learning_rate": 0.3,
                "schedule": "cosine", "encoder": lambda shape: resnet18(shape)},
    "cifar100": {"preset": "cifar", "epochs": 1000, "optimizer": "lars", "learning_rate": 0.3,
                 "schedule": "cosine", "encoder": lambda shape: resnet18(shape)},
}


def _defaults_for(dataset, shape):
    if dataset in DATASETS:
        return DATASETS[dataset]
    if shape[0] <= 16:
        return {"preset": "digits", "epochs": 50, "encoder": lambda s: conv_encoder(s, dim=64)}
    return {"preset": "cifar", "epochs": 100, "encoder": lambda s: resnet18(s)}


def job_optimizer(recipe, dataset, learning_rate=None, steps=None, shape=None):
    """The optimizer :func:`train_multiview` compiles with for ``recipe`` on ``dataset``.

    The dataset's :data:`DATASETS` entry chooses it (``optimizer``: ``"adam"`` unless
    given, ``learning_rate``, ``schedule``); ``learning_rate`` overrides the dataset's,
    ``steps`` (optimizer steps of the whole run) is the length of a cosine schedule.
    ``shape`` (an image's shape) picks the defaults of a dataset not in :data:`DATASETS`.

    Example:
        >>> job_optimizer("simclr", "cifar10", steps=1000 * 195)    # LARS, lr 0.3, cosine
        >>> job_optimizer("simclr", "digits")                        # Adam, lr 2e-3
    """
    if dataset not in DATASETS and shape is None:
        raise ValueError(f"`dataset` {dataset!r} is not one of {sorted(DATASETS)}; give "
                         "`shape` (an image's shape) to use the defaults for its size.")
    d = _defaults_for(dataset, shape)
    return recipes.default_optimizer(recipe, learning_rate or d.get("learning_rate"),
                                     decay_steps=steps, schedule=d.get("schedule"),
                                     optimizer=d.get("optimizer", "adam"))


def describe_optimizer(optimizer):
    """A one-line description of a compiled optimizer (what the zoo's cards record).

    Example:
        >>> describe_optimizer(keras.optimizers.Adam(2e-3))       # 'Adam (lr 0.002)'
    """
    lr = optimizer._learning_rate   # the float or the schedule the optimizer was given
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        c = lr.get_config()
        rate = (f"lr {c.get('initial_learning_rate')}, {type(lr).__name__} over "
                f"{c.get('decay_steps')} steps" if "initial_learning_rate" in c
                else f"lr schedule {type(lr).__name__}")
    else:
        rate = f"lr {float(keras.ops.convert_to_numpy(optimizer.learning_rate)):g}"
    name = type(optimizer).__name__
    if name == "LARS":
        return (f"LARS ({rate}, momentum {optimizer.momentum:g}, weight decay "
                f"{float(optimizer.weight_decay or 0.0):g}, trust coefficient "
                f"{optimizer.trust_coefficient:g}; biases and normalisation parameters "
                f"excluded from weight decay and trust ratio: {optimizer.exclude_1d})")
    return f"{name} ({rate})"


def train_multiview(recipe="simclr", dataset="digits",
                    epochs=None, batch_size=256, learning_rate=None, seed=0, out=None,
                    verbose="auto", monitor=False, **overrides):
    """Train recipe ``recipe`` on ``dataset`` and save encoder, head and metrics.

    With ``monitor=True`` a :class:`~ldm_keras.callbacks.RepresentationMonitor` watches
    the first 512 training images at every epoch end (a collapse warns while it
    happens); its last measurement is returned as ``monitor`` (``rep_rank``,
    ``rep_spread``, …, ``collapsed``). The monitor draws its views from a copy of the
    view generator, so the training itself is the same with or without it.

    The optimizer is the dataset's (:func:`job_optimizer`: Adam on digits, LARS with a
    cosine schedule over the run on CIFAR-10/100); ``run.json`` records it
    (:func:`describe_optimizer`).

    Returns a dict with ``metrics``, ``train_seconds``, ``epochs``, ``backend``,
    ``encoder_path``, ``optimizer`` (its description), ``monitor`` (``None`` without it)
    and the fitted ``model``.

    Example:
        >>> result = train_multiview("simclr", "digits", epochs=50, out="runs/simclr")
        >>> result["metrics"]["probe_10"]
    """
    recipes.get(recipe)
    out = out or os.path.join("runs", f"{recipe}-{os.path.basename(dataset)}")
    with _output_folder(out) as out:
        return _train_multiview(recipe, dataset, epochs, batch_size, learning_rate, seed,
                                out, verbose, monitor, overrides)


def _train_multiview(recipe, dataset, epochs, batch_size, learning_rate, seed, out,
                     verbose, monitor, overrides):
    keras.utils.set_random_seed(seed)
    train, test = load_image_dataset(dataset, seed=0)
    xtr = train[0]
    d = _defaults_for(dataset, xtr.shape[1:])
    epochs = int(epochs or d["epochs"])
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1; received {epochs}.")
    settings = {**d.get("recipe_overrides", {}).get(recipe, {}), **overrides}
    learning_rate = learning_rate or d.get("learning_rate")
    data = xtr
    if d.get("pairs"):
        data = same_class_pairs(xtr, train[1], partners=d["pairs"], seed=seed)
    n = len(data[0]) if isinstance(data, (tuple, list)) else len(data)
    count, batch = _processes(min(batch_size, len(xtr)), n)
    steps = int(np.ceil(n // count * count / batch)) * epochs
    with distributed.model_scope():
        encoder = d["encoder"](tuple(xtr.shape[1:]))
        views = image_views(d["preset"], seed=seed) if d.get("preset") else None
        model = recipes.build(recipe, encoder, views=views, **settings)
        if count > 1:  # variables made here, not inside a replica's first step
            one = (batch,) + tuple(xtr.shape[1:])
            model.build((one, one) if isinstance(data, (tuple, list)) else one)
        model.compile(optimizer=job_optimizer(recipe, dataset, learning_rate, steps=steps,
                                              shape=tuple(xtr.shape[1:])))
    optimizer = describe_optimizer(model.optimizer)
    t0 = time.time()
    # the monitor embeds on every process: one process alone (no collectives) only
    watch = [RepresentationMonitor(xtr[:512])] if monitor and count == 1 else []
    check = LatentCheck(xtr[:512])
    with distributed.local_scope():
        check.measure(encoder_latents(distributed.local_copy(model.encoder)))
    here, batch_here = distributed.fit_share(data, batch)
    history = model.fit(here, epochs=epochs, batch_size=batch_here,
                        verbose=verbose, shuffle=True,
                        callbacks=recipes.callbacks(recipe, epochs) + watch)
    train_seconds = time.time() - t0
    _check_trained(model, history)
    # every process evaluates (on JAX making variables is a collective: the processes must
    # run the same code), the chief writes
    with distributed.local_scope():
        head = distributed.local_copy(model.projector) if model.projector is not None \
            else None
        encoder = distributed.local_copy(model.encoder)
        metrics = evaluate_encoder(encoder, train, test, head=head,
                                   clustering=recipe == "categorical")
        latents = check.measure(encoder_latents(encoder))
    said = run_warnings(recipe, settings, latents, *skipped_steps(history), metrics)
    if not distributed.is_chief():
        return _not_the_chief(model, epochs, history, metrics)
    warn_all(said)

    encoder_path = os.path.join(out, "encoder.keras")
    save_model(model.encoder, encoder_path)
    if model.projector is not None:
        save_model(model.projector, os.path.join(out, "head.keras"))
    run = {"recipe": recipe, "dataset": _absolute_dataset(dataset), "epochs": epochs,
           "batch_size": batch_size, "learning_rate": learning_rate, "optimizer": optimizer,
           "seed": seed, "processes": count,
           "weights_fingerprint": distributed.weights_fingerprint(model),
           "latents_at_end": latents, "warnings": said,
           "backend": keras.backend.backend(), "keras": keras.__version__,
           "train_seconds": round(train_seconds, 2), "settings": settings, "out": out,
           "encoder": encoder_path}
    save_json(metrics, os.path.join(out, "metrics.json"))
    save_json(run, os.path.join(out, "run.json"), default=str)  # last: marks the run done
    final = {k: v for k, v in watch[0].records[-1].items() if k not in ("step", "epoch")} \
        if watch else None
    return {"metrics": metrics, "train_seconds": train_seconds, "epochs": epochs,
            "backend": keras.backend.backend(), "encoder_path": encoder_path,
            "optimizer": optimizer, "monitor": final, "model": model, "process": 0,
            "weights_fingerprint": run["weights_fingerprint"], "warnings": said}


def load_run(path):
    """``(run, encoder)``: a run folder's ``run.json`` and its encoder (safe mode).

    Example:
        >>> run, encoder = load_run("runs/simclr-digits")
    """
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is not a folder written by `ldm-keras train`.")
    run_file = os.path.join(path, "run.json")
    enc_file = os.path.join(path, "encoder.keras")
    for f in (run_file, enc_file):
        if not os.path.exists(f):
            raise ValueError(f"{path!r} lacks {os.path.basename(f)}; was it written by "
                             "`ldm-keras train`?")
    with open(run_file) as f:
        run = json.load(f)
    return run, keras.saving.load_model(enc_file, safe_mode=True)


def evaluate_run(path):
    """Re-evaluate a folder written by :func:`train_multiview` (any backend).

    Example:
        >>> evaluate_run("runs/simclr-digits")      # {"probe_full": ..., ...}
    """
    run, encoder = load_run(path)
    if run.get("kind") == "sequence":
        return _evaluate_sequence_run(encoder, run)
    head_file = os.path.join(path, "head.keras")
    head = keras.saving.load_model(head_file, safe_mode=True) if os.path.exists(head_file) \
        else None
    train, test = load_image_dataset(run["dataset"], seed=0)
    return evaluate_encoder(encoder, train, test, head=head,
                            clustering=run["recipe"] == "categorical")


# -- sequences ---------------------------------------------------------------------------

#: Defaults of the sequence jobs (DotMotion presets as in benchmarks/dotmotion_kalman.py);
#: ``window`` and ``test_fraction`` are those of HDF5 recordings (ldm_keras.data.datasets).
SEQUENCE_DEFAULTS = {"epochs": 20, "batch_size": 32, "window": H5_WINDOW,
                     "readout_sequences": 800, "test_fraction": H5_TEST_FRACTION}

#: Epochs per sequence recipe when the run does not say (others: SEQUENCE_DEFAULTS):
#: the recurrent recipe's defaults were validated at 40 (benchmarks/results/robustness.md).
SEQUENCE_EPOCHS = {"recurrent-ldm": 40}

#: Batch size and epochs per dataset when the run does not say (they come before
#: :data:`SEQUENCE_EPOCHS` and :data:`SEQUENCE_DEFAULTS`). DotMotion square has 800
#: training sequences, a quarter of the other presets: at the reference's batch 8 and 40
#: epochs (4000 optimizer steps) KalmanSSL reaches R² 0.971-0.973 on seeds 0-4, against
#: 0.954-0.968 at 2000 steps (batch 8 × 20 epochs or batch 32 × 80) and 0.735-0.958 at
#: batch 32 × 20 (500 steps); benchmarks/robustness/results/kalman/README.md.
SEQUENCE_DATASET_DEFAULTS = {"dotmotion-square": {"batch_size": 8, "epochs": 40}}

#: Latent size per recipe when the run does not say (the Kalman recipes use the
#: ground truth's size, 2 for DotMotion, as the reference; the others 8).
_SEQUENCE_LATENT = {"kalman-ssl": None, "kalman-ssl-knn": None}

#: Latent and state sizes of the Kalman recipes per dataset when the run does not say
#: (others: the ground truth's size for both). A figure-eight moves at two frequencies,
#: ω and 2ω, which a linear transition can only hold in two rotating pairs: S = 4 state
#: coordinates seen through L = 3 latents (R² 0.71-0.99 with the kalman-ssl defaults on
#: seeds 0-4, PyTorch and JAX; 2-d latents cannot make y = sin θ cos θ linear);
#: benchmarks/robustness/results/kalman/README.md.
KALMAN_DATASET_SIZES = {"dotmotion-figure-eight": {"latent_dim": 3, "state_dim": 4}}


def _sequence_encoder(frame_shape, latent_dim):
    if len(frame_shape) == 1:
        return mlp(frame_shape[0], [128], latent_dim, batch_norm=False, name="encoder")
    if len(frame_shape) == 3:
        return conv_encoder(frame_shape, dim=latent_dim, name="encoder")
    raise ValueError(f"Frames must be vectors (features,) or images (H, W, C); received "
                     f"frame shape {frame_shape}.")


def _evaluate_sequence_run(encoder, run):
    train, test, _ = load_sequence_dataset(run["dataset"], run.get("sequences"),
                                           run.get("test_sequences"), run.get("window"),
                                           run.get("stride"), seed=run.get("seed", 0),
                                           train_length=run.get("train_length"))
    return evaluate_sequence_model(FrameEncoder(encoder), train, test,
                                   SEQUENCE_DEFAULTS["readout_sequences"])


def train_sequence(recipe="kalman-ssl", dataset="dotmotion-circular", epochs=None,
                   batch_size=None, learning_rate=None, seed=0, out=None, verbose="auto",
                   sequences=None, test_sequences=None, window=None, stride=None,
                   latent_dim=None, train_length=None, evaluate_untrained=True, **overrides):
    """Train sequence recipe ``recipe`` on ``dataset``; save encoder and metrics.

    Loads the data (:func:`~ldm_keras.data.datasets.load_sequence_dataset`; ``sequences``,
    ``test_sequences``, ``window``, ``stride`` and ``train_length`` are passed on), builds
    a per-frame encoder (an MLP
    ``features → 128 → latent_dim`` for vector frames, :func:`conv_encoder` for image
    frames), the recipe around it (:func:`ldm_keras.recipes.build`), compiles with the
    recipe's :func:`~ldm_keras.recipes.default_optimizer` (cosine decay over the run for
    the Kalman recipes), trains with ``model.fit`` and reports the held-out affine
    read-out R² (:func:`~ldm_keras.evaluation.encoders.evaluate_sequence_model`) when the
    data have ground truth, with ``r2_untrained``, the same read-out from the encoder
    before training (random features of the frames often decode position well already:
    the baseline to beat; ``evaluate_untrained=False`` skips it, and the model is then
    built by ``fit`` itself, which draws the shuffling differently).
    ``epochs`` and ``batch_size`` default to the dataset's budget where it has one
    (:data:`SEQUENCE_DATASET_DEFAULTS`: ``dotmotion-square`` trains at batch 8 for 40
    epochs), else to the recipe's epochs (:data:`SEQUENCE_EPOCHS`), else to 20 epochs of
    batch 32. The Kalman recipes take ``latent_dim`` and ``state_dim`` from
    :data:`KALMAN_DATASET_SIZES` where the dataset is there (``dotmotion-figure-eight``:
    L = 3, S = 4), else the ground truth's size. Writes ``encoder.keras``,
    ``metrics.json`` and ``run.json`` to ``out``.

    Returns a dict with ``metrics``, ``train_seconds``, ``epochs``, ``backend``,
    ``encoder_path``, ``history`` (loss per epoch) and the fitted ``model``.

    Example:
        >>> result = train_sequence("kalman-ssl", "dotmotion-circular", epochs=20)
        >>> result["metrics"]["r2"]
    """
    r = recipes.get(recipe)
    if r.kind != "sequence":
        raise ValueError(f"Recipe {recipe!r} is a {r.kind} recipe; train_sequence takes one "
                         f"of {sorted(recipes.names('sequence'))}.")
    out = out or os.path.join("runs", f"{recipe}-{os.path.basename(dataset)}".replace(":", "-"))
    with _output_folder(out) as out:
        return _train_sequence(recipe, dataset, epochs, batch_size, learning_rate, seed, out,
                               verbose, sequences, test_sequences, window, stride,
                               latent_dim, train_length, evaluate_untrained, overrides)


def _train_sequence(recipe, dataset, epochs, batch_size, learning_rate, seed, out, verbose,
                    sequences, test_sequences, window, stride, latent_dim, train_length,
                    evaluate_untrained, overrides):
    keras.utils.set_random_seed(seed)
    train, test, info = load_sequence_dataset(dataset, sequences, test_sequences, window,
                                              stride, seed=seed, train_length=train_length)
    xtr = np.asarray(train[0], "float32")
    budget = SEQUENCE_DATASET_DEFAULTS.get(dataset, {})
    epochs = int(epochs or budget.get("epochs")
                 or SEQUENCE_EPOCHS.get(recipe, SEQUENCE_DEFAULTS["epochs"]))
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1; received {epochs}.")
    batch_size = int(min(batch_size or budget.get("batch_size")
                         or SEQUENCE_DEFAULTS["batch_size"], len(xtr)))
    count, batch_size = _processes(batch_size, len(xtr))
    sizes = KALMAN_DATASET_SIZES.get(dataset, {}) if recipe in _SEQUENCE_LATENT else {}
    if latent_dim is None:
        latent_dim = 8
        if recipe in _SEQUENCE_LATENT:
            latent_dim = sizes.get("latent_dim") or (
                int(train[1].shape[-1]) if train[1] is not None else 4)
    if "state_dim" in sizes and overrides.get("state_dim") is None:
        overrides = {**overrides, "state_dim": sizes["state_dim"]}
    steps = int(np.ceil(len(xtr) // count * count / batch_size)) * epochs
    with distributed.model_scope():
        encoder = _sequence_encoder(tuple(xtr.shape[2:]), int(latent_dim))
        model = recipes.build(recipe, encoder, **overrides)
        model.compile(optimizer=recipes.default_optimizer(
            recipe, learning_rate, decay_steps=steps, schedule=overrides.get("schedule")))
        if evaluate_untrained or count > 1:
            model.build((batch_size,) + tuple(xtr.shape[1:]))
    check = LatentCheck(xtr[:64])
    with distributed.local_scope():
        check.measure(encoder_latents(distributed.local_copy(model.encoder), frames=True))
    initial = {}
    if evaluate_untrained:
        # the same read-out from the untrained encoder: the baseline the training must beat
        with distributed.local_scope():
            initial = evaluate_sequence_model(distributed.local_copy(model), train, test,
                                              SEQUENCE_DEFAULTS["readout_sequences"])
    t0 = time.time()
    here, batch_here = distributed.fit_share(xtr, batch_size)
    history = model.fit(here, epochs=epochs, batch_size=batch_here, shuffle=True,
                        verbose=verbose, callbacks=recipes.callbacks(recipe, epochs))
    train_seconds = time.time() - t0
    _check_trained(model, history)
    losses = [float(v) for v in history.history["loss"]]
    with distributed.local_scope():
        here_model = distributed.local_copy(model)
        metrics = evaluate_sequence_model(here_model, train, test,
                                          SEQUENCE_DEFAULTS["readout_sequences"])
        latents = check.measure(encoder_latents(here_model.encoder, frames=True))
    if "r2" in initial:
        metrics["r2_untrained"] = initial["r2"]
    metrics["final_loss"] = losses[-1]
    said = run_warnings(recipe, overrides, latents, *skipped_steps(history), metrics)
    if not distributed.is_chief():
        return _not_the_chief(model, epochs, history, metrics)
    warn_all(said)

    encoder_path = os.path.join(out, "encoder.keras")
    save_model(model.encoder, encoder_path)
    run = {"kind": "sequence", "recipe": recipe, "dataset": _absolute_dataset(dataset),
           "epochs": epochs, "out": out, "encoder": encoder_path,
           "batch_size": batch_size, "learning_rate": learning_rate
           or recipes.get(recipe).defaults["learning_rate"], "seed": seed,
           "sequences": sequences, "test_sequences": test_sequences, "window": window,
           "stride": stride, "train_length": train_length, "latent_dim": int(latent_dim),
           "num_train": int(len(xtr)), "processes": count,
           "weights_fingerprint": distributed.weights_fingerprint(model),
           "latents_at_end": latents, "warnings": said,
           "sequence_length": int(xtr.shape[1]), "backend": keras.backend.backend(),
           "keras": keras.__version__, "train_seconds": round(train_seconds, 2),
           "loss_per_epoch": losses, "settings": overrides, **info}
    save_json(metrics, os.path.join(out, "metrics.json"))
    save_json(run, os.path.join(out, "run.json"), default=str)  # last: marks the run done
    return {"metrics": metrics, "train_seconds": train_seconds, "epochs": epochs,
            "backend": keras.backend.backend(), "encoder_path": encoder_path,
            "history": losses, "model": model, "process": 0,
            "weights_fingerprint": run["weights_fingerprint"], "warnings": said}
