"""Pictures of a self-supervised run: embeddings, training curves, latent trajectories.

Needs ``matplotlib`` (an optional dependency: ``pip install matplotlib`` or
``pip install ldm-keras[plots]``); it is imported only when a function here is called.
Every function builds a ``matplotlib.figure.Figure`` without pyplot (no global figure
state, no GUI backend needed), returns it and, with ``path=``, also writes it as a PNG.
In a notebook the returned figure displays itself.

* :func:`embedding_scatter` — a 2-d view (PCA or t-SNE) of embeddings coloured by label
  or by time;
* :func:`ldm_curves` — the LDM terms (loss, alignment, entropy) and the monitors'
  metrics (``probe_acc``, ``knn_acc``, ``rep_rank``, …) per epoch from a ``History``;
* :func:`latent_trajectories` — latent means over time with ± ``n_std`` bands from
  their (co)variances, e.g. a Kalman filter's predictions and ``S_t``.

Example:
    >>> from ldm_keras import plots
    >>> plots.embedding_scatter(encoder.predict(x_test), labels=y_test, path="pca.png")
    >>> plots.ldm_curves(history, path="curves.png")
"""

import numpy as np

__all__ = ["embedding_scatter", "ldm_curves", "latent_trajectories", "pca_2d"]

#: The ``History`` keys :func:`ldm_curves` plots by default, in this order (those present).
CURVE_KEYS = ("loss", "alignment", "entropy", "probe_acc", "knn_acc", "rep_rank",
              "rep_spread", "rep_shrink", "rep_alignment", "rep_uniformity", "collapsed")


def _figure(**kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "ldm_keras.plots needs matplotlib, which is not installed: "
            "`pip install matplotlib` (or `pip install ldm-keras[plots]`)."
        ) from None
    return Figure(layout="constrained", **kwargs)


def _finish(fig, path, dpi):
    if path is not None:
        path = str(path)
        if not path.lower().endswith(".png"):
            raise ValueError(f"`path` must name a .png file; received {path!r}.")
        fig.savefig(path, dpi=dpi, format="png")
    return fig


def _finite(a, name):
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return a


def pca_2d(z):
    """The first two principal components of ``z`` ``(n, d)``: ``(coords (n, 2), explained
    variance ratio (2,))``.

    ``coords = (z - z̄) V₂`` with ``V₂`` the two leading right singular vectors of the
    centred data; each component's sign is fixed so that its largest-magnitude loading
    is positive.

    Example:
        >>> xy, ratio = pca_2d(z)
    """
    z = np.asarray(z, dtype="float64")
    centred = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    v = vt[:2].T
    signs = np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(v.shape[1])])
    v = v * np.where(signs == 0, 1.0, signs)
    var = s ** 2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return centred @ v, ratio


