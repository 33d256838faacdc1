"""ldm_keras.data.windows: cutting long recordings into windows (NumPy, h5py, tf.data)."""

import importlib.util

import h5py
import numpy as np
import pytest

from ldm_keras.data import iter_windows, window_index, windows


def _reference(series, length, stride):
    """Plain NumPy slicing: every window of every series, series by series."""
    out = []
    for s in series:
        for t in range(0, len(s) - length + 1, stride):
            out.append(s[t:t + length])
    return np.stack(out)


def _series(rng, lengths=(23, 11, 17), frame=(3,)):
    return [rng.normal(size=(n,) + frame).astype("float32") for n in lengths]


@pytest.mark.parametrize("length,stride", [(5, 1), (7, 3), (11, 11)])
def test_windows_match_numpy_slicing(rng, length, stride):
    series = _series(rng)
    ref = _reference(series, length, stride)
    got = windows(series, length, stride)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)
    # a single array is one series
    np.testing.assert_array_equal(windows(series[0], length, stride),
                                  _reference(series[:1], length, stride))


def test_shuffle_is_a_seeded_permutation_across_series(rng):
    series = _series(rng)
    ref = _reference(series, 5, 2)
    a = windows(series, 5, 2, shuffle=True, seed=3)
    b = windows(series, 5, 2, shuffle=True, seed=3)
    np.testing.assert_array_equal(a, b)
    order = np.random.default_rng(3).permutation(len(ref))
    np.testing.assert_array_equal(a, ref[order])
    assert not np.array_equal(a, ref)
    # windows of different series are mixed in the first few
    idx = window_index([len(s) for s in series], 5, 2, shuffle=True, seed=3)
    assert len(set(idx[:6, 0].tolist())) > 1


def test_image_frames_and_targets_are_windowed_alongside(rng):
    frames = [rng.normal(size=(n, 4, 5, 2)).astype("float32") for n in (12, 9)]
    pos = [rng.normal(size=(n, 2)) for n in (12, 9)]
    x, y = windows(frames, 6, 3, targets=pos, shuffle=True, seed=1)
    order = np.random.default_rng(1).permutation(len(x))
    np.testing.assert_array_equal(x, _reference(frames, 6, 3)[order])
    np.testing.assert_allclose(y, _reference(pos, 6, 3)[order].astype("float32"))
    assert x.shape[1:] == (6, 4, 5, 2) and y.shape[1:] == (6, 2)


def test_h5py_datasets_give_the_same_windows(rng, tmp_path):
    series = _series(rng)
    pos = [rng.normal(size=(len(s), 2)).astype("float32") for s in series]
    path = tmp_path / "rec.h5"
    with h5py.File(path, "w") as f:
        for i, (s, p) in enumerate(zip(series, pos)):
            f[f"frames/{i}"] = s
            f[f"pos/{i}"] = p
    ref_x, ref_y = windows(series, 6, 2, targets=pos, shuffle=True, seed=5)
    with h5py.File(path, "r") as f:
        ds = [f[f"frames/{i}"] for i in range(3)]
        ps = [f[f"pos/{i}"] for i in range(3)]
        x, y = windows(ds, 6, 2, targets=ps, shuffle=True, seed=5, chunk_windows=4)
        # batches stream lazily and concatenate to the same windows
        parts = list(iter_windows(ds[0], 6, 2, batch_size=3))
        assert all(len(p) <= 3 for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), _reference(series[:1], 6, 2))
    np.testing.assert_array_equal(x, ref_x)
    np.testing.assert_array_equal(y, ref_y)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason="tensorflow not installed")
def test_tf_data_dataset_of_series(rng):
    import tensorflow as tf

    series = _series(rng, lengths=(15, 15))
    ds = tf.data.Dataset.from_tensor_slices(np.stack(series))
    np.testing.assert_array_equal(windows(ds, 4, 3), _reference(series, 4, 3))
    varlen = _series(rng, lengths=(9, 14))
    gen = tf.data.Dataset.from_generator(
        lambda: iter(varlen), output_signature=tf.TensorSpec((None, 3), tf.float32))
    np.testing.assert_array_equal(windows(gen, 5, 2), _reference(varlen, 5, 2))


def test_bad_input_is_a_clear_error(rng):
    series = _series(rng, lengths=(20, 4))
    with pytest.raises(ValueError, match="series 1 has 4 time steps, fewer than the window "
                                         "length 5"):
        windows(series, 5)
    with pytest.raises(ValueError, match="same frame shape.*series 1 has"):
        windows([np.zeros((10, 3)), np.zeros((10, 4))], 5)
    with pytest.raises(ValueError, match="time first"):
        windows(np.zeros(10), 5)
    with pytest.raises(ValueError, match=r"`targets` series 0 has 9 rows .* but `series` "
                                         r"series 0 has 10 time steps; expected one row"):
        windows(np.zeros((10, 3)), 5, targets=np.zeros((9, 2)))
    with pytest.raises(ValueError, match="one array per series"):
        windows([np.zeros((10, 3))] * 2, 5, targets=[np.zeros((10, 2))])
    with pytest.raises(ValueError, match="length"):
        windows(np.zeros((10, 3)), 0)
    with pytest.raises(ValueError, match="stride"):
        windows(np.zeros((10, 3)), 3, stride=0)
