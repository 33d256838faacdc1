"""Online evaluation with labels during ``fit``: a linear probe and a k-NN monitor."""

import time

import keras
import numpy as np
from threadpoolctl import threadpool_limits

from .._validation import check_features, check_labels
from ..evaluation.classification import knn_accuracy
from . import _features

__all__ = ["KNNMonitor", "OnlineProbe", "fit_softmax_regression"]


def _softmax_objective(params, x, onehot, c):
    """The probe's objective divided by the number of samples (the same minimiser; the
    gradient tolerance then does not depend on the size of the labelled split)."""
    n, n_feat, n_cls = x.shape[0], x.shape[1], onehot.shape[1]
    w = params[: n_feat * n_cls].reshape(n_feat, n_cls)
    b = params[n_feat * n_cls:]
    logits = x @ w + b
    logits -= logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
    log_p = logits - log_norm
    loss = -np.sum(onehot * log_p) + 0.5 * np.sum(w * w) / c
    resid = np.exp(log_p) - onehot
    grad_w = x.T @ resid + w / c
    grad_b = resid.sum(axis=0)
    return loss / n, np.concatenate([grad_w.ravel(), grad_b]) / n


def fit_softmax_regression(x, y_codes, num_classes, C=1.0, max_iter=200, tol=1e-4,
                           init=None):
    """L2-regularised multinomial logistic regression, fitted by L-BFGS (SciPy).

    Minimises the objective of scikit-learn's ``LogisticRegression`` (the offline
    :func:`~ldm_keras.evaluation.linear_probe`):

    .. math:: \\sum_i -\\log \\operatorname{softmax}(x_i W + b)_{y_i}
              + \\frac{1}{2C}\\lVert W\\rVert_F^2

    (the intercept ``b`` is not penalised; L-BFGS minimises it divided by the number of
    samples, to the gradient tolerance ``tol`` — 1e-4, scikit-learn's default), starting
    from ``init = (W, b)`` when given —
    the warm start that makes refitting after every epoch cheap. The problem is small
    (features × classes parameters), so it runs on one BLAS thread (``threadpoolctl``,
    a scikit-learn dependency): handing the tiny products to a thread pool costs more
    than computing them, and much more while a training step keeps the cores busy.

    Returns:
        ``(W, b, iterations)``: ``W`` ``(features, classes)``, ``b`` ``(classes,)``.

    Example:
        >>> w, b, _ = fit_softmax_regression(z, codes, 10)
        >>> pred = np.argmax(z @ w + b, axis=1)
    """
    from scipy.optimize import minimize

    x = np.asarray(x, dtype="float64")
    onehot = np.eye(num_classes)[np.asarray(y_codes)]
    size = x.shape[1] * num_classes
    if init is not None and init[0].shape == (x.shape[1], num_classes):
        x0 = np.concatenate([np.ravel(init[0]), np.ravel(init[1])])
    else:
        x0 = np.zeros(size + num_classes)
    with threadpool_limits(limits=1, user_api="blas"):
        res = minimize(_softmax_objective, x0, args=(x, onehot, float(C)), jac=True,
                       method="L-BFGS-B",
                       options={"maxiter": int(max_iter), "gtol": float(tol), "ftol": 0.0})
    w = res.x[:size].reshape(x.shape[1], num_classes)
    return w, res.x[size:], int(res.nit)


def _check_every(every):
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"`every` must be an int >= 1 (epochs); received {every!r}.")
    return int(every)