def embedding_scatter(z, labels=None, time=None, method="pca", path=None, ax=None,
                      title=None, seed=0, perplexity=30.0, point_size=8.0, dpi=120):
    """A 2-d scatter of embeddings, coloured by label (discrete) or time (continuous).

    The embeddings ``z`` ``(n, d)`` — or sequences ``(B, T, d)``, flattened to
    ``B·T`` points — are projected to two dimensions by

    * ``method="pca"``: the two leading principal components (:func:`pca_2d`); the axes
      say how much variance each keeps;
    * ``method="tsne"``: scikit-learn's ``TSNE(n_components=2, init="pca",
      random_state=seed, perplexity=min(perplexity, (n - 1) / 3))``;
    * ``method="none"``: the first two coordinates as they are.

    With ``labels`` (one per point) each class is one scatter in its own colour, with a
    legend; with ``time`` (one number per point; for sequences the step index is the
    default) one scatter coloured by a colour bar. Axes ``ax`` of an existing figure may
    be given.

    Returns:
        The ``Figure`` (also written to ``path``, a ``.png``, when given).

    Example:
        >>> fig = embedding_scatter(z_test, labels=y_test, method="tsne", path="tsne.png")
        >>> fig = embedding_scatter(out["latents"], path="latents_by_time.png")  # (B, T, L)
    """
    z = np.asarray(z)
    if z.ndim == 3:
        steps = z.shape[1]
        if labels is None and time is None:
            time = np.tile(np.arange(steps), z.shape[0])
        z = z.reshape(-1, z.shape[-1])
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"`z` must have shape (n >= 2, d) or (batch, time, d); received "
                         f"shape {np.shape(z)}.")
    z = _finite(z.astype("float64"), "z")
    n = z.shape[0]
    if labels is not None and time is not None:
        raise ValueError("Give `labels` or `time`, not both.")
    for arr, name in ((labels, "labels"), (time, "time")):
        if arr is not None and np.asarray(arr).reshape(-1).shape[0] != n:
            raise ValueError(f"`{name}` must have one entry per point ({n}); received "
                             f"shape {np.shape(arr)}.")
    if method not in ("pca", "tsne", "none"):
        raise ValueError(f"`method` must be 'pca', 'tsne' or 'none'; received {method!r}.")
    if method == "pca":
        if z.shape[1] < 2:
            raise ValueError(f"PCA to 2-d needs at least 2 features; received {z.shape[1]}.")
        xy, ratio = pca_2d(z)
        axis_names = [f"PC {i + 1} ({100 * r:.0f} % var.)" for i, r in enumerate(ratio)]
    elif method == "tsne":
        from sklearn.manifold import TSNE

        perp = float(min(perplexity, max((n - 1) / 3.0, 1.0)))
        xy = TSNE(n_components=2, init="pca", random_state=seed,
                  perplexity=perp).fit_transform(z)
        axis_names = ["t-SNE 1", "t-SNE 2"]
    else:
        if z.shape[1] < 2:
            raise ValueError(f"`method='none'` needs at least 2 features; received "
                             f"{z.shape[1]}.")
        xy = z[:, :2]
        axis_names = ["z 1", "z 2"]
    if ax is None:
        fig = _figure(figsize=(5.5, 4.5))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        classes = np.unique(labels)
        from matplotlib import colormaps

        palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, c in enumerate(classes):
            sel = labels == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=point_size, color=palette(i % palette.N),
                       label=str(c), linewidths=0)
        ax.legend(title="label", fontsize="small", markerscale=2, loc="best",
                  ncols=2 if len(classes) > 10 else 1)
    elif time is not None:
        time = np.asarray(time, dtype="float64").reshape(-1)
        points = ax.scatter(xy[:, 0], xy[:, 1], s=point_size, c=time, cmap="viridis",
                            linewidths=0)
        fig.colorbar(points, ax=ax, label="time")
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=point_size, linewidths=0)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title or f"embedding ({method}, {n} points, d = {z.shape[1]})")
    return _finish(fig, path, dpi)


def _history_dict(history):
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise ValueError(f"`history` must be a keras History or a dict of per-epoch lists; "
                         f"received {type(history).__name__}.")
    return h


def ldm_curves(history, keys=None, path=None, ncols=3, title=None, dpi=120):
    """Per-epoch curves of the LDM terms and monitor metrics from a ``fit`` history.

    One panel per key: by default the keys of :data:`CURVE_KEYS` present in the history
    — ``loss``, ``alignment``, ``entropy`` (the objective's terms), ``probe_acc`` /
    ``knn_acc`` (:class:`~ldm_keras.callbacks.OnlineProbe`), ``rep_rank``,
    ``rep_spread``, ``rep_shrink``, ``rep_alignment``, ``rep_uniformity`` and
    ``collapsed`` (:class:`~ldm_keras.callbacks.RepresentationMonitor`). A ``val_<key>``
    in the history is drawn dashed on its key's panel. Epochs are numbered from 1; ``NaN``
    entries (epochs without a probe) leave gaps.

    Args:
        history: the ``History`` returned by ``fit`` or its ``.history`` dict.
        keys: the keys to draw (default: see above).
        path: optional ``.png`` to write.
        ncols: panels per row.

    Returns:
        The ``Figure``.

    Example:
        >>> history = model.fit(x, epochs=60, callbacks=[probe, monitor])
        >>> ldm_curves(history, path="curves.png")
    """
    h = _history_dict(history)
    if keys is None:
        keys = [k for k in CURVE_KEYS if k in h]
    else:
        keys = [keys] if isinstance(keys, str) else list(keys)
        missing = [k for k in keys if k not in h]
        if missing:
            raise ValueError(f"The history has no {missing}; it has {sorted(h)}.")
    if not keys:
        raise ValueError(f"None of {list(CURVE_KEYS)} is in the history (keys: {sorted(h)}); "
                         "pass `keys=`.")
    ncols = max(1, min(int(ncols), len(keys)))
    nrows = int(np.ceil(len(keys) / ncols))
    fig = _figure(figsize=(3.6 * ncols, 2.8 * nrows))
    for i, key in enumerate(keys):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        y = np.asarray(h[key], dtype="float64")
        epochs = np.arange(1, len(y) + 1)
        ax.plot(epochs, y, marker="." if len(y) <= 30 else None, label=key)
        if "val_" + key in h:
            yv = np.asarray(h["val_" + key], dtype="float64")
            ax.plot(np.arange(1, len(yv) + 1), yv, linestyle="--", label="val_" + key)
            ax.legend(fontsize="small")
        if key == "collapsed":                      # a 0/1 flag
            ax.set_ylim(-0.05, 1.05)
            ax.set_yticks([0, 1])
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _finish(fig, path, dpi)


