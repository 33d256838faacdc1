"""The ``ldm-keras`` command line.

::

    ldm-keras train --recipe simclr --dataset digits [--backend jax] [--epochs N] [--out DIR]
    ldm-keras train --recipe kalman-ssl --dataset dotmotion-circular [--sequences N]
    ldm-keras train --recipe cpc --dataset path/to/file.h5:frames[:targets] [--window 32]
    ldm-keras train ... --processes R --process-id I --coordinator HOST:PORT   (each process)
    ldm-keras evaluate DIR [--plot]
    ldm-keras evaluate DIR_A DIR_B [--plot]     (consistency of two runs)
    ldm-keras recipes
    ldm-keras zoo list|info NAME|verify [--eval] [NAME]|build NAME

``--backend`` picks the Keras backend; because Keras reads ``KERAS_BACKEND`` once, at
import, the command re-executes itself with the variable set when it differs from the
backend already loaded.

Errors: a user error in ``train`` or ``evaluate`` (a bad value, a missing file, an
``--out`` already used) prints one line, ``ldm-keras train: error: …`` (what was wrong and
what was expected), and exits with 2; a run that did not train (most steps skipped as
non-finite) exits with 1. ``--debug`` shows the traceback instead. Numbers are checked by
argparse: counts must be integers ≥ 1, the learning rate a finite number > 0.
"""

import argparse
import json
import math
import os
import re
import sys
import time

DEFAULT_RECIPE = "simclr"
DEFAULT_DATASET = "digits"


#: Exit code of a user error (as argparse's), and of a run that did not train.
EXIT_USAGE, EXIT_FAILED = 2, 1


def _positive_int(text):
    """argparse type: an integer >= 1 (0 would silently mean "the default")."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, received {text!r}") \
            from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, received {text!r}")
    return v


def _positive_float(text):
    """argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, received {text!r}")
    return v


def _parser():
    p = argparse.ArgumentParser(prog="ldm-keras", description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["tensorflow", "jax", "torch"], default=None,
                   help="Keras backend (default: $KERAS_BACKEND or Keras' default).")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an encoder with a recipe on a dataset")
    t.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"recipe (default {DEFAULT_RECIPE})")
    t.add_argument("--dataset", default=DEFAULT_DATASET,
                   help="digits | cifar10 | cifar100 | path/to/file.h5:images_dataset; "
                   "sequence recipes: dotmotion-<preset> | state-space-<preset> | "
                   "path/to/file.h5:frames[:targets]")
    t.add_argument("--backend", choices=["tensorflow", "jax", "torch"], default=None,
                   dest="backend_sub", help=argparse.SUPPRESS)
    t.add_argument("--epochs", type=_positive_int, default=None,
                   help="epochs (the dataset's or the recipe's default)")
    t.add_argument("--batch-size", type=_positive_int, default=None,
                   help="batch size (default 256; sequence recipes 32, dotmotion-square 8)")
    t.add_argument("--learning-rate", type=_positive_float, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="output folder (default runs/RECIPE-DATASET)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--debug", action="store_true", help="show the traceback of an error")
    t.add_argument("--sequences", type=_positive_int, default=None,
                   help="sequence recipes: training sequences of a generated dataset")
    t.add_argument("--test-sequences", type=_positive_int, default=None,
                   help="sequence recipes: held-out sequences of a generated dataset")
    t.add_argument("--window", type=_positive_int, default=None,
                   help="sequence recipes: window length (default: whole generated "
                   "sequences; 32 for HDF5 recordings)")
    t.add_argument("--stride", type=_positive_int, default=None,
                   help="sequence recipes: steps between windows (default window/2)")
    t.add_argument("--latent-dim", type=_positive_int, default=None,
                   help="sequence recipes: latent size (Kalman: the ground truth's, "
                   "DotMotion figure-eight 3 with state size 4; others 8)")
    t.add_argument("--processes", type=_positive_int, default=None,
                   help="data-parallel run: the number of processes R (started once each, "
                   "with its --process-id; --batch-size is the global batch; process 0 "
                   "writes the results; default $LDM_KERAS_NUM_PROCESSES or 1)")
    t.add_argument("--process-id", type=int, default=None,
                   help="data-parallel run: this process's index in [0, R)")
    t.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="data-parallel run: process 0's address (TensorFlow: every "
                   "process's HOST:PORT, comma-separated, in process order)")

    e = sub.add_parser("evaluate", help="evaluate a trained encoder folder (from train); "
                                        "with two folders, their consistency")
    e.add_argument("path", nargs="+", metavar="DIR",
                   help="a run folder; a second one reports the two runs' consistency")
    e.add_argument("--plot", action="store_true",
                   help="also write embedding.png (held-out embeddings, PCA) into each folder")
    e.add_argument("--debug", action="store_true", help="show the traceback of an error")
    e.add_argument("--backend", choices=["tensorflow", "jax", "torch"], default=None,
                   dest="backend_sub", help=argparse.SUPPRESS)

    sub.add_parser("recipes", help="list the recipes")

    from .zoo.cli import add_parser as _add_zoo_parser

    _add_zoo_parser(sub)
    return p


