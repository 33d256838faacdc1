"""Tests of ldm_keras.evaluation.classification (NumPy in, NumPy out).

References: scikit-learn (StandardScaler + LogisticRegression), a NumPy brute-force
nearest-neighbour vote (k-NN is scikit-learn's KNeighborsClassifier), brute force over all
cluster-to-class permutations, hand-made cases.
"""

import itertools

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ldm_keras.evaluation import (
    clustering_accuracy,
    evaluate_embeddings,
    knn_accuracy,
    knn_predict,
    linear_probe,
    sample_per_class,
)


def _blobs(n_per_class=40, n_classes=4, d=6, spread=1.5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(n_classes, d))
    y = np.repeat(np.arange(n_classes), n_per_class)
    z = centres[y] + spread * rng.normal(size=(len(y), d))
    # scale features differently so that standardisation matters
    return z * np.geomspace(0.1, 10, d), y


@pytest.fixture
def split():
    z, y = _blobs(seed=0)
    zt, yt = _blobs(n_per_class=25, seed=0)
    zt = zt + np.random.default_rng(5).normal(scale=0.5, size=zt.shape)
    return z, y, zt, yt


def test_linear_probe_full_matches_sklearn(split):
    z, y, zt, yt = split
    acc, sd = linear_probe(z, y, zt, yt, C=0.5)
    scaler = StandardScaler().fit(z)
    clf = LogisticRegression(C=0.5, max_iter=1000).fit(scaler.transform(z), y)
    want = np.mean(clf.predict(scaler.transform(zt)) == yt)
    assert acc == pytest.approx(want, abs=1e-12) and sd == 0.0
    assert 0.5 < acc < 1.0  # a task that is neither trivial nor hopeless

    raw, _ = linear_probe(z, y, zt, yt, standardize=False)
    clf = LogisticRegression(max_iter=1000).fit(z, y)
    assert raw == pytest.approx(np.mean(clf.predict(zt) == yt), abs=1e-12)


def test_linear_probe_k_labels_averages_seeds(split):
    z, y, zt, yt = split
    mean, sd = linear_probe(z, y, zt, yt, labels_per_class=3, seeds=(0, 1, 2))
    scaler = StandardScaler().fit(z)  # statistics of all training embeddings
    accs = []
    for seed in (0, 1, 2):
        idx = sample_per_class(y, 3, seed)
        clf = LogisticRegression(max_iter=1000).fit(scaler.transform(z[idx]), y[idx])
        accs.append(np.mean(clf.predict(scaler.transform(zt)) == yt))
    assert mean == pytest.approx(np.mean(accs), abs=1e-12)
    assert sd == pytest.approx(np.std(accs), abs=1e-12)
    assert sd > 0  # different label draws give different probes


def test_sample_per_class():
    y = np.array([2, 0, 1, 2, 2, 0, 1, 1, 0, 2, 0, 1])
    idx = sample_per_class(y, 2, seed=0)
    assert len(idx) == len(set(idx)) == 6
    assert sorted(np.bincount(y[idx])) == [2, 2, 2]
    np.testing.assert_array_equal(idx, sample_per_class(y, 2, seed=0))
    draws = {tuple(sample_per_class(y, 2, seed=s)) for s in range(10)}
    assert len(draws) > 1
    with pytest.raises(ValueError, match="fewer than"):
        sample_per_class(y, 5)


