import numpy as np
import pytest

from ldm_keras.data.pairs import same_class_pairs


def test_pairs_share_class_and_never_pair_a_sample_with_itself():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, size=200)
    x = np.arange(200)[:, None].astype("float32")  # the row index identifies the sample
    x1, x2 = same_class_pairs(x, y, partners=3, seed=1)
    i, j = x1[:, 0].astype(int), x2[:, 0].astype(int)
    assert len(i) == 600
    np.testing.assert_array_equal(y[i], y[j])
    assert np.all(i != j)
    np.testing.assert_array_equal(np.bincount(i, minlength=200), np.full(200, 3))
    again = same_class_pairs(x, y, partners=3, seed=1)
    np.testing.assert_array_equal(again[1], x2)


def test_pairs_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        same_class_pairs(np.zeros((3, 1)), np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="labels"):
        same_class_pairs(np.zeros((3, 1)), np.array([0, 0]))
    with pytest.raises(ValueError, match="partners"):
        same_class_pairs(np.zeros((4, 1)), np.array([0, 0, 1, 1]), partners=0)
