"""What ``LDMModel.fit`` checks before any step, and what it says after (issue 21, item 2);
also ``compile``'s check of ``lr_multipliers`` and the refusal of squeezed axes.

Each case is checked before a training step runs (the weights are compared with their
values before ``fit``), on every backend.
"""

import warnings

import keras
import numpy as np
import pytest

import ldm_keras as ldm
from ldm_keras.models.fitdata import PartialBatchWarning, SkippedStepsWarning
from ldm_keras.models.optimizers import GroupedOptimizer


def _pairs(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype("float32")
    return x, x + 0.1 * rng.normal(size=(n, 5)).astype("float32")


def _model(recipe="vicreg", seed=1, views=None, shape=(5,), optimizer=None):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape)] + ([keras.layers.Flatten()] if len(shape) > 1 else [])
    encoder = keras.Sequential(layers + [keras.layers.Dense(4)])
    model = ldm.recipes.build(recipe, encoder, projector=(8, 4), views=views)
    model.build((None,) + shape)
    model.compile(optimizer or keras.optimizers.Adam(1e-2))
    return model


def _weights(model):
    return [keras.ops.convert_to_numpy(w).copy() for w in model.weights]


def _unchanged(model, before):
    return all(np.array_equal(a, b) for a, b in zip(_weights(model), before))


def test_targets_are_refused_before_training():
    model = _model()
    x1, x2 = _pairs(16)
    before = _weights(model)
    with pytest.raises(ValueError, match=r"self-supervised: `fit` takes no targets, but "
                                         r"received `y` of shape \(16, 5\).*fit\(\(x1, x2\)\)"):
        model.fit(x1, x2, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"`validation_data` must hold no targets"):
        model.fit((x1, x2), batch_size=8, verbose=0,
                  validation_data=((x1, x2), np.zeros(16)))
    assert _unchanged(model, before)


def test_integer_images_with_views_are_refused_with_the_scaling():
    views = ldm.augment.image_views("digits", seed=0)
    model = _model("simclr", views=views, shape=(6, 6, 1))
    before = _weights(model)
    images = np.random.default_rng(0).integers(0, 256, size=(16, 6, 6, 1)).astype("uint8")
    with pytest.raises(ValueError, match=r"`x` holds integers \(dtype uint8, shape "
                                         r"\(16, 6, 6, 1\), values \d+–\d+\).*divide by 255"):
        model.fit(images, batch_size=8, verbose=0)
    assert _unchanged(model, before)
    model.fit(images.astype("float32") / 255, batch_size=8, verbose=0)  # as the message says
    assert not _unchanged(model, before)


def test_integer_frames_without_views_are_refused():
    model = _model(shape=(3, 5))
    frames = np.random.default_rng(0).integers(0, 256, size=(16, 3, 5)).astype("uint8")
    with pytest.raises(ValueError, match=r"`x\[0\]` holds integers .*images or frames"):
        model.fit((frames, frames), batch_size=8, verbose=0)


def test_strings_are_named():
    model = _model()
    x1, _ = _pairs(16)
    with pytest.raises(ValueError, match=r"`x\[1\]` must hold real numbers.*received dtype"):
        model.fit((x1, x1.astype(str)), batch_size=8, verbose=0)


def test_fewer_samples_than_the_estimator_needs():
    model = _model("plane-knn")
    need = model.min_batch_size
    assert need > 2
    x1, x2 = _pairs(need - 1)
    with pytest.raises(ValueError, match=rf"needs batches of at least {need} samples.*"
                                         rf"`x` holds {need - 1} samples"):
        model.fit((x1, x2), batch_size=32, verbose=0)
    with pytest.raises(ValueError, match=r"`batch_size` must be an integer >= 1"):
        model.fit(_pairs(16), batch_size=0, verbose=0)