def _ensure_backend(backend, argv):
    """Re-execute with KERAS_BACKEND=backend if keras is loaded with another backend."""
    if backend is None:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() == backend:
            return
    elif os.environ.get("KERAS_BACKEND") == backend:
        return
    env = dict(os.environ, KERAS_BACKEND=backend)
    os.execvpe(sys.executable, [sys.executable, "-m", "ldm_keras.cli", *argv], env)


def format_table(rows, title=None):
    """Render ``[(name, value), …]`` as an aligned two-column text table."""
    width = max(len(str(k)) for k, _ in rows)
    lines = [title, "-" * (width + 12)] if title else []
    for k, v in rows:
        v = f"{v:.4f}" if isinstance(v, float) else str(v)
        lines.append(f"{str(k):<{width}}  {v}")
    return "\n".join(lines)


def main(argv=None):
    """Entry point of ``ldm-keras``; returns the exit code.

    Example:
        >>> main(["train", "--recipe", "simclr", "--dataset", "digits", "--epochs", "5"])
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    backend = getattr(args, "backend_sub", None) or args.backend
    _ensure_backend(backend, argv)
    if args.command == "recipes":
        from . import recipes

        for name in recipes.names():
            print(recipes.describe(name))
        return 0
    if args.command in ("train", "evaluate"):
        return _guarded(_train if args.command == "train" else _evaluate, args)
    if args.command == "zoo":
        from .zoo.cli import run as _run_zoo

        return _run_zoo(args)
    return 2


def _guarded(command, args):
    """Run ``command(args)``; a user error becomes one line on stderr and exit code 2, a run
    that did not train exit code 1 (``--debug``: the traceback)."""
    from .jobs import TrainingFailedError

    try:
        return command(args)
    except (ValueError, OSError, TrainingFailedError) as e:
        if args.debug:
            raise
        text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split()) or type(e).__name__
        if isinstance(e, OSError) and e.filename and str(e.filename) not in text:
            text = f"{text}: {e.filename}"
        print(f"ldm-keras {args.command}: error: {text} (--debug shows the traceback)",
              file=sys.stderr)
        return EXIT_FAILED if isinstance(e, TrainingFailedError) else EXIT_USAGE


def _join_processes(args):
    """Join a data-parallel run (``--processes``/``--process-id``/``--coordinator`` or the
    environment of :mod:`ldm_keras.distributed`) before any other work of the backend."""
    from . import distributed

    if args.processes is None and os.environ.get(distributed.ENVIRONMENT["num_processes"]) \
            is None and (args.process_id is not None or args.coordinator is not None):
        raise ValueError("--process-id and --coordinator belong to a data-parallel run: give "
                         "--processes too (the number of processes).")
    distributed.initialize(args.coordinator, args.processes, args.process_id)
    return distributed.process_index(), distributed.process_count()


def _run_job(args, jobs, recipes, verbose):
    if recipes.get(args.recipe).kind == "sequence":
        return jobs.train_sequence(
            recipe=args.recipe, dataset=args.dataset, epochs=args.epochs,
            batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
            out=args.out, verbose=verbose, sequences=args.sequences,
            test_sequences=args.test_sequences, window=args.window, stride=args.stride,
            latent_dim=args.latent_dim,
        )
    return jobs.train_multiview(
        recipe=args.recipe, dataset=args.dataset, epochs=args.epochs,
        batch_size=args.batch_size or 256, learning_rate=args.learning_rate,
        seed=args.seed, out=args.out, verbose=verbose, monitor=True,
    )


def _train(args):
    import warnings

    start = time.time()
    rank, count = _join_processes(args)
    from . import jobs, recipes

    verbose = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jobs.RunWarning)  # printed below, one line each
        result = _run_job(args, jobs, recipes, verbose)
    if rank != 0:
        epochs = f"{result['epochs']} epoch" + ("s" if result["epochs"] != 1 else "")
        print(f"ldm-keras train: process {rank} of {count} trained {epochs} "
              f"(weights fingerprint {result['weights_fingerprint']:.12g}); process 0 "
              "writes the results.")
        return 0
    rows = [("recipe", args.recipe), ("dataset", args.dataset),
            ("backend", result["backend"]), ("epochs", result["epochs"])]
    if count > 1:
        rows += [("processes", count),
                 ("weights fingerprint", f"{result['weights_fingerprint']:.12g}")]
    rows += [(k, v) for k, v in result["metrics"].items()]
    # the RepresentationMonitor's last measurement (multi-view runs)
    rows += [(f"final {k}", ("yes" if v else "no") if k == "collapsed" else v)
             for k, v in (result.get("monitor") or {}).items()]
    rows += [("train seconds", f"{result['train_seconds']:.1f}"),
             ("total seconds", f"{time.time() - start:.1f}"),
             ("encoder", result["encoder_path"])]
    print(format_table(rows, "ldm-keras train: results"))
    for message in result.get("warnings") or []:
        print(f"ldm-keras train: warning: {message}", file=sys.stderr)
    return 0


def _evaluate(args):
    from . import jobs

    if len(args.path) > 2:
        raise SystemExit(f"ldm-keras evaluate: give one run folder, or two for their "
                         f"consistency; received {len(args.path)}.")
    if len(args.path) == 2:
        return _consistency(args)
    path = args.path[0]
    metrics = jobs.evaluate_run(path)
    print(format_table(list(metrics.items()), f"ldm-keras evaluate: {path}"))
    if args.plot:
        print(f"embedding plot: {_plot_run(path)}")
    print(json.dumps(metrics))
    return 0


def _test_embeddings(path):
    """``(run, z, labels)``: the held-out embeddings of a run folder's saved encoder —
    the test images (labels: their classes) or the test windows' per-frame latents
    ``(B, T, L)`` (labels ``None``)."""
    import numpy as np

    from . import jobs
    from .data.datasets import load_image_dataset, load_sequence_dataset
    from .evaluation.encoders import FrameEncoder, encode_sequences

    run, encoder = jobs.load_run(path)
    if run.get("kind") == "sequence":
        _, (x, _), _ = load_sequence_dataset(
            run["dataset"], run.get("sequences"), run.get("test_sequences"), run.get("window"),
            run.get("stride"), seed=run.get("seed", 0), train_length=run.get("train_length"))
        return run, encode_sequences(FrameEncoder(encoder), x), None
    _, (x, y) = load_image_dataset(run["dataset"], seed=0)
    return run, np.asarray(encoder.predict(x, verbose=0), dtype="float64"), y


def _plot_run(path, embedded=None):
    """Write ``embedding.png`` (PCA of the held-out embeddings) into the run folder."""
    from . import plots

    run, z, labels = embedded or _test_embeddings(path)
    out = os.path.join(path, "embedding.png")
    title = f"{run['recipe']} on {run['dataset']}: held-out embeddings"
    if labels is None:
        plots.embedding_scatter(z, path=out, title=title)       # coloured by time step
    else:
        plots.embedding_scatter(z, labels=labels, path=out, title=title)
    return out


def _consistency(args):
    from .evaluation import consistency

    embedded = [_test_embeddings(p) for p in args.path]
    (run_a, z_a, _), (run_b, z_b, _) = embedded
    if run_a["dataset"] != run_b["dataset"]:
        raise ValueError(f"The two runs must be trained on the same dataset to compare their "
                         f"embeddings; received {run_a['dataset']!r} ({args.path[0]}) and "
                         f"{run_b['dataset']!r} ({args.path[1]}).")
    c = consistency(z_a, z_b)
    result = {"consistency_a_to_b": c.a_to_b, "consistency_b_to_a": c.b_to_a,
              "consistency": c.mean}
    rows = [("run a", args.path[0]), ("run b", args.path[1]), ("dataset", run_a["dataset"]),
            ("a -> b (R²)", c.a_to_b), ("b -> a (R²)", c.b_to_a), ("consistency", c.mean),
            ("samples (fit / scored)", f"{c.n_fit} / {c.n_test}")]
    print(format_table(rows, "ldm-keras evaluate: consistency of two runs"))
    if args.plot:
        for p, emb in zip(args.path, embedded):
            print(f"embedding plot: {_plot_run(p, emb)}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
