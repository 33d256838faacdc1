"""One process of a data-parallel run, for tests/test_multiprocess.py (not a test file).

``python multiprocess_worker.py MODE RANK WORLD PORT OUT`` trains every model of
:data:`MODELS` for 3 steps on one global batch and writes, as JSON to ``OUT``, each
model's losses and final weights (EMA targets and BatchNorm statistics included):

* ``single`` — one process, the whole global batch (the reference);
  — and each half's loss alone at the initial weights (what a per-device entropy
  would estimate);
* ``dp`` — rank RANK of WORLD processes on 127.0.0.1:PORT, each on its rows of the
  global batch (``ldm_keras.distributed.shard``); on PyTorch also a fit on unequal
  shares (refused on every rank);
  on PyTorch, two of the models again with the gather disabled (a per-device
  entropy, which must not match the reference);
  then rank 1 exits and rank 0 trains once more: that must fail with an error within
  a bounded time (written to ``OUT.die.json``), not hang.
"""

import json
import os
import sys
import time

MODE, RANK, WORLD, PORT, OUT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], \
    sys.argv[5]
BACKEND = os.environ["KERAS_BACKEND"]
TIMEOUT = 90  # generous: the suite may run beside other test processes

if MODE != "single":  # before any other work of the backend
    from ldm_keras import distributed

    coordinator = (",".join(f"127.0.0.1:{int(PORT) + i}" for i in range(WORLD))
                   if BACKEND == "tensorflow" else f"127.0.0.1:{PORT}")
    strategy = distributed.initialize(coordinator, WORLD, RANK, timeout=TIMEOUT)

import contextlib  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import ldm_keras as ldm  # noqa: E402
from ldm_keras import distributed  # noqa: E402
from ldm_keras.models.encoders import mlp  # noqa: E402
from ldm_keras.predictors import KalmanCell, KalmanFilter, RecurrentPredictor  # noqa: E402

if MODE != "single" and BACKEND == "jax":
    layout = keras.distribution.DataParallel()
    layout.auto_shard_dataset = False  # each process feeds its own shard (arrays)
    keras.distribution.set_distribution(layout)
def SCOPE():  # noqa: N802
    return strategy.scope() if MODE != "single" and BACKEND == "tensorflow" else \
        contextlib.nullcontext()
G, T, D = 16, 6, 5  # global batch, sequence length, features
rng = np.random.default_rng(0)
PAIRS = rng.normal(size=(G, D)).astype("float32")
PAIRS = (PAIRS, (PAIRS + 0.3 * rng.normal(size=(G, D))).astype("float32"))
SEQ = np.cumsum(rng.normal(size=(G, T, D)), axis=1).astype("float32") * 0.3
IMAGES = rng.uniform(size=(G, 4, 4, 1)).astype("float32")


def _multiview(ema=None, batch_norm=False, categorical=False):
    enc = mlp(D, [8], 4 if not categorical else 3, batch_norm=batch_norm,
              output_activation="softmax" if categorical else None)
    if categorical:
        prior = ldm.priors.CategoricalPair(3, agreement=0.8)
        entropy = ldm.entropy.CategoricalEntropy()
    else:
        prior, entropy = ldm.priors.IsotropicGaussian(2.0), ldm.entropy.GaussianKDE(2.0)
    return ldm.models.MultiViewLDM(enc, prior=prior, entropy=entropy, mode="joint",
                                   ema_momentum=ema), PAIRS, ((G, D), (G, D))


def _views():
    """Two random views per image, drawn inside the step (noise on every pixel)."""
    enc = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                            keras.layers.Dense(4)])
    views = ldm.augment.RandomGaussianNoise(stddev=0.3, clip=None, p=1.0, seed=0)
    return ldm.models.MultiViewLDM(enc, prior=ldm.priors.IsotropicGaussian(2.0),
                                   entropy=ldm.entropy.GaussianKDE(2.0), mode="joint",
                                   views=views), IMAGES, (G, 4, 4, 1)


def _kalman(entropy=None):
    kf = KalmanFilter(KalmanCell(state_dim=2, observation_dim=2, seed=0,
                                 stop_gradient_targets=entropy is None))
    return ldm.models.PredictiveLDM(mlp(D, [8], 2, batch_norm=False), kf,
                                    entropy=entropy), SEQ, (G, T, D)


def _recurrent():
    return ldm.models.PredictiveLDM(
        mlp(D, [8], 2, batch_norm=False), RecurrentPredictor(4, stop_gradient_targets=False),
        entropy=ldm.entropy.KNNEntropy(k=3)), SEQ, (G, T, D)


def _cpc():
    return ldm.models.CPCLDM(mlp(D, [8], 3, batch_norm=False), context_units=4,
                             prediction_steps=2), SEQ, (G, T, D)