class OnlineProbe(keras.callbacks.Callback):
    """Linear-probe accuracy of the encoder on held-out labelled data during ``fit``.

    At the end of every ``every``-th epoch (and of the last one) the callback embeds the
    labelled split and the validation split with the frozen encoder (detached: the
    compiled inference step, no gradient reaches the model), and

    1. fits a softmax-regression head on the **labelled split only**: features
       standardised with the mean and standard deviation of the labelled features,
       then the L2-regularised multinomial logistic regression of
       :func:`~ldm_keras.evaluation.linear_probe` (same objective, same ``C``) by
       L-BFGS, warm-started from the previous epoch's head
       (:func:`fit_softmax_regression`);
    2. scores it on the validation split: ``probe_acc`` = fraction of validation
       samples whose predicted class is their label. The validation labels are used
       for this count and nothing else — they never reach the head's fit, and the
       validation inputs never reach the standardisation.

    With ``knn_k`` it also logs ``knn_acc``, the k-NN accuracy of the validation
    features against the labelled ones (:func:`~ldm_keras.evaluation.knn_accuracy`).

    The values are written into the epoch ``logs``, so they appear in ``fit``'s
    progress bar and in ``History.history`` (``NaN`` at epochs without a probe, so
    that the history stays aligned with the epochs); every probe is also kept in
    :attr:`records` (epoch, accuracies, L-BFGS iterations, seconds spent).

    Features: the encoder's output (``space="representation"``, the usual probe) or the
    projected latents (``space="latents"``); for sequence models (data ``(N, T,
    *frame)``) the per-frame latents — mean-pooled over time when the labels are one per
    sequence ``(N,)``, one sample per frame when they are per frame ``(N, T)``. Any
    other model: pass ``features=lambda model, x: array``.

    Args:
        x_labelled, y_labelled: inputs and integer labels the head is trained on.
        x_val, y_val: held-out inputs and labels it is scored on.
        every: probe every ``every`` epochs (and at the last epoch); default 1.
        C: inverse L2 strength of the head (default 1.0, as ``linear_probe``).
        max_iter: L-BFGS iterations per fit (default 200; with the warm start a refit
            takes far fewer).
        tol: L-BFGS tolerance on the mean objective's gradient (default 1e-4).
        standardize: standardise the features (default True, as ``linear_probe``).
        knn_k: ``k`` of the k-NN monitor, or ``None`` (default) for none.
        knn_metric: ``"cosine"`` (default) or ``"euclidean"``.
        space: ``"representation"`` (default) or ``"latents"``.
        features: optional ``callable(model, x) -> array`` replacing the encoder.
        batch_size: chunk size of the encoder passes (default 1024).
        prefix: prepended to the log keys (e.g. ``"val_"``).

    Example:
        >>> (x, y), (x_test, y_test) = ldm.data.digits.load_digits()
        >>> idx = ldm.evaluation.sample_per_class(y, 10)         # 10 labels per class
        >>> probe = ldm.callbacks.OnlineProbe(x[idx], y[idx], x_test, y_test, knn_k=5)
        >>> history = model.fit(x, epochs=60, batch_size=256, callbacks=[probe])
        >>> history.history["probe_acc"][-1]
    """

    _linear = True

    def __init__(self, x_labelled, y_labelled, x_val, y_val, every=1, C=1.0, max_iter=200,
                 tol=1e-4, standardize=True, knn_k=None, knn_metric="cosine",
                 space="representation", features=None, batch_size=1024, prefix=""):
        super().__init__()
        self.x_labelled, self.y_labelled = self._data(x_labelled, y_labelled, "labelled")
        self.x_val, self.y_val = self._data(x_val, y_val, "val")
        if self._linear and len(np.unique(self.y_labelled)) < 2:
            raise ValueError("`y_labelled` must hold at least 2 classes for a linear probe; "
                             f"received {np.unique(self.y_labelled).tolist()}.")
        self.every = _check_every(every)
        self.C = float(C)
        if not self.C > 0:
            raise ValueError(f"`C` must be > 0; received {C!r}.")
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.standardize = bool(standardize)
        if knn_k is not None:
            if isinstance(knn_k, bool) or not isinstance(knn_k, (int, np.integer)) \
                    or not 1 <= knn_k <= self._n_samples(self.x_labelled, self.y_labelled):
                raise ValueError(f"`knn_k` must be None or an int in [1, number of labelled "
                                 f"samples]; received {knn_k!r}.")
            knn_k = int(knn_k)
        if knn_metric not in ("cosine", "euclidean"):
            raise ValueError(f"`knn_metric` must be 'cosine' or 'euclidean'; received "
                             f"{knn_metric!r}.")
        self.knn_k, self.knn_metric = knn_k, knn_metric
        self.space = _features.check_space(space)
        self.features = _features.check_callable(features)
        self.batch_size = int(batch_size)
        self.prefix = str(prefix)
        self.classes_ = np.unique(self.y_labelled)
        self._x_both = None
        if self.x_labelled.shape[1:] == self.x_val.shape[1:]:
            self._x_both = np.concatenate([self.x_labelled, self.x_val])
        self.coef_ = self.intercept_ = self.mean_ = self.scale_ = None
        self.records = []
        self.seconds = 0.0

    @staticmethod
    def _data(x, y, which):
        x = np.asarray(x)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1 and x.ndim != 2:
            y = y[:, 0]
        if len(x) != len(y):
            raise ValueError(f"`x_{which}` and `y_{which}` must have the same number of "
                             f"samples; received {len(x)} and {len(y)}.")
        if len(x) == 0:
            raise ValueError(f"`x_{which}` is empty.")
        flat = check_labels(y.reshape(-1), None, f"y_{which}")
        return x, flat.reshape(y.shape)

    @staticmethod
    def _n_samples(x, y):
        return int(np.prod(y.shape))

    # -- features ------------------------------------------------------------------------
    def _raw_features(self, model, x):
        if self.features is not None:
            return np.asarray(keras.ops.convert_to_numpy(self.features(model, x)), "float64")
        return _features.features(model, x, self.space, self.batch_size)

    def _embed(self, model, x, y, z=None):
        z = self._raw_features(model, x) if z is None else z
        if z.ndim == 3:                           # sequences: (N, T, L)
            if y.ndim == 2:                       # per-frame labels: one sample per frame
                if y.shape != z.shape[:2]:
                    raise ValueError(f"Per-frame labels must have shape (N, T) = "
                                     f"{z.shape[:2]}; received {y.shape}.")
                z = z.reshape(-1, z.shape[-1])
            else:                                 # one label per sequence: pool over time
                z = z.mean(axis=1)
        return check_features(z, "features"), y.reshape(-1)

    # -- the probe -------------------------------------------------------------------------
    def _fit_head(self, z, y):
        codes = np.searchsorted(self.classes_, y)
        if self.standardize:
            self.mean_ = z.mean(axis=0)
            self.scale_ = np.maximum(z.std(axis=0), 1e-12)
        else:
            self.mean_, self.scale_ = np.zeros(z.shape[1]), np.ones(z.shape[1])
        init = None if self.coef_ is None else (self.coef_, self.intercept_)
        w, b, iters = fit_softmax_regression((z - self.mean_) / self.scale_, codes,
                                             len(self.classes_), self.C, self.max_iter,
                                             self.tol, init)
        self.coef_, self.intercept_ = w, b
        return iters

    def predict(self, z):
        """Class predictions of the current head for features ``z`` ``(n, d)``."""
        if self.coef_ is None:
            raise ValueError("The probe has not been fitted yet (it fits at epoch ends).")
        z = check_features(z, "z")
        logits = ((z - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return self.classes_[np.argmax(logits, axis=1)]

    def evaluate(self, model=None):
        """Fit the head on the labelled split and score it (and k-NN) on the validation split.

        Returns a dict ``{"probe_acc": ..., "knn_acc": ...}`` (without the prefix).
        """
        model = self.model if model is None else model
        start = time.perf_counter()
        z_lab = z_val = None
        if self._x_both is not None:   # one pass over both splits: one shape, one dispatch
            z = self._raw_features(model, self._x_both)
            z_lab, z_val = z[: len(self.x_labelled)], z[len(self.x_labelled):]
        z_lab, y_lab = self._embed(model, self.x_labelled, self.y_labelled, z_lab)
        z_val, y_val = self._embed(model, self.x_val, self.y_val, z_val)
        out, iters = {}, 0
        if self._linear:
            iters = self._fit_head(z_lab, y_lab)
            out["probe_acc"] = float(np.mean(self.predict(z_val) == y_val))
        if self.knn_k is not None:
            with threadpool_limits(limits=1, user_api="blas"):
                out["knn_acc"] = knn_accuracy(z_lab, y_lab, z_val, y_val, k=self.knn_k,
                                              metric=self.knn_metric)
        seconds = time.perf_counter() - start
        self.seconds += seconds
        self._last_iterations = iters
        return out, seconds

    def _keys(self):
        keys = (["probe_acc"] if self._linear else []) + (["knn_acc"] if self.knn_k else [])
        return keys

    def on_epoch_end(self, epoch, logs=None):
        epochs = (self.params or {}).get("epochs")
        due = (epoch + 1) % self.every == 0 or (epochs is not None and epoch + 1 == epochs)
        if not due:
            if logs is not None:
                for k in self._keys():
                    logs[self.prefix + k] = float("nan")
            return
        values, seconds = self.evaluate(self.model)
        self.records.append({"epoch": int(epoch), **values, "seconds": seconds,
                             "iterations": self._last_iterations})
        if logs is not None:
            for k, v in values.items():
                logs[self.prefix + k] = v


class KNNMonitor(OnlineProbe):
    """k-NN accuracy of the encoder on held-out labelled data during ``fit`` (``knn_acc``).

    The same protocol as :class:`OnlineProbe` without the linear head: at the end of every
    ``every``-th epoch, the validation features are classified by a majority vote of
    their ``k`` nearest labelled features (cosine distance by default;
    :func:`~ldm_keras.evaluation.knn_predict`). The validation labels are used only to
    count the correct votes.

    Example:
        >>> knn = ldm.callbacks.KNNMonitor(x[idx], y[idx], x_test, y_test, k=5)
        >>> model.fit(x, epochs=60, callbacks=[knn])
    """

    _linear = False

    def __init__(self, x_labelled, y_labelled, x_val, y_val, k=20, metric="cosine", every=1,
                 space="representation", features=None, batch_size=1024, prefix=""):
        super().__init__(x_labelled, y_labelled, x_val, y_val, every=every, knn_k=k,
                         knn_metric=metric, space=space, features=features,
                         batch_size=batch_size, prefix=prefix)
