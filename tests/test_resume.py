"""Exact resume with random views, and models reloaded from ``.keras`` that train on.

``BackupAndRestore`` saves ``model.save_weights``; an LDM model's saved weights also carry
the states of its random seed generators (the view augmentations', here), so a run
interrupted in epoch 2 and resumed by a fresh model with other initial weights *and other
augmentation seeds* ends bitwise equal to the uninterrupted run. Without the seed states
the resumed run draws other views (the test fails: up to 8.5e-3 apart on JAX / PyTorch).
"""

import keras
import numpy as np
import pytest

import ldm_keras as ldm
from ldm_keras.models.base import SEED_STATE_KEY

N, BATCH, EPOCHS = 24, 8, 3


class Fault(RuntimeError):
    pass


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise Fault(f"simulated fault at epoch {self.epoch}, batch {batch}")


def _images():
    return np.random.default_rng(0).uniform(size=(N, 6, 6, 1)).astype("float32")


def _model(seed, views_seed):
    """simclr on 6x6 images with the digits views (crop + affine) and a noise op.

    ``views_seed=None``: the ops' seeds are drawn from the global seed, so a model built
    after another ``set_random_seed`` starts from other seed states.
    """
    keras.utils.set_random_seed(seed)
    views = ldm.augment.image_views("digits", seed=views_seed, noise={"p": 0.5})
    encoder = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(8, activation="relu"),
                                keras.layers.Dense(4)])
    model = ldm.recipes.build("simclr", encoder, projector=(8, 4), views=views)
    model.build((None, 6, 6, 1))
    model.compile(keras.optimizers.Adam(1e-2))
    return model


def _state(model):
    return [keras.ops.convert_to_numpy(v) for v in model.variables + model.optimizer.variables]


def _fit(model, callbacks=()):
    return model.fit(_images(), batch_size=BATCH, epochs=EPOCHS, verbose=0, shuffle=False,
                     callbacks=list(callbacks))


@pytest.mark.parametrize("views_seed", [0, None])
def test_resume_with_views_is_bitwise(views_seed, tmp_path):
    reference = _model(1, views_seed)
    _fit(reference)

    interrupted = _model(1, views_seed)
    with pytest.raises(Fault):
        _fit(interrupted, [keras.callbacks.BackupAndRestore(str(tmp_path)),
                           InterruptAt(epoch=1, batch=1)])

    resumed = _model(2, views_seed)  # a fresh process: other weights (and, with None, seeds)
    if views_seed is None:  # the seed states differ before the restore
        assert any(not np.array_equal(a, b) for a, b in zip(
            [keras.ops.convert_to_numpy(v) for v in resumed._seed_states()],
            [keras.ops.convert_to_numpy(v) for v in interrupted._seed_states()]))
    history = _fit(resumed, [keras.callbacks.BackupAndRestore(str(tmp_path))])
    assert len(history.history["loss"]) == EPOCHS - 1

    got, want = _state(resumed), _state(reference)
    assert len(got) == len(want) and len(resumed._seed_states()) >= 3
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_seed_states_are_saved_with_the_weights(tmp_path):
    model = _model(1, 0)
    model.fit(_images(), batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    import h5py

    with h5py.File(path) as f:
        keys = []
        f.visit(keys.append)
    assert sum(SEED_STATE_KEY in k for k in keys) == len(model._seed_states())
    other = _model(5, 7)  # other seeds: its views differ until the weights are loaded
    before = [keras.ops.convert_to_numpy(v) for v in other._seed_states()]
    other.load_weights(path)
    after = [keras.ops.convert_to_numpy(v) for v in other._seed_states()]
    want = [keras.ops.convert_to_numpy(v) for v in model._seed_states()]
    assert any(not np.array_equal(a, b) for a, b in zip(before, want))
    for a, b in zip(after, want):
        np.testing.assert_array_equal(a, b)


def test_weights_of_a_model_with_other_augmentations_are_refused(tmp_path):
    model = _model(1, 0)
    model.save_weights(tmp_path / "m.weights.h5")
    keras.utils.set_random_seed(1)
    fewer = ldm.recipes.build("simclr", model.encoder, projector=(8, 4),
                              views=ldm.augment.image_views("digits", seed=0))
    fewer.build((None, 6, 6, 1))
    with pytest.raises(ValueError, match=r"holds 3 random seed states, this model has 2"):
        fewer.load_weights(tmp_path / "m.weights.h5")


def test_a_reloaded_keras_model_trains_on(tmp_path):
    """compile_from_config: the saved optimizer (and its state) come back; fit trains."""
    model = _model(1, 0)
    model.compile(keras.optimizers.Adam(1e-2), lr_multipliers={"default": 1.0})
    model.fit(_images(), batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.compiled and isinstance(loaded.optimizer, ldm.models.GroupedOptimizer)
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == N // BATCH
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    # the two go on identically: same weights, optimizer state and seed states
    for m in (model, loaded):
        m.fit(_images(), batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(_state(loaded), _state(model)):
        np.testing.assert_array_equal(a, b)


def test_an_uncompiled_model_says_it_must_be_compiled(tmp_path):
    model = _model(1, 0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    with pytest.raises(ValueError, match=r"must be compiled before fit: call "
                                         r"`model.compile\(optimizer=...\)`"):
        loaded.fit(_images(), batch_size=BATCH, verbose=0)