def _jepa():
    return ldm.models.JEPALDM(mlp(D, [8], 3, batch_norm=False),
                              predictor=RecurrentPredictor(4, variance="constant"),
                              ema_momentum=0.5), SEQ, (G, T, D)


def _ica():
    model = ldm.models.LinearICA(prior="logistic").adapt(PAIRS[0])  # whitening: all data
    return model, PAIRS[0], (G, D)


MODELS = {"multiview_ema": lambda: _multiview(ema=0.5),
          "multiview_categorical": lambda: _multiview(categorical=True), "kalman": _kalman,
          "kalman_pooled_entropy": lambda: _kalman(ldm.entropy.GaussianLogDet()),
          "recurrent": _recurrent, "cpc": _cpc, "jepa": _jepa, "ica": _ica,
          "multiview_batchnorm": lambda: _multiview(batch_norm=True),
          "multiview_views": _views}


def _local(x):
    # TensorFlow: every worker passes all the data and the global batch size; the
    # strategy shards it (elements i, i + R, ...)
    if MODE == "single" or BACKEND == "tensorflow":
        return x
    return tuple(distributed.shard(a) for a in x) if isinstance(x, tuple) else \
        distributed.shard(x)


def _flat(weights):
    return [np.asarray(w, dtype="float64").ravel().tolist() for w in weights]


out = {}
ONLY = os.environ.get("LDM_TEST_ONLY")
for name, make in MODELS.items():
    if ONLY and name != ONLY:
        continue
    keras.utils.set_random_seed(0)
    with SCOPE():
        model, x, shape = make()
        lr = 0.002 if name.startswith("kalman") else 0.01  # stable for 3 steps
        model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.5))
        model.build(shape if not isinstance(shape, tuple) or not isinstance(shape[0], tuple)
                    else shape)
    local = _local(x)
    rows = len(local[0] if isinstance(local, tuple) else local)
    shards = []
    if MODE == "single":  # each half's loss at the initial weights (a per-device entropy)
        saved = [keras.ops.convert_to_numpy(v) for v in model.variables]  # seed states too
        half = rows // 2
        for i in range(2):
            part = tuple(a[i * half:(i + 1) * half] for a in x) if isinstance(x, tuple) \
                else x[i * half:(i + 1) * half]
            shards.append(float(keras.ops.convert_to_numpy(model.compute_ldm_loss(
                part)["loss"])))
        for v, value in zip(model.variables, saved):
            v.assign(value)
    hist = model.fit(local, batch_size=rows, epochs=3, shuffle=False, verbose=0)
    out[name] = {"loss": hist.history["loss"], "weights": _flat(model.get_weights()),
                 "shards": shards}
if MODE == "dp" and BACKEND == "torch":  # the same runs with a per-device entropy
    from ldm_keras import backend

    gather, backend.all_gather = backend.all_gather, lambda t: t
    for name in ("multiview_ema", "kalman_pooled_entropy"):
        keras.utils.set_random_seed(0)
        model, x, shape = MODELS[name]()
        model.compile(optimizer=keras.optimizers.SGD(0.002 if name.startswith("kalman")
                                                     else 0.01, momentum=0.5))
        model.build(shape)
        local = _local(x)
        rows = len(local[0] if isinstance(local, tuple) else local)
        hist = model.fit(local, batch_size=rows, epochs=3, shuffle=False, verbose=0)
        out[name + "_local"] = {"loss": hist.history["loss"],
                                "weights": _flat(model.get_weights())}
    backend.all_gather = gather
if MODE == "dp" and BACKEND == "torch":  # unequal shares: refused on every rank
    model, x, shape = MODELS["ica"]()
    model.compile(optimizer="sgd")
    try:
        model.fit(_local(x)[: 8 if RANK == 0 else 4], batch_size=4, epochs=1, verbose=0)
        out["unequal_shares"] = ""
    except ValueError as err:
        out["unequal_shares"] = str(err)
with open(OUT, "w") as f:
    json.dump(out, f)
if MODE == "dp":  # a peer dies: the survivor must fail, not hang
    if RANK == 1:
        os._exit(3)
    start, error = time.time(), ""
    try:  # (on TensorFlow creating the variables is already a collective)
        keras.utils.set_random_seed(0)
        with SCOPE():
            model, x, shape = MODELS["multiview_ema"]()
            model.compile(optimizer=keras.optimizers.SGD(0.01))
            model.build(shape)
        local = _local(x)
        model.fit(local, batch_size=len(local[0]), epochs=3, verbose=0)
    except Exception as err:
        error = f"{type(err).__name__}: {err}"[:1000]
    with open(OUT + ".die.json", "w") as f:
        json.dump({"error": error, "seconds": time.time() - start}, f)
