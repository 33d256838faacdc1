"""Tests of the image datasets: scikit-learn digits, CIFAR through keras.datasets, arrays/HDF5.

References: scikit-learn's own loader and split, the raw-pixel baselines quoted in the
issue, NumPy arrays written to the official CIFAR layout.
"""

import os
import pickle  # only to WRITE the official CIFAR fixture format; ldm_keras never uses it

import keras
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits as sk_load_digits
from sklearn.model_selection import train_test_split

from ldm_keras.data import arrays, cifar, digits
from ldm_keras.evaluation import clustering_accuracy, knn_accuracy, linear_probe

# ----------------------------------------------------------------------------- digits


def test_digits_split_shapes_and_values():
    (x_tr, y_tr), (x_te, y_te) = digits.load_digits()
    assert x_tr.shape == (1257, 8, 8, 1) and x_te.shape == (540, 8, 8, 1)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int32
    ref = sk_load_digits()
    want_tr, want_te, ref_ytr, ref_yte = train_test_split(
        ref.data / 16.0, ref.target, test_size=0.3, random_state=0, stratify=ref.target)
    np.testing.assert_allclose(x_tr.reshape(-1, 64), want_tr, atol=1e-7)
    np.testing.assert_allclose(x_te.reshape(-1, 64), want_te, atol=1e-7)
    np.testing.assert_array_equal(y_tr, ref_ytr)
    np.testing.assert_array_equal(y_te, ref_yte)
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0
    # stratified: class proportions agree to within one sample per class
    assert np.all(np.abs(np.bincount(y_te) - 0.3 * np.bincount(ref.target)) <= 1)


def test_digits_other_forms():
    x_all, y_all = digits.load_digits("all", image_shape=(64,))
    ref = sk_load_digits()
    np.testing.assert_allclose(x_all, ref.data / 16.0, atol=1e-7)
    np.testing.assert_array_equal(y_all, ref.target)
    x_tr, _ = digits.load_digits("train", image_shape=(8, 8))
    assert x_tr.shape == (1257, 8, 8)
    x_te, _ = digits.load_digits("test", test_size=0.5, seed=1)
    assert x_te.shape == (899, 8, 8, 1)
    with pytest.raises(ValueError, match="image_shape"):
        digits.load_digits(image_shape=(8, 9))
    with pytest.raises(ValueError, match="split"):
        digits.load_digits("validation")


def test_digits_raw_pixel_baselines():
    """The numbers in ldm_keras.data.digits' docstring (issue: .970, .895 ± .006, .792)."""
    (x_tr, y_tr), (x_te, y_te) = digits.load_digits(image_shape=(64,))
    full, _ = linear_probe(x_tr, y_tr, x_te, y_te, standardize=False)
    assert full == pytest.approx(0.970, abs=0.0025)
    full_std, _ = linear_probe(x_tr, y_tr, x_te, y_te)
    assert full_std == pytest.approx(0.972, abs=0.0025)
    few, few_sd = linear_probe(x_tr, y_tr, x_te, y_te, labels_per_class=10, standardize=False)
    assert few == pytest.approx(0.895, abs=0.0025) and few_sd == pytest.approx(0.009, abs=0.002)
    few, few_sd = linear_probe(x_tr, y_tr, x_te, y_te, labels_per_class=10)
    assert few == pytest.approx(0.885, abs=0.0025) and few_sd == pytest.approx(0.010, abs=0.002)
    assert knn_accuracy(x_tr, y_tr, x_te, y_te, k=20) == pytest.approx(0.967, abs=0.0025)
    x_all, y_all = digits.load_digits("all", image_shape=(64,))
    km = KMeans(10, n_init=10, random_state=0).fit(x_all)
    assert clustering_accuracy(y_all, km.labels_) == pytest.approx(0.792, abs=0.005)


# ------------------------------------------------------------------------------ CIFAR


def _write_batch(path, data, labels, label_keys):
    # The official "python version" format: a pickle of a dict with bytes
    # keys, b"data" (n, 3072) uint8 in CHW order and the label lists.
    d = {b"data": data}
    for key in label_keys:
        d[key] = [int(v) for v in labels[key]]
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=4)


def _fake_get_file(root, calls):
    """Stand-in for keras' get_file: the extracted archive already sits in the cache."""

    def get_file(fname=None, origin=None, extract=False, file_hash=None, **kwargs):
        calls.append((fname, origin, extract, file_hash))
        return os.path.join(root, "datasets", fname)

    return get_file


