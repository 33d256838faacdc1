"""One process of a 2-process run, for tests/test_multiprocess_resume.py (not a test file).

``python multiprocess_resume_worker.py RANK WORLD PORT BACKUP OUT`` runs three phases in
this one process (process start-up is the expensive part of the test), each with a
freshly built model (multi-view LDM on 6x6 images with random views — flips and
noise: seed-generator states —, EMA targets and BatchNorm statistics, SGD with
momentum), data-parallel over the WORLD processes on 127.0.0.1:PORT:

* ``reference`` — ``EPOCHS`` epochs, uninterrupted, no callback;
* ``interrupted`` — the same run with ``ldm_keras.callbacks.BackupAndRestore(BACKUP)``,
  stopped by an exception on every rank at the end of epoch ``STOP``;
* ``resumed`` — a model built from *another* seed (other weights, as a restarted process
  would have) fits again with the callback: it must restore the backup and finish.

Every file operation of this process that would write under BACKUP (Python-level
``open`` for writing, renames, removals, directory creation; HDF5 files opened for
writing) is recorded, so the test can check that only rank 0 wrote. Writes JSON to
``OUT``: each phase's losses and final state (every variable of the model and its optimizer), the writes, the backup folder's files
after the interruption.
"""

import json
import os
import sys

RANK, WORLD, PORT, BACKUP, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], \
    sys.argv[4], sys.argv[5]
BACKEND = os.environ["KERAS_BACKEND"]
TIMEOUT = 60

from ldm_keras import distributed  # noqa: E402  (before any other work of the backend)

strategy = distributed.initialize(
    ",".join(f"127.0.0.1:{int(PORT) + i}" for i in range(WORLD))
    if BACKEND == "tensorflow" else f"127.0.0.1:{PORT}", WORLD, RANK, timeout=TIMEOUT)

import contextlib  # noqa: E402

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import ldm_keras as ldm  # noqa: E402

if BACKEND == "jax":
    layout = keras.distribution.DataParallel()
    layout.auto_shard_dataset = False  # each process feeds its own shard (arrays)
    keras.distribution.set_distribution(layout)

G, BATCH, EPOCHS, STOP = 16, 8, 3, 1  # rows, global batch; stop after epoch 1
IMAGES = np.random.default_rng(0).uniform(size=(G, 6, 6, 1)).astype("float32")

# -- the write recorder ------------------------------------------------------------------
WRITES = []
_root = os.path.realpath(BACKUP)


def _under(path):
    try:
        return os.path.realpath(os.fsdecode(path)).startswith(_root)
    except (TypeError, ValueError):
        return False


def _audit(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2] if len(args) > 2 else 0
        writes = (any(c in str(mode) for c in "wax+") if mode is not None else
                  bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
        if writes and _under(args[0]):
            WRITES.append(f"open {os.path.basename(os.fsdecode(args[0]))}")
    elif event in ("os.rename", "os.remove", "os.mkdir", "shutil.rmtree", "shutil.copyfile"):
        target = args[1] if event in ("os.rename", "shutil.copyfile") else args[0]
        if isinstance(target, (str, bytes, os.PathLike)) and _under(target):
            WRITES.append(f"{event} {os.path.basename(os.fsdecode(target))}")


sys.addaudithook(_audit)
_h5_init = h5py.File.__init__


def _h5_file(self, name, mode="r", *args, **kwargs):
    if mode != "r" and isinstance(name, (str, bytes, os.PathLike)) and _under(name):
        WRITES.append(f"h5py {os.path.basename(os.fsdecode(name))}")
    _h5_init(self, name, mode, *args, **kwargs)


h5py.File.__init__ = _h5_file


# -- the runs ----------------------------------------------------------------------------
class Stop(RuntimeError):
    pass


class StopAfter(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == STOP:
            raise Stop(f"simulated fault at the end of epoch {epoch}")


def _model(seed):
    keras.utils.set_random_seed(seed)
    with strategy.scope() if BACKEND == "tensorflow" else contextlib.nullcontext():
        enc = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(8), keras.layers.BatchNormalization(),
                                keras.layers.ReLU(), keras.layers.Dense(4)])
        views = ldm.augment.ViewPipeline([ldm.augment.RandomFlip(seed=0),
                                          ldm.augment.RandomGaussianNoise(0.2, p=0.5, seed=1)])
        model = ldm.models.MultiViewLDM(enc, prior=ldm.priors.IsotropicGaussian(2.0),
                                        entropy=ldm.entropy.GaussianKDE(2.0), views=views,
                                        mode="joint", ema_momentum=0.5)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.5))
        model.build((G, 6, 6, 1))
    return model


def _fit(model, callbacks=()):
    # TensorFlow: every worker passes all the data and the global batch size
    x = IMAGES if BACKEND == "tensorflow" else distributed.shard(IMAGES)
    batch = BATCH if BACKEND == "tensorflow" else BATCH // WORLD
    return model.fit(x, batch_size=batch, epochs=EPOCHS, shuffle=False, verbose=0,
                     callbacks=list(callbacks))


def _flat(model):
    """Every variable: weights, EMA targets, BatchNorm statistics, seed states, and the
    optimizer's (iterations, momenta)."""
    return [np.asarray(keras.ops.convert_to_numpy(v), dtype="float64").ravel().tolist()
            for v in model.variables + model.optimizer.variables]


out = {}
model = _model(0)
out["reference"] = {"loss": _fit(model).history["loss"], "weights": _flat(model)}
backup = ldm.callbacks.BackupAndRestore(BACKUP)
model = _model(0)
try:
    _fit(model, [backup, StopAfter()])
    out["interrupted"] = "not stopped"
except Stop as err:
    out["interrupted"] = str(err)
out["writes_until_stop"] = list(WRITES)
out["files_after_stop"] = sorted(os.listdir(BACKUP)) if os.path.isdir(BACKUP) else []
model = _model(1)  # a restarted process: other initial weights
out["initial_weights"] = _flat(model)
history = _fit(model, [ldm.callbacks.BackupAndRestore(BACKUP)])
out["resumed"] = {"loss": history.history["loss"], "weights": _flat(model)}
out["writes"] = WRITES
out["backup_left"] = os.path.exists(BACKUP)
with open(OUT, "w") as f:
    json.dump(out, f)
