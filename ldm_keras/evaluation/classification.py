"""Classification read-outs of frozen embeddings: linear probe, k-NN, clustering accuracy.

NumPy in, NumPy (or Python floats) out; these run after training, on embeddings
computed with ``encoder.predict``, whatever the backend.

Example:
    >>> z_train, z_test = encoder.predict(x_train), encoder.predict(x_test)
    >>> evaluate_embeddings(z_train, y_train, z_test, y_test)
    {'probe_full': 0.97, 'probe_10': 0.89, 'probe_10_std': 0.006, 'knn': 0.96}
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

from .._validation import check_features, check_labels

__all__ = [
    "clustering_accuracy",
    "evaluate_embeddings",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "sample_per_class",
]


def _split(train_z, train_y, test_z, test_y):
    train_z, test_z = check_features(train_z, "train_z"), check_features(test_z, "test_z")
    if train_z.shape[1] != test_z.shape[1]:
        raise ValueError(f"`train_z` and `test_z` must have the same number of features; "
                         f"received {train_z.shape[1]} and {test_z.shape[1]}.")
    train_y = check_labels(train_y, len(train_z), "train_y")
    test_y = check_labels(test_y, len(test_z), "test_y")
    return train_z, train_y, test_z, test_y


def sample_per_class(y, k, seed=0):
    """Indices of ``k`` samples of every class of ``y``, drawn without replacement.

    Uses ``numpy.random.default_rng(seed)``; each class is drawn from in the order
    of ``np.unique(y)`` and the result is sorted.

    Raises:
        ValueError: when a class has fewer than ``k`` samples.

    Example:
        >>> idx = sample_per_class(y_train, 10, seed=0)   # 10 labels per class
    """
    y = check_labels(y, None, "y")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` (labels per class) must be an int >= 1; received {k!r}.")
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if len(members) < k:
            raise ValueError(f"Class {c} has {len(members)} samples, fewer than the "
                             f"{k} labels per class asked for.")
        out.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(out))


def linear_probe(train_z, train_y, test_z, test_y, labels_per_class=None,
                 seeds=(0, 1, 2, 3, 4), C=1.0, max_iter=1000, standardize=True):
    """Test accuracy of a multinomial logistic regression on frozen embeddings.

    Features are standardised, ``z ← (z - m) / s``, with the mean ``m`` and standard
    deviation ``s`` (floored at 1e-12) of **all** training embeddings — no label is
    needed for that. The classifier is scikit-learn's ``LogisticRegression`` (L2
    penalty ``||W||² / 2`` with inverse strength ``C``, lbfgs) maximising

        Σ_i log softmax(W z_i + b)_{y_i} - ||W||² / (2C).

    With ``labels_per_class=k`` the classifier sees only ``k`` labelled training
    samples per class (:func:`sample_per_class` with each seed) and the accuracies
    are averaged over ``seeds``; with ``None`` it sees every label (one fit; the
    solver is deterministic, so the standard deviation is 0).

    Args:
        train_z, train_y, test_z, test_y: embeddings ``(n, d)`` and integer labels.
        labels_per_class: None (all labels) or ``k >= 1``.
        seeds: seeds of the label subsets (used only with ``labels_per_class``).
        C: inverse regularisation strength (default 1.0).
        max_iter: lbfgs iterations (default 1000).
        standardize: standardise the features first (default True).

    Returns:
        ``(mean_accuracy, std_accuracy)`` as floats (population std over seeds).

    Example:
        >>> acc, _ = linear_probe(z_tr, y_tr, z_te, y_te)
        >>> acc10, sd10 = linear_probe(z_tr, y_tr, z_te, y_te, labels_per_class=10)
    """
    from sklearn.linear_model import LogisticRegression

    train_z, train_y, test_z, test_y = _split(train_z, train_y, test_z, test_y)
    if standardize:
        m = train_z.mean(axis=0)
        s = np.maximum(train_z.std(axis=0), 1e-12)
        train_z, test_z = (train_z - m) / s, (test_z - m) / s
    if labels_per_class is None:
        subsets = [np.arange(len(train_y))]
    else:
        seeds = tuple(seeds)
        if not seeds:
            raise ValueError("`seeds` must name at least one seed.")
        subsets = [sample_per_class(train_y, labels_per_class, seed) for seed in seeds]
    accs = []
    for idx in subsets:
        if len(np.unique(train_y[idx])) < 2:
            raise ValueError("The linear probe needs at least 2 classes in `train_y`.")
        clf = LogisticRegression(C=C, max_iter=max_iter)
        clf.fit(train_z[idx], train_y[idx])
        accs.append(float(np.mean(clf.predict(test_z) == test_y)))
    return float(np.mean(accs)), float(np.std(accs))


def knn_predict(train_z, train_y, test_z, k=20, metric="cosine", batch_size=1024):
    """Majority vote of the ``k`` nearest training embeddings of each test embedding.

    scikit-learn's ``KNeighborsClassifier`` (brute force, uniform weights). Distances:
    ``"cosine"`` uses ``1 - <a, b> / (|a| |b|)``, ``"euclidean"`` ``|a - b|``. Ties between
    classes go to the smallest label. Computed in blocks of ``batch_size`` test rows
    (memory ``batch_size × n_train``).

    Example:
        >>> y_hat = knn_predict(z_tr, y_tr, z_te, k=20)
    """
    from sklearn.neighbors import KNeighborsClassifier

    train_z, test_z = check_features(train_z, "train_z"), check_features(test_z, "test_z")
    train_y = check_labels(train_y, len(train_z), "train_y")
    if train_z.shape[1] != test_z.shape[1]:
        raise ValueError(f"`train_z` and `test_z` must have the same number of features; "
                         f"received {train_z.shape[1]} and {test_z.shape[1]}.")
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"`metric` must be 'cosine' or 'euclidean'; received {metric!r}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(train_z):
        raise ValueError(f"`k` must be an int in [1, {len(train_z)}] (the number of "
                         f"training samples); received {k!r}.")
    if len(test_z) == 0:
        return np.zeros((0,), dtype=train_y.dtype)
    knn = KNeighborsClassifier(n_neighbors=int(k), metric=metric, algorithm="brute")
    knn.fit(train_z, train_y)
    return np.concatenate([knn.predict(test_z[start:start + batch_size])
                           for start in range(0, len(test_z), batch_size)])


def knn_accuracy(train_z, train_y, test_z, test_y, k=20, metric="cosine"):
    """Accuracy of the ``k``-nearest-neighbour majority vote (see :func:`knn_predict`).

    Example:
        >>> knn_accuracy(z_tr, y_tr, z_te, y_te, k=20, metric="cosine")
    """
    train_z, train_y, test_z, test_y = _split(train_z, train_y, test_z, test_y)
    pred = knn_predict(train_z, train_y, test_z, k=k, metric=metric)
    return float(np.mean(pred == test_y))


def clustering_accuracy(y_true, y_pred):
    """Accuracy after the best one-to-one matching of clusters to classes.

    With ``N[c, l]`` the number of samples of cluster ``c`` and class ``l``,

        acc = max_π Σ_c N[c, π(c)] / n

    over one-to-one maps ``π`` from clusters to classes, found with the Hungarian
    algorithm (``scipy.optimize.linear_sum_assignment``). When there are more clusters
    than classes, the clusters left without a class count as errors; with fewer
    clusters, the classes left without a cluster do.

    Example:
        >>> clustering_accuracy([0, 0, 1, 1, 2], [2, 2, 0, 0, 1])
        1.0
    """
    y_true = check_labels(y_true, None, "y_true")
    y_pred = check_labels(y_pred, len(y_true), "y_pred")
    if len(y_true) == 0:
        raise ValueError("`y_true` is empty.")
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((p.max() + 1, t.max() + 1), dtype="int64")
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(y_true))


def evaluate_embeddings(train_z, train_y, test_z, test_y, labels_per_class=10,
                        seeds=(0, 1, 2, 3, 4), k=20, metric="cosine", C=1.0):
    """The standard read-outs of an embedding, in one dict.

    Returns:
        ``{"probe_full": linear probe with every label,
        "probe_10": mean linear probe with ``labels_per_class`` labels per class over
        ``seeds``, "probe_10_std": its std, "knn": k-NN accuracy}`` (the keys keep the
        ``_10`` suffix whatever ``labels_per_class``).

    Example:
        >>> scores = evaluate_embeddings(z_tr, y_tr, z_te, y_te)
        >>> scores["probe_full"], scores["knn"]
    """
    full, _ = linear_probe(train_z, train_y, test_z, test_y, C=C)
    few, few_std = linear_probe(train_z, train_y, test_z, test_y,
                                labels_per_class=labels_per_class, seeds=seeds, C=C)
    knn = knn_accuracy(train_z, train_y, test_z, test_y, k=k, metric=metric)
    return {"probe_full": full, "probe_10": few, "probe_10_std": few_std, "knn": knn}
