"""Label-free diagnostics during ``fit``: effective rank, spread, alignment, uniformity."""

import time
import warnings

import keras
import numpy as np
from threadpoolctl import threadpool_limits

from ..evaluation import representation as R
from . import _features

__all__ = ["CollapseWarning", "RepresentationMonitor"]


class CollapseWarning(UserWarning):
    """Issued by :class:`RepresentationMonitor` when the monitored embedding collapses.

    Example:
        >>> import warnings
        >>> warnings.simplefilter("error", ldm.callbacks.CollapseWarning)  # stop on collapse
    """


def _check_threshold(value, name, upper=None):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number >= 0; received {value!r}.") from None
    if not v >= 0 or (upper is not None and v > upper):
        bound = f"in [0, {upper}]" if upper is not None else ">= 0"
        raise ValueError(f"`{name}` must be a number {bound}; received {value!r}.")
    return v


class RepresentationMonitor(keras.callbacks.Callback):
    """Effective rank, per-dimension spread, alignment and uniformity on a fixed batch.

    Every ``every`` training steps (and at every epoch end) the callback embeds the fixed
    batch ``x_batch`` with the current encoder (detached, inference mode) and computes,
    with :mod:`ldm_keras.evaluation.representation`:

    * ``rep_rank`` — the effective rank (RankMe) of the embeddings ``Z`` ``(n, d)``;
    * ``rep_std_min`` / ``rep_std_mean`` — the smallest and the mean per-dimension
      standard deviation of the L2-normalised embeddings, and ``rep_spread`` =
      ``√d · rep_std_mean`` (≈ 1 for embeddings spread evenly over the sphere,
      0 when collapsed; scale-free);
    * ``rep_shrink`` — the mean per-dimension standard deviation of the *raw*
      embeddings divided by its value at the monitor's first measurement (the start of
      its first ``fit``): below 1 the embeddings have contracted;
    * ``rep_alignment`` — Wang & Isola's alignment ``E‖ẑ₁ - ẑ₂‖²`` of positive pairs:
      two views of the batch (multi-view models), or consecutive frames
      ``(z_t, z_{t+1})`` (sequence models);
    * ``rep_uniformity`` — Wang & Isola's ``log E exp(-2‖ẑ_i - ẑ_j‖²)``;
    * ``collapsed`` — 1.0 when the embedding has collapsed (below), else 0.0.

    **Collapse.** The embedding counts as collapsed when any of

    1. ``rep_spread < min_spread`` (default 0.06): the latents all point (nearly) the
       same way;
    2. ``rep_rank < min_rank_fraction · d`` (default 0.03): the embeddings fill far
       fewer than the ``d`` latent dimensions — for ``d = 64``, an effective rank
       below 1.92;
    3. ``rep_shrink < min_shrink`` (default 0.1): the spread of the raw embeddings has
       fallen below a tenth of what it was at the start — the contraction of
       unnormalised latents towards a point, which the scale-free measures cannot see.

    holds. On the transition into that state a :class:`CollapseWarning` is issued (once
    per collapse, not at every measurement). The defaults sit between the runs that
    collapse and those that do not on the scikit-learn digits (conv encoder, batch 256,
    three seeds, 30 epochs) and on DotMotion sequences: BYOL and SimSiam without their
    predictor and a predictive model without entropy cross them, while the multi-view
    recipes stay above them at every epoch; the measurements are in
    ``benchmarks/collapse_thresholds.py``. One caveat: the ``categorical`` recipe's
    latents are softmax outputs that start out nearly uniform — all alike — and spread
    out during the first epochs; monitor it with ``space="representation"``.

    The statistics are logged into the batch logs at measured steps and into the epoch
    logs (so they appear in the progress bar and ``History.history``); every
    measurement is also kept in :attr:`records` (with its global step).

    Which embedding: ``space="latents"`` (default) is the space the objective sees —
    ``projector(encoder(x))`` of a :class:`~ldm_keras.models.MultiViewLDM`, the
    per-frame latents of sequence models (pooled over batch × time); collapse happens
    there first (the encoder's output before a projector can keep its spread while the
    projected latents collapse). ``space="representation"`` uses ``encoder(x)``.

    The two views of a multi-view model are drawn once, at the start of the first
    ``fit``, with a copy of the model's view generator (so the model's own random
    stream is left alone; a view callable that is not a Keras layer is called
    directly), and then kept fixed: the measurements change only because the encoder
    does. ``x_batch`` may also be a pair ``(x1, x2)`` of views.

    Args:
        x_batch: a fixed batch (samples, sequences ``(B, T, *frame)``, or a pair of views).
        every: measure every ``every`` training steps, or ``None`` (default) for epoch
            ends only.
        space: ``"latents"`` (default) or ``"representation"``.
        min_spread, min_rank_fraction, min_shrink: the collapse thresholds above.
        alignment: compute ``rep_alignment`` (default True; False skips drawing the two
            views, which runs the view generator eagerly once per ``fit``).
        warn: issue :class:`CollapseWarning` (default True).
        features: optional ``callable(model, x) -> array`` replacing the encoder.
        batch_size: chunk size of the encoder passes (default 1024).
        prefix: prefix of the metric keys (default ``"rep_"``; ``collapsed`` has none).

    Example:
        >>> monitor = ldm.callbacks.RepresentationMonitor(x[:512], every=50)
        >>> history = model.fit(x, epochs=60, callbacks=[monitor])
        >>> history.history["rep_rank"][-1], history.history["collapsed"][-1]
    """

    def __init__(self, x_batch, every=None, space="latents", min_spread=0.06,
                 min_rank_fraction=0.03, min_shrink=0.1, alignment=True, warn=True,
                 features=None, batch_size=1024, prefix="rep_"):
        super().__init__()
        if isinstance(x_batch, (tuple, list)):
            if len(x_batch) != 2:
                raise ValueError(f"`x_batch` must be an array or a pair (x1, x2) of views; "
                                 f"received a sequence of {len(x_batch)} arrays.")
            a, b = np.asarray(x_batch[0]), np.asarray(x_batch[1])
            if a.shape != b.shape:
                raise ValueError(f"The two views in `x_batch` must have the same shape; "
                                 f"received {a.shape} and {b.shape}.")
            self.x_batch, self._pair = a, (a, b)
        else:
            self.x_batch, self._pair = np.asarray(x_batch), None
        if self.x_batch.ndim < 2 or len(self.x_batch) < 2:
            raise ValueError(f"`x_batch` must hold at least 2 samples (shape (n, ...)); "
                             f"received shape {self.x_batch.shape}.")
        if every is not None and (isinstance(every, bool) or not isinstance(
                every, (int, np.integer)) or every < 1):
            raise ValueError(f"`every` must be None (epoch ends) or an int >= 1 (steps); "
                             f"received {every!r}.")
        self.every = None if every is None else int(every)
        self.space = _features.check_space(space)
        self.min_spread = _check_threshold(min_spread, "min_spread")
        self.min_rank_fraction = _check_threshold(min_rank_fraction, "min_rank_fraction", 1.0)
        self.min_shrink = _check_threshold(min_shrink, "min_shrink")
        self.warn = bool(warn)
        self.alignment = bool(alignment)
        self.features = _features.check_callable(features)
        self.batch_size = int(batch_size)
        self.prefix = str(prefix)
        self.records = []
        self.seconds = 0.0
        self.reference_std = None
        self.latent_size = None
        self._views = None
        self._collapsed = False
        self._step = 0

    # -- what to embed ---------------------------------------------------------------------
    def _embed(self, model, x):
        if self.features is not None:
            return np.asarray(keras.ops.convert_to_numpy(self.features(model, x)), "float64")
        return _features.features(model, x, self.space, self.batch_size)

    def _make_views(self, model):
        if not self.alignment:
            return None
        if self._pair is not None:
            return self._pair
        if _features.is_sequence_data(model, self.x_batch):
            return None
        views = getattr(model, "views", None)
        if views is None:
            return None
        if isinstance(views, keras.layers.Layer):
            try:
                views = views.__class__.from_config(views.get_config())
            except Exception:  # noqa: BLE001 - fall back to the model's own generator
                views = model.views
            call = lambda x: views(x, training=True)  # noqa: E731
        else:
            call = views
        x = self.x_batch.astype("float32") if np.issubdtype(self.x_batch.dtype, np.floating) \
            else self.x_batch
        return (np.asarray(keras.ops.convert_to_numpy(call(x))),
                np.asarray(keras.ops.convert_to_numpy(call(x))))

    # -- measuring -----------------------------------------------------------------------------
    def measure(self, model=None):
        """The statistics of the current embedding of the batch, as a dict (no side effects
        besides setting the reference spread on the first call)."""
        model = self.model if model is None else model
        start = time.perf_counter()
        z = self._embed(model, self.x_batch)
        pairs = None
        if z.ndim == 3:                                      # sequences (B, T, L)
            if z.shape[1] >= 2 and self.alignment:
                pairs = (z[:, :-1].reshape(-1, z.shape[-1]), z[:, 1:].reshape(-1, z.shape[-1]))
            z = z.reshape(-1, z.shape[-1])
        elif self._views is not None:
            pairs = (self._embed(model, self._views[0]), self._embed(model, self._views[1]))
        d = self.latent_size = z.shape[1]
        # small NumPy problems: one BLAS thread (a thread pool costs more than the work)
        with threadpool_limits(limits=1, user_api="blas"):
            std = R.dimension_std(z)
            raw = float(np.mean(z.std(axis=0)))
            if self.reference_std is None:
                self.reference_std = raw
            p = self.prefix
            out = {
                p + "rank": R.effective_rank(z),
                p + "std_min": float(std.min()),
                p + "std_mean": float(std.mean()),
                p + "spread": float(std.mean() * np.sqrt(d)),
                p + "shrink": raw / self.reference_std if self.reference_std > 0 else 1.0,
                p + "uniformity": R.uniformity(z),
            }
            if pairs is not None:
                out[p + "alignment"] = R.alignment(*pairs)
        out["collapsed"] = float(self._is_collapsed(out, d))
        self.seconds += time.perf_counter() - start
        return out

    def _is_collapsed(self, s, d):
        p = self.prefix
        return (s[p + "spread"] < self.min_spread
                or s[p + "rank"] < self.min_rank_fraction * d
                or s[p + "shrink"] < self.min_shrink)

    def _record(self, logs, epoch=None):
        model = self.model
        values = self.measure(model)
        self.records.append({"step": self._step, "epoch": epoch, **values})
        collapsed = bool(values["collapsed"])
        if collapsed and not self._collapsed and self.warn:
            p = self.prefix
            warnings.warn(
                f"The embedding has collapsed at training step {self._step}: effective rank "
                f"{values[p + 'rank']:.2f} (latent size {self.latent_size}), spread "
                f"{values[p + 'spread']:.3f}, shrink {values[p + 'shrink']:.3f} (thresholds: "
                f"rank < {self.min_rank_fraction} · size, spread < {self.min_spread}, shrink "
                f"< {self.min_shrink}). Check the entropy term (weight, estimator) or the "
                "stop-gradient / predictor of the recipe.", CollapseWarning, stacklevel=2)
        self._collapsed = collapsed
        if logs is not None:
            logs.update(values)
        return values

    # -- Keras hooks ---------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        model = self.model
        if self._views is None:
            self._views = self._make_views(model)
        if self.reference_std is None:
            self.measure(model)  # sets the reference spread (the untrained encoder's)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.every is not None and self._step % self.every == 0:
            self._record(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._record(logs, epoch=int(epoch))