def _chw(rng, n):
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def test_cifar100_through_keras_datasets(tmp_path, monkeypatch):
    import keras.src.datasets.cifar100 as kc100

    rng = np.random.default_rng(0)
    folder = tmp_path / "datasets" / "cifar-100-python-target" / "cifar-100-python"
    folder.mkdir(parents=True)
    raw = {}
    for part, n in (("train", 12), ("test", 6)):
        data = _chw(rng, n)
        labels = {b"fine_labels": rng.integers(0, 100, n), b"coarse_labels": rng.integers(0, 20, n)}
        _write_batch(folder / part, data, labels, labels)
        raw[part] = (data, labels)
    calls = []
    monkeypatch.setattr(kc100, "get_file", _fake_get_file(str(tmp_path), calls))

    (x_tr, y_tr), (x_te, y_te) = cifar.load_cifar("cifar100")
    assert calls[0][1].startswith("https://") and calls[0][2]  # the real download path
    assert x_tr.shape == (12, 32, 32, 3) and x_te.shape == (6, 32, 32, 3)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int32 and y_tr.shape == (12,)
    want = raw["train"][0].reshape(12, 3, 32, 32).transpose(0, 2, 3, 1) / 255.0
    np.testing.assert_allclose(x_tr, want, atol=1e-7)
    np.testing.assert_array_equal(y_tr, raw["train"][1][b"fine_labels"])
    np.testing.assert_array_equal(y_te, raw["test"][1][b"fine_labels"])

    x_c, y_c = cifar.load_cifar("cifar100", label_mode="coarse", split="test")
    np.testing.assert_array_equal(y_c, raw["test"][1][b"coarse_labels"])
    np.testing.assert_allclose(x_c, x_te)

    # NHWC whatever keras' image data format
    old = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        x_cf, _ = cifar.load_cifar("cifar100", split="train")
    finally:
        keras.config.set_image_data_format(old)
    np.testing.assert_array_equal(x_cf, x_tr)


def test_cifar10_through_keras_datasets(tmp_path, monkeypatch):
    import keras.src.datasets.cifar10 as kc10

    # keras' CIFAR-10 reader expects five training batches of exactly 10 000 images;
    # they are zeros here except a few marked rows, and the test batch is tiny.
    folder = tmp_path / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(1, 6):
        data = np.zeros((10000, 3072), np.uint8)
        data[0] = i * 40
        labels = np.full(10000, i)
        _write_batch(folder / f"data_batch_{i}", data, {b"labels": labels}, [b"labels"])
    test_data = _chw(rng, 7)
    test_labels = rng.integers(0, 10, 7)
    _write_batch(folder / "test_batch", test_data, {b"labels": test_labels}, [b"labels"])
    calls = []
    monkeypatch.setattr(kc10, "get_file", _fake_get_file(str(tmp_path), calls))

    x_te, y_te = cifar.load_cifar("cifar10", split="test")
    assert calls[0][0] == "cifar-10-batches-py-target"
    assert x_te.shape == (7, 32, 32, 3) and x_te.dtype == np.float32
    np.testing.assert_allclose(
        x_te, test_data.reshape(7, 3, 32, 32).transpose(0, 2, 3, 1) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y_te, test_labels)

    x_tr, y_tr = cifar.load_cifar("cifar10", split="train")
    assert x_tr.shape == (50000, 32, 32, 3) and y_tr.shape == (50000,)
    np.testing.assert_allclose(x_tr[::10000, 0, 0, 0], np.arange(1, 6) * 40 / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y_tr[::10000], np.arange(1, 6))


def test_cifar_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        cifar.load_cifar("svhn")
    with pytest.raises(ValueError, match="split"):
        cifar.load_cifar("cifar10", split="val")


# ------------------------------------------------------------------------ arrays, h5


def test_from_arrays_checks():
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 3)).astype(np.uint8)
    out, y = arrays.from_arrays(x, np.arange(5)[:, None], rank=4, scale=255)
    assert out.dtype == np.float32 and y.shape == (5,) and y.dtype == np.int32
    np.testing.assert_allclose(out, x / 255.0, atol=1e-7)
    assert arrays.from_arrays([[1, 2], [3, 4]]).dtype == np.float32
    with pytest.raises(ValueError, match="rank 4"):
        arrays.from_arrays(np.zeros((5, 4, 4)), rank=4)
    with pytest.raises(ValueError, match="rank >= 2"):
        arrays.from_arrays(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        arrays.from_arrays(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="numeric"):
        arrays.from_arrays(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="one entry per sample"):
        arrays.from_arrays(np.zeros((5, 2)), np.arange(4))
    with pytest.raises(ValueError, match="no samples"):
        arrays.from_arrays(np.zeros((0, 2)))


def test_h5_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(6, 8, 8, 1)).astype("float64")
    y = rng.integers(0, 3, 6)
    path = tmp_path / "images.h5"
    arrays.save_h5(path, x, y)
    got_x, got_y = arrays.load_h5(path, "x", labels="y", rank=4)
    assert got_x.dtype == np.float32
    np.testing.assert_allclose(got_x, x.astype("float32"))
    np.testing.assert_array_equal(got_y, y)
    np.testing.assert_allclose(arrays.load_h5(str(path), "x"), got_x)

    nested = tmp_path / "nested.h5"
    arrays.save_h5(nested, x, y, dataset="train/images", labels="train/labels")
    np.testing.assert_allclose(arrays.load_h5(nested, "train/images"), got_x)

    with pytest.raises(ValueError, match="not found"):
        arrays.load_h5(tmp_path / "missing.h5", "x")
    with pytest.raises(ValueError, match=r"available datasets: \['train/images', 'train/labels'\]"):
        arrays.load_h5(nested, "x")
    with pytest.raises(ValueError, match="No dataset 'train'"):
        arrays.load_h5(nested, "train")  # a group, not a dataset
    with pytest.raises(ValueError, match="rank 2"):
        arrays.load_h5(path, "x", rank=2)
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="HDF5"):
        arrays.load_h5(text, "x")