def test_a_last_batch_too_small_is_left_out_identically():
    # 17 samples, batch 8: the last batch would hold one sample, fewer than vicreg's 2
    # (it crashed JAX and PyTorch at the end of epoch 1, and was skipped on TensorFlow).
    x1, x2 = _pairs(17)
    model = _model()
    with pytest.warns(PartialBatchWarning, match=r"last batch of `x` would hold 1 sample "
                                                 r"\(17 samples, batch_size=8\)"):
        history = model.fit((x1, x2), batch_size=8, epochs=2, verbose=0, shuffle=False)
    assert history.params["steps"] == 2
    reference = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialBatchWarning)
        reference.fit((x1[:16], x2[:16]), batch_size=8, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(_weights(model), _weights(reference)):
        np.testing.assert_array_equal(a, b)
    # a last batch of 2 is trained on, as Keras does
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialBatchWarning)
        x1, x2 = _pairs(18)
        assert _model().fit((x1, x2), batch_size=8, verbose=0).params["steps"] == 3


def test_all_steps_skipped_warns():
    model = _model()
    x1, x2 = _pairs(16)
    x1[:] = np.nan
    before = _weights(model)
    with pytest.warns(SkippedStepsWarning, match=r"2 of the 2 training steps .* were "
                                                 r"skipped as non-finite.*never updated"):
        model.fit((x1, x2), batch_size=8, verbose=0)
    assert _unchanged(model, before)


def test_tf_data_element_specs_are_checked_without_reading_the_data():
    """A tf.data.Dataset's element_spec is checked (nothing is iterated): integer images
    are refused as arrays are, with a .map that scales them; strings are named."""
    tf = pytest.importorskip("tensorflow")
    model = _model(shape=(6, 6, 1))
    before = _weights(model)
    images = np.random.default_rng(0).integers(0, 256, size=(16, 6, 6, 1)).astype("uint8")
    read = []

    def batches():  # records every batch the pipeline reads
        for lo in range(0, 16, 8):
            read.append(lo)
            yield (images[lo: lo + 8].astype("float32"), images[lo: lo + 8]),

    spec = tf.TensorSpec((8, 6, 6, 1), tf.uint8)  # the second view holds integers
    ds = tf.data.Dataset.from_generator(batches, output_signature=(
        (tf.TensorSpec((8, 6, 6, 1), tf.float32), spec),))  # batches of 8
    with pytest.raises(ValueError, match=r"`x\.element_spec\[0\]\[1\]` holds integers "
                                         r"\(dtype uint8, shape \(8, 6, 6, 1\)\).*"
                                         r"tf\.cast\(v, 'float32'\) / 255"):
        model.fit(ds, verbose=0)
    assert read == [] and _unchanged(model, before)
    strings = tf.data.Dataset.from_tensor_slices({"a": np.array([["s"] * 5] * 8)}).batch(4)
    with pytest.raises(ValueError, match=r"`x\.element_spec\['a'\]` must hold real numbers"
                                         r".*received dtype string"):
        _model().fit(strings, verbose=0)
    flat = tf.data.Dataset.from_tensor_slices((images / 255, images / 255)).batch(8)
    with pytest.raises(ValueError, match=r"self-supervised: `fit` takes no targets, but the "
                                         r"dataset's elements are 2-tuples.*\(\(a, b\),\)"):
        model.fit(flat, verbose=0)  # (x1, x2): Keras would take x2 as y and drop it
    ok = ds.map(lambda v: ((tf.cast(v[0], "float32") / 255, tf.cast(v[1], "float32") / 255),))
    model.fit(ok, verbose=0)  # scaled as the message says: trains
    assert read == [0, 8] and not _unchanged(model, before)


