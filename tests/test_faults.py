"""Fault tolerance: BackupAndRestore after an interruption reproduces the uninterrupted run.

A run is interrupted by an exception raised from a callback in the middle of an epoch;
a *fresh* model (other random initial weights, as after a process restart) then calls
``fit`` again with the same backup directory. Keras restores the weights and optimizer
state saved at the end of the last completed epoch and restarts the interrupted epoch
from its first batch, so with a fixed batch order the final state must equal the
uninterrupted run's: online weights, EMA targets (byol) and every GroupedOptimizer clone's
state (moments and iteration counts).
"""

import keras
import numpy as np
import pytest

import ldm_keras as ldm
from ldm_keras.models.encoders import mlp

DIM, N, BATCH, EPOCHS = 6, 24, 8, 3


class Fault(RuntimeError):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raise :class:`Fault` at the end of batch ``batch`` (0-based) of epoch ``epoch``."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise Fault(f"simulated fault at epoch {self.epoch}, batch {batch}")


def _data():
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(N, DIM)).astype("float32")
    return x1, (x1 + 0.1 * rng.normal(size=x1.shape)).astype("float32")


def _model(recipe, seed):
    keras.utils.set_random_seed(seed)
    extra = {"predictor": (8,)} if recipe == "byol" else {}
    model = ldm.recipes.build(recipe, mlp(DIM, [8], 4), projector=(8, 4), **extra)
    model.build(((None, DIM), (None, DIM)))
    # two optimizer groups: the projector learns 3x faster (a GroupedOptimizer, 2 clones)
    model.variable_groups = lambda: {"head": list(model.projector.trainable_variables)}
    model.compile(keras.optimizers.Adam(1e-2), lr_multipliers={"head": 3.0})
    return model


def _state(model):
    opt = model.optimizer
    clones = [v for o in opt._optimizers for v in o.variables]
    return ([keras.ops.convert_to_numpy(v) for v in model.weights],
            [keras.ops.convert_to_numpy(v) for v in clones])


def _fit(model, callbacks=()):
    return model.fit(_data(), batch_size=BATCH, epochs=EPOCHS, verbose=0, shuffle=False,
                     callbacks=list(callbacks))


@pytest.mark.parametrize("recipe", ["plane-kde", "byol"])
def test_backup_and_restore_resumes_exactly(recipe, tmp_path):
    reference = _model(recipe, seed=1)
    _fit(reference)

    interrupted = _model(recipe, seed=1)
    with pytest.raises(Fault):
        _fit(interrupted, [keras.callbacks.BackupAndRestore(str(tmp_path)),
                           InterruptAt(epoch=1, batch=1)])

    resumed = _model(recipe, seed=2)  # a fresh process: other initial weights
    history = _fit(resumed, [keras.callbacks.BackupAndRestore(str(tmp_path))])
    assert len(history.history["loss"]) == EPOCHS - 1  # epochs 2 and 3 only

    weights, opt_state = _state(resumed)
    ref_weights, ref_opt_state = _state(reference)
    assert len(opt_state) == len(ref_opt_state) > 4
    for w, r in zip(weights, ref_weights):
        np.testing.assert_array_equal(w, r)
    for o, r in zip(opt_state, ref_opt_state):
        np.testing.assert_array_equal(o, r)
    iters = [int(keras.ops.convert_to_numpy(o.iterations)) for o in resumed.optimizer._optimizers]
    assert iters == [EPOCHS * N // BATCH] * 2
    if recipe == "byol":  # the EMA target differs from the online network, and was restored
        t = keras.ops.convert_to_numpy(resumed.target_encoder.weights[0])
        o = keras.ops.convert_to_numpy(resumed.encoder.weights[0])
        assert not np.allclose(t, o)