def _numpy_knn(z, y, zt, k, metric):
    """Brute force: the k nearest by full distance sort, majority vote, ties to the smallest."""
    if metric == "cosine":
        a = z / np.linalg.norm(z, axis=1, keepdims=True)
        b = zt / np.linalg.norm(zt, axis=1, keepdims=True)
        dist = 1.0 - b @ a.T
    else:
        dist = np.sqrt(((zt[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    classes = np.unique(y)
    votes = (y[nearest][..., None] == classes).sum(axis=1)
    return classes[np.argmax(votes, axis=1)]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k", [1, 5, 20])
def test_knn_matches_brute_force(split, metric, k):
    z, y, zt, yt = split
    want = _numpy_knn(z, y, zt, k, metric)
    np.testing.assert_array_equal(knn_predict(z, y, zt, k=k, metric=metric), want)
    assert knn_accuracy(z, y, zt, yt, k=k, metric=metric) == pytest.approx(
        np.mean(want == yt), abs=1e-12)


def test_knn_small_blocks_and_ties():
    z, y = _blobs(n_per_class=10, n_classes=3, seed=1)
    full = knn_predict(z, y, z[:7], k=4)
    np.testing.assert_array_equal(knn_predict(z, y, z[:7], k=4, batch_size=2), full)
    # a 1-1 tie goes to the smaller label
    train = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert knn_predict(train, np.array([5, 3]), np.array([[1.0, 1.0]]), k=2,
                       metric="euclidean")[0] == 3


def _brute_force(y_true, y_pred):
    t_labels, p_labels = np.unique(y_true), np.unique(y_pred)
    best = 0
    if len(p_labels) <= len(t_labels):
        for perm in itertools.permutations(t_labels, len(p_labels)):
            m = dict(zip(p_labels, perm))
            best = max(best, sum(m[p] == t for p, t in zip(y_pred, y_true)))
    else:
        for perm in itertools.permutations(p_labels, len(t_labels)):
            m = dict(zip(perm, t_labels))
            best = max(best, sum(m.get(p, None) == t for p, t in zip(y_pred, y_true)))
    return best / len(y_true)


def test_clustering_accuracy_hand_made():
    assert clustering_accuracy([0, 0, 1, 1, 2], [2, 2, 0, 0, 1]) == 1.0
    # clusters named by arbitrary labels
    assert clustering_accuracy([0, 0, 1, 1], [7, 7, 3, 9]) == 0.75
    # 3 clusters, 2 classes: the extra cluster counts as wrong
    assert clustering_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 2, 1, 1, 1]) == pytest.approx(5 / 6)
    # 1 cluster, 2 classes: the best class gets it
    assert clustering_accuracy([0, 0, 0, 1], [4, 4, 4, 4]) == 0.75


@pytest.mark.parametrize("n_classes,n_clusters", [(4, 4), (3, 5), (5, 3)])
def test_clustering_accuracy_matches_brute_force(n_classes, n_clusters):
    rng = np.random.default_rng(n_classes * 10 + n_clusters)
    for _ in range(5):
        y_true = rng.integers(0, n_classes, 40)
        y_pred = np.where(rng.random(40) < 0.6, y_true % n_clusters, rng.integers(0, n_clusters, 40))
        y_pred = rng.permutation(n_clusters)[y_pred] + 10  # relabel
        assert clustering_accuracy(y_true, y_pred) == pytest.approx(_brute_force(y_true, y_pred))


def test_evaluate_embeddings(split):
    z, y, zt, yt = split
    out = evaluate_embeddings(z, y, zt, yt, labels_per_class=5, seeds=(0, 1), k=5)
    assert set(out) == {"probe_full", "probe_10", "probe_10_std", "knn"}
    assert out["probe_full"] == linear_probe(z, y, zt, yt)[0]
    assert (out["probe_10"], out["probe_10_std"]) == linear_probe(
        z, y, zt, yt, labels_per_class=5, seeds=(0, 1))
    assert out["knn"] == knn_accuracy(z, y, zt, yt, k=5)


def test_bad_input(split):
    z, y, zt, yt = split
    with pytest.raises(ValueError, match="2-D"):
        linear_probe(z[:, 0], y, zt, yt)
    with pytest.raises(ValueError, match="one label per sample"):
        knn_accuracy(z, y[:-1], zt, yt)
    with pytest.raises(ValueError, match="same number of features"):
        knn_accuracy(z, y, zt[:, :3], yt)
    bad = z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        linear_probe(bad, y, zt, yt)
    with pytest.raises(ValueError, match="`k`"):
        knn_accuracy(z, y, zt, yt, k=len(z) + 1)
    with pytest.raises(ValueError, match="metric"):
        knn_accuracy(z, y, zt, yt, metric="manhattan")
    with pytest.raises(ValueError, match="integer"):
        clustering_accuracy([0.5, 1.0], [0, 1])