def test_torch_tensor_loaders_are_checked_as_arrays():
    torch = pytest.importorskip("torch")
    model = _model(shape=(6, 6, 1))
    images = np.random.default_rng(0).integers(0, 256, size=(16, 6, 6, 1)).astype("uint8")
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(images)), batch_size=8)
    with pytest.raises(ValueError, match=r"`x\.dataset\.tensors\[0\]` holds integers "
                                         r"\(dtype uint8, shape \(16, 6, 6, 1\).*divide by 255"):
        model.fit(loader, verbose=0)
    labelled = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
        torch.zeros(16, 5), torch.zeros(16, dtype=torch.int64)), batch_size=8)
    with pytest.raises(ValueError, match=r"takes no targets, but the DataLoader's batches are "
                                         r"2-tuples, which Keras reads as \(x, y\)"):
        _model().fit(labelled, verbose=0)
    tiny = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(1, 5)),
                                       batch_size=8)
    with pytest.raises(ValueError, match=r"needs batches of at least 2 samples .*"
                                         r"`x\.dataset` holds 1 sample"):
        _model().fit(tiny, verbose=0)


# -- generators, PyDatasets, tf.data and DataLoaders: checked without consuming them --------

_REFERENCE = {}


def _sgd_model():
    return _model(optimizer=keras.optimizers.SGD(0.1))


