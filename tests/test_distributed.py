"""Data-parallel training: the entropy must be estimated over the *global* batch.

Each case runs in a subprocess, because the virtual devices must be configured before
the backend initialises (JAX: ``XLA_FLAGS=--xla_force_host_platform_device_count=4``;
TensorFlow: ``tf.config.set_logical_device_configuration`` with 4 logical CPUs).

Reference: the same model trained one step (SGD, no augmentation) on the same global
batch of 32 on a single device. The test also checks that the distributed loss differs
from the mean of per-shard (8-sample) losses, so that a per-replica entropy cannot pass.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import BACKEND

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_COMMON = """
import json, sys
import numpy as np
import keras
import ldm_keras as ldm
from ldm_keras.models.multiview import MultiViewLDM

def make_model():
    keras.utils.set_random_seed(0)
    enc = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="d")])
    m = MultiViewLDM(enc, prior=ldm.priors.IsotropicGaussian(2.0),
                     entropy=ldm.entropy.GaussianKDE(2.0), mode="joint")
    m.compile(keras.optimizers.SGD(0.1))
    return m

rng = np.random.default_rng(0)
x1 = rng.normal(size=(32, 6)).astype("float32")
x2 = (x1 + 0.3 * rng.normal(size=(32, 6))).astype("float32")

def run():
    m = make_model()
    m.build(((32, 6), (32, 6)))  # under tf.distribute: build before fit (see the docs)
    # fit, not train_on_batch: under tf.distribute, train_on_batch gives every replica
    # the whole batch instead of splitting it
    hist = m.fit((x1, x2), batch_size=32, epochs=1, shuffle=False, verbose=0)
    return hist.history["loss"][0], [np.asarray(w).tolist() for w in m.get_weights()]

def shard_losses():  # per-replica (8-sample) losses at the initial weights, eagerly
    m = make_model()
    m.build(((32, 6), (32, 6)))
    return [float(m.compute_ldm_loss((x1[i:i + 8], x2[i:i + 8]))["loss"])
            for i in range(0, 32, 8)]
"""

_JAX = _COMMON + """
import jax
out = {"single": run(), "shards": shard_losses()}
devices = keras.distribution.list_devices("cpu")
out["devices"] = len(devices)
seen = []

class Probe(keras.layers.Layer):  # records the sharding of the batch inside the jit
    def call(self, x):
        jax.debug.inspect_array_sharding(x, callback=lambda s: seen.append(
            [len(s.device_set), bool(s.is_fully_replicated)]))
        return x

keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
make_plain = make_model
def make_model():
    m = make_plain()
    m.encoder = keras.Sequential([keras.Input((6,)), Probe(), m.encoder])
    m.compile(keras.optimizers.SGD(0.1))
    return m
out["dp"] = run()
out["input_devices"] = seen
print("RESULT" + json.dumps(out))
"""


def _run_worker(code, env_extra, args=()):
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def _check_equal_to_single_device(out):
    single_loss, single_w = out["single"]
    dp_loss, dp_w = out["dp"]
    # a per-replica entropy would give the mean of the shard losses instead
    assert abs(np.mean(out["shards"]) - single_loss) > 1e-2
    np.testing.assert_allclose(dp_loss, single_loss, atol=1e-5)
    assert len(dp_w) == len(single_w)
    for a, b in zip(dp_w, single_w):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution.DataParallel is JAX-only")
def test_jax_data_parallel_matches_single_device():
    out = _run_worker(_JAX, {"KERAS_BACKEND": "jax",
                             "XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert out["devices"] == 4
    # the batch inside the jitted step is split over the 4 devices, not replicated
    assert out["input_devices"] and all(n == 4 and not rep
                                        for n, rep in out["input_devices"])
    _check_equal_to_single_device(out)


_TF = """
import tensorflow as tf
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    cpus[0], [tf.config.LogicalDeviceConfiguration()] * 4)
""" + _COMMON + """
from ldm_keras.models.base import LDMModel
make_plain = make_model
strategy = tf.distribute.MirroredStrategy(
    [d.name for d in tf.config.list_logical_devices("CPU")])
out = {"devices": strategy.num_replicas_in_sync, "shards": shard_losses()}
for ema in (None, 0.5):  # plain, and BYOL-style EMA targets updated in the step
    def make_model():
        m = make_plain()
        if ema is not None:
            m = MultiViewLDM(m.encoder, m.objective, ema_momentum=ema)
            m.compile(keras.optimizers.SGD(0.1))
        return m
    single = run()
    with strategy.scope():
        out[f"ema={ema}"] = {"single": single, "dp": run(), "shards": out["shards"]}

class LocalOnly(LDMModel):  # an LDM model whose loss does not gather
    def __init__(self, **kw):
        super().__init__(**kw)
        self.dense = keras.layers.Dense(3)
        self.entropy = ldm.entropy.GaussianLogDet()
    def call(self, x):
        return self.dense(x)
    def compute_ldm_loss(self, x, training=False):
        h = self.entropy(self.dense(x))
        return {"loss": -h, "entropy": h}

with strategy.scope():
    m = LocalOnly()
    m.compile(keras.optimizers.SGD(0.1))
    m.build((None, 6))
    try:
        m.fit(x1, batch_size=32, epochs=1, verbose=0)
        out["refused"] = ""
    except NotImplementedError as err:
        out["refused"] = str(err)
print("RESULT" + json.dumps(out))
"""


@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="tf.distribute.MirroredStrategy is TensorFlow-only")
def test_tf_mirrored_strategy_matches_single_device():
    out = _run_worker(_TF, {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out["devices"] == 4
    _check_equal_to_single_device(out["ema=None"])
    _check_equal_to_single_device(out["ema=0.5"])
    # a model whose loss does not gather is refused rather than trained per replica
    assert "per replica" in out["refused"] and "LocalOnly" in out["refused"]