def latent_trajectories(mean, cov=None, time=None, observed=None, dims=None, n_std=2.0,
                        path=None, title=None, dpi=120):
    """Latent means over time with ± ``n_std`` standard-deviation bands, one panel per dim.

    For one sequence: ``mean`` ``(T, L)`` (e.g. a Kalman filter's ``prediction`` or
    ``state_mean`` for one window) and ``cov`` either full covariances ``(T, L, L)``
    (``prediction_cov`` = ``S_t``, ``state_cov``) or variances ``(T, L)``; panel ``j``
    shows ``mean[:, j]`` and the band ``mean[:, j] ± n_std · sqrt(cov[:, j, j])``.
    ``observed`` ``(T, L)`` (e.g. the encoder's latents ``z_t`` that the filter
    predicts) is drawn as dots.

    Args:
        mean: ``(T, L)``.
        cov: ``None``, ``(T, L, L)`` or ``(T, L)`` (non-negative variances).
        time: ``(T,)`` time axis (default ``0..T-1``).
        observed: optional ``(T, L)``.
        dims: which latent dimensions to draw (default all, at most 8).
        n_std: band half-width in standard deviations (default 2: ≈ 95 %).

    Returns:
        The ``Figure``.

    Example:
        >>> out = model.predict(frames[:1])          # a PredictiveLDM with a Kalman filter
        >>> latent_trajectories(out["prediction"][0], out["prediction_cov"][0],
        ...                     observed=out["latents"][0], path="trajectory.png")
    """
    mean = np.asarray(mean, dtype="float64")
    if mean.ndim != 2:
        raise ValueError(f"`mean` must have shape (time, latents); received {mean.shape} "
                         "(for a batch, pass one sequence, e.g. mean[0]).")
    _finite(mean, "mean")
    steps, size = mean.shape
    std = None
    if cov is not None:
        cov = _finite(np.asarray(cov, dtype="float64"), "cov")
        if cov.shape == (steps, size, size):
            var = np.diagonal(cov, axis1=1, axis2=2)
        elif cov.shape == (steps, size):
            var = cov
        else:
            raise ValueError(f"`cov` must have shape {(steps, size, size)} (covariances) or "
                             f"{(steps, size)} (variances); received {cov.shape}.")
        if np.any(var < 0):
            raise ValueError("`cov` has negative variances.")
        std = np.sqrt(var)
    t = np.arange(steps, dtype="float64") if time is None else np.asarray(time, "float64")
    if t.shape != (steps,):
        raise ValueError(f"`time` must have shape ({steps},); received {t.shape}.")
    if observed is not None:
        observed = _finite(np.asarray(observed, dtype="float64"), "observed")
        if observed.shape != mean.shape:
            raise ValueError(f"`observed` must have the shape of `mean` {mean.shape}; "
                             f"received {observed.shape}.")
    dims = list(range(min(size, 8))) if dims is None else [int(d) for d in dims]
    if not dims or any(not 0 <= d < size for d in dims):
        raise ValueError(f"`dims` must name latent dimensions in [0, {size}); received "
                         f"{dims}.")
    n_std = float(n_std)
    if not n_std > 0:
        raise ValueError(f"`n_std` must be > 0; received {n_std!r}.")
    fig = _figure(figsize=(7.0, 1.9 * len(dims) + 0.6))
    for i, d in enumerate(dims):
        ax = fig.add_subplot(len(dims), 1, i + 1)
        line, = ax.plot(t, mean[:, d], label="mean")
        if std is not None:
            ax.fill_between(t, mean[:, d] - n_std * std[:, d], mean[:, d] + n_std * std[:, d],
                            color=line.get_color(), alpha=0.25, linewidth=0,
                            label=f"± {n_std:g} sd")
        if observed is not None:
            ax.plot(t, observed[:, d], ".", color="k", markersize=3, label="observed")
        ax.set_ylabel(f"z{d + 1}")
        if i == 0:
            ax.legend(fontsize="small", loc="upper right", ncols=3)
        if i == len(dims) - 1:
            ax.set_xlabel("time step")
    if title:
        fig.suptitle(title)
    return _finish(fig, path, dpi)