def _assert_trained_on_16_samples(model):
    """The weights equal those of a model trained on the first 16 samples as arrays, in
    batches of 8, two epochs, unshuffled (SGD; to round-off, in which the data paths of
    arrays, generators and datasets differ on TensorFlow): the last partial batch was left
    out every epoch, and nothing else (a generator's first batch was replayed, not lost)."""
    if "w" not in _REFERENCE:
        x1, x2 = _pairs(17)
        reference = _sgd_model()
        reference.fit((x1[:16], x2[:16]), batch_size=8, epochs=2, verbose=0, shuffle=False)
        _REFERENCE["w"] = _weights(reference)
    for a, b in zip(_weights(model), _REFERENCE["w"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _batches(x1, x2, size=8):
    return [((x1[i: i + size], x2[i: i + size]),) for i in range(0, len(x1), size)]


def test_generators_are_checked_on_their_first_batch_then_replayed():
    x1, x2 = _pairs(17)
    model = _sgd_model()
    before = _weights(model)
    labelled = ((a, b) for ((a, b),) in _batches(x1, x2))  # fit(x1, x2) as a generator
    with pytest.raises(ValueError, match=r"takes no targets, but the generator's batches are "
                                         r"2-tuples, which Keras reads as \(x, y\).*"
                                         r"`yield \(\(x1, x2\),\)`"):
        model.fit(labelled, verbose=0)
    images = np.random.default_rng(0).integers(0, 256, size=(8, 6, 6, 1)).astype("uint8")
    with pytest.raises(ValueError, match=r"`next\(x\)` holds integers \(dtype uint8, shape "
                                         r"\(8, 6, 6, 1\).*divide by 255"):
        _model(shape=(6, 6, 1)).fit((b for b in [images]), verbose=0)
    with pytest.raises(ValueError, match=r"needs batches of at least 2 samples.*`next\(x\)` "
                                         r"\(the first batch\) holds 1 sample"):
        model.fit((b for b in _batches(x1, x2, 1)), verbose=0)
    assert _unchanged(model, before)

    def batches():
        for _ in range(2):  # two epochs of 8 + 8 + 1 samples
            yield from _batches(x1, x2)

    with pytest.warns(PartialBatchWarning, match=r"batch 3 of the generator `x` holds 1 "
                                                 r"sample.*left out"):
        model.fit(batches(), epochs=2, steps_per_epoch=2, verbose=0)
    _assert_trained_on_16_samples(model)  # the first batch was replayed, not lost


def test_py_datasets_are_checked_on_their_first_and_last_batch():
    x1, x2 = _pairs(17)
    read = []

    class Batches(keras.utils.PyDataset):
        def __init__(self, items):
            super().__init__()
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            read.append(i)
            return self.items[i]

    model = _sgd_model()
    before = _weights(model)
    with pytest.raises(ValueError, match=r"takes no targets, but the PyDataset's batches are "
                                         r"2-tuples.*`__getitem__` returning `\(\(x1, x2\),\)`"):
        model.fit(Batches([(a, b) for ((a, b),) in _batches(x1, x2)]), verbose=0)
    images = np.random.default_rng(0).integers(0, 256, size=(8, 6, 6, 1)).astype("uint8")
    with pytest.raises(ValueError, match=r"`x\[0\]` holds integers \(dtype uint8"):
        _model(shape=(6, 6, 1)).fit(Batches([images]), verbose=0)
    assert _unchanged(model, before)
    read.clear()
    with pytest.warns(PartialBatchWarning, match=r"last batch of `x` would hold 1 sample "
                                                 r"\(x\[2\], the last of 3 batches\)"):
        history = model.fit(Batches(_batches(x1, x2)), epochs=2, verbose=0, shuffle=False)
    assert read[:2] == [0, 2] and 2 not in read[2:]  # peeked once, never trained on
    assert history.params["steps"] == 2
    _assert_trained_on_16_samples(model)


def test_a_tf_data_last_batch_too_small_is_left_out():
    tf = pytest.importorskip("tensorflow")
    x1, x2 = _pairs(17)
    model = _sgd_model()
    ds = tf.data.Dataset.from_tensor_slices(((x1, x2),)).batch(8).prefetch(1)
    with pytest.warns(PartialBatchWarning, match=r"last batch of `x` would hold 1 sample "
                                                 r"\(17 samples, batch\(8\)\).*drop_remainder"):
        history = model.fit(ds, epochs=2, verbose=0)
    assert history.params["steps"] == 2  # the cardinality is kept
    _assert_trained_on_16_samples(model)
    # sizes that cannot be read off the pipeline, or a shuffle of the batches: refused
    spec = ((tf.TensorSpec((None, 5), tf.float32), tf.TensorSpec((None, 5), tf.float32)),)
    gen = tf.data.Dataset.from_generator(lambda: iter(_batches(x1, x2)),
                                         output_signature=spec)
    before = _weights(model)
    with pytest.raises(ValueError, match=r"cannot tell how many samples the last batch of "
                                         r"this tf\.data\.Dataset holds.*drop_remainder=True"):
        model.fit(gen, verbose=0)
    with pytest.raises(ValueError, match=r"holds 1 sample \(17 samples, batch\(8\)\).*"
                                         r"shuffled after batching.*drop_remainder=True"):
        model.fit(ds.shuffle(3), verbose=0)
    assert _unchanged(model, before)
    model.fit(ds.shuffle(3).rebatch(8, drop_remainder=True), verbose=0)  # the fix: trains
    tiny = tf.data.Dataset.from_tensor_slices(((x1, x2),)).batch(1, drop_remainder=True)
    with pytest.raises(ValueError, match=r"needs batches of at least 2 samples.*the "
                                         r"dataset's batches hold 1"):
        model.fit(tiny, verbose=0)


def test_a_torch_loader_last_batch_too_small_is_left_out():
    torch = pytest.importorskip("torch")
    x1, x2 = _pairs(17)
    pairs = torch.utils.data.TensorDataset(torch.from_numpy(x1), torch.from_numpy(x2))

    def collate(samples):  # one nested pair per batch, as fit wants it
        return ((torch.stack([a for a, _ in samples]), torch.stack([b for _, b in samples])),)

    loader = torch.utils.data.DataLoader(pairs, batch_size=8, collate_fn=collate)
    model = _sgd_model()
    with pytest.warns(PartialBatchWarning, match=r"last batch of `x` would hold 1 sample "
                                                 r"\(17 samples, DataLoader batch_size=8\).*"
                                                 r"drop_last=True"):
        history = model.fit(loader, epochs=2, verbose=0)
    assert history.params["steps"] == 2
    _assert_trained_on_16_samples(model)

    class Stream(torch.utils.data.IterableDataset):  # no length: the last batch is unknown
        def __iter__(self):
            return iter(zip(pairs.tensors[0], pairs.tensors[1]))

    before = _weights(model)
    with pytest.raises(ValueError, match=r"cannot tell how many samples the last batch of "
                                         r"this DataLoader holds.*`drop_last=True`"):
        model.fit(torch.utils.data.DataLoader(Stream(), batch_size=8, collate_fn=collate),
                  verbose=0)
    assert _unchanged(model, before)


def test_unknown_lr_multiplier_groups_are_refused_by_compile():
    model = _model()
    with pytest.raises(ValueError, match=r"`lr_multipliers` names unknown variable group "
                                         r"\['head'\]: expected group names among "
                                         r"\['default'\]"):
        model.compile(keras.optimizers.Adam(1e-2), lr_multipliers={"head": 3.0})
    model.variable_groups = lambda: {"head": list(model.projector.trainable_variables)}
    with pytest.raises(ValueError, match=r"unknown variable groups \['haed', 'tail'\]: "
                                         r"expected group names among \['default', 'head'\]"):
        model.compile(keras.optimizers.Adam(1e-2), lr_multipliers={"haed": 3.0, "tail": 2})
    with pytest.raises(ValueError, match=r"unknown variable group \['tail'\]"):
        model.compile(GroupedOptimizer(keras.optimizers.Adam(1e-2), {"tail": 2.0}))
    model.compile(keras.optimizers.Adam(1e-2), lr_multipliers={"head": 3.0})  # accepted
    recurrent = ldm.recipes.build("recurrent-ldm", keras.Sequential([
        keras.Input((5,)), keras.layers.Dense(3)]), lr_multipliers={"dynamic": 100.0})
    with pytest.raises(ValueError, match=r"\['dynamic'\]: expected group names among "
                                         r"\['default', 'dynamics', 'noise_network', "
                                         r"'observation_noise'\]"):
        recurrent.compile("adam")


def test_no_axis_of_size_one_is_squeezed():
    """Keras squeezes (or adds) a trailing axis of size 1 when the rank of the data differs
    from the encoder's input by one, and a sequence model's (frames, 4, 1) encoder output
    was reshaped into 4× the batch: both are refused, naming the shapes."""
    x1, x2 = _pairs(16)
    model = _model()  # built for (None, 5)
    before = _weights(model)
    with pytest.raises(ValueError, match=r"encoder expects inputs of shape \(None, 5\), "
                                         r"received shape \(16, 5, 1\) \(rank 3\)"):
        model.fit((x1[..., None], x2[..., None]), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"received shape \(16, 5, 1\)"):
        model.embed(x1[..., None])
    assert _unchanged(model, before)
    column = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),
                               keras.layers.Reshape((4, 1))])  # latents (batch, 4, 1)
    with pytest.raises(ValueError, match=r"must return one latent vector per sample.*"
                                         r"the output has shape \(None, 4, 1\).*Flatten"):
        ldm.recipes.build("vicreg", column, projector=None).build((None, 5))
    cpc = ldm.recipes.build("cpc", keras.Sequential([
        keras.Input((5,)), keras.layers.Dense(4), keras.layers.Reshape((4, 1))]))
    frames = np.zeros((2, 6, 5), "float32")
    with pytest.raises(ValueError, match=r"must return one latent vector per frame.*for frames of shape "
                                         r"\(5,\) it returned shape \(12, 4, 1\)"):
        cpc.encode(frames)  # was latents of shape (8, 6, 1) for a batch of 2
    flat = ldm.recipes.build("cpc", keras.Sequential([
        keras.Input((5,)), keras.layers.Dense(4), keras.layers.Reshape((4, 1)),
        keras.layers.Flatten()]))
    assert tuple(flat.encode(frames).shape) == (2, 6, 4)  # as the message says
