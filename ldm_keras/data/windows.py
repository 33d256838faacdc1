"""Cut long recordings into fixed-length training windows for the sequence models.

A *series* is one recording with time first: ``(T, features)`` or ``(T, H, W, C)``
(any frame shape). :func:`windows` cuts one series or many (of different lengths) into
windows ``(num_windows, length, *frame_shape)`` — the input of
:class:`~ldm_keras.models.PredictiveLDM`, ``CPCLDM`` and ``JEPALDM`` — and, optionally,
cuts ground-truth arrays (positions, latent states) alongside.

Accepted series:

* a NumPy array (one series) or a list/tuple of arrays (many series). A stacked array
  ``(N, T, F)`` is *one* series of ``N`` frames; pass ``list(arr)`` for ``N`` series;
* any array-like with ``shape`` and slicing (backend tensors, memory maps, an
  ``h5py.Dataset`` or a list of them): read lazily, one block of windows at a time
  (:func:`iter_windows` never holds more than ``batch_size`` windows in memory);
* a ``tf.data.Dataset`` whose elements are whole series (e.g.
  ``tf.data.Dataset.from_tensor_slices(stacked)`` or a generator of variable-length
  series); TensorFlow is only touched when such an object is passed.

Window ``i`` of a series ``s`` is ``s[i·stride : i·stride + length]``; every series is
windowed separately (windows never straddle two series), and a series shorter than
``length`` is a ``ValueError`` that names it.

Example:
    >>> x = windows([rec_a, rec_b], length=20, stride=5, shuffle=True, seed=0)
    >>> x, y = windows(frames, length=20, targets=positions)        # y: (n, 20, 2)
"""

import numpy as np

from .._validation import check_int

__all__ = ["iter_windows", "window_index", "windows"]


def _is_h5(obj):
    return type(obj).__module__.startswith("h5py") and hasattr(obj, "shape")


def _is_tf_dataset(obj):
    return type(obj).__module__.startswith("tensorflow") and hasattr(obj, "as_numpy_iterator")


def _as_series_list(series, name):
    """A list of array-likes (NumPy arrays or h5py datasets), one per series."""
    if _is_tf_dataset(series):
        return [np.asarray(s) for s in series.as_numpy_iterator()]
    if isinstance(series, (list, tuple)):
        items = list(series)
    else:
        items = [series]
    out = []
    for i, s in enumerate(items):
        if _is_tf_dataset(s):
            raise ValueError(f"`{name}`: a tf.data.Dataset must be passed on its own (its "
                             f"elements are the series), not inside a list (item {i}).")
        if not (hasattr(s, "shape") and hasattr(s, "__getitem__")):
            s = np.asarray(s)  # lists; array-likes with a shape are sliced lazily
        out.append(s)
    if not out:
        raise ValueError(f"`{name}` holds no series.")
    return out


def _check_series(items, name, length=None):
    frame = None
    for i, s in enumerate(items):
        shape = tuple(s.shape)
        if len(shape) < 2:
            raise ValueError(
                f"`{name}` series {i} must have time first and at least one feature axis, "
                f"(T, features) or (T, H, W, C); received shape {shape}.")
        if frame is None:
            frame = shape[1:]
        elif shape[1:] != frame:
            raise ValueError(
                f"All series of `{name}` must have the same frame shape; series 0 has "
                f"frames of shape {frame}, series {i} has {shape[1:]} (shape {shape}).")
        if length is not None and shape[0] < length:
            raise ValueError(
                f"`{name}` series {i} has {shape[0]} time steps, fewer than the window "
                f"length {length}; use a shorter window or drop that series.")
    return frame


def window_index(lengths, length, stride=1, shuffle=False, seed=0):
    """``(series, start)`` pairs of every window, shape ``(num_windows, 2)``, int64.

    Series ``s`` of length ``T_s`` gives the starts ``0, stride, …`` up to
    ``T_s - length``; with ``shuffle`` the pairs are permuted across all series by
    ``numpy.random.default_rng(seed)``.

    Example:
        >>> window_index([5, 4], length=3, stride=1).tolist()
        [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]]
    """
    length = check_int(length, "length", 1)
    stride = check_int(stride, "stride", 1)
    parts = []
    for i, t in enumerate(lengths):
        if t < length:
            raise ValueError(f"Series {i} has {t} time steps, fewer than the window length "
                             f"{length}.")
        starts = np.arange(0, t - length + 1, stride, dtype="int64")
        parts.append(np.stack([np.full_like(starts, i), starts], axis=1))
    index = np.concatenate(parts) if parts else np.zeros((0, 2), "int64")
    if shuffle:
        index = index[np.random.default_rng(seed).permutation(len(index))]
    return index


def _take(items, index, length, dtype):
    """Windows ``items[s][t:t+length]`` for the rows of ``index`` (reads slices only)."""
    out = None
    # group reads by series, in increasing start order, one contiguous slice per run
    order = np.lexsort((index[:, 1], index[:, 0]))
    for s in np.unique(index[:, 0]):
        rows = order[index[order, 0] == s]
        starts = index[rows, 1]
        lo, hi = int(starts.min()), int(starts.max()) + length
        if hi - lo <= len(rows) * length:  # dense: one contiguous read
            block = np.asarray(items[int(s)][lo:hi])
            pieces = (block[t - lo: t - lo + length] for t in starts)
        else:  # sparse (shuffled): read each window on its own
            pieces = (np.asarray(items[int(s)][int(t): int(t) + length]) for t in starts)
        for r, piece in zip(rows, pieces):
            if out is None:
                out = np.empty((len(index),) + piece.shape, dtype=dtype or piece.dtype)
            out[r] = piece
    return out


def iter_windows(series, length, stride=1, *, targets=None, batch_size=256, shuffle=False,
                 seed=0, dtype="float32"):
    """Yield the windows of :func:`windows` in batches of at most ``batch_size``.

    Only the rows that a batch needs are read (one contiguous slice per series per batch,
    or one slice per window when the batch's windows are spread out, e.g. shuffled), so
    h5py datasets larger than memory can be windowed; NumPy inputs are sliced.
    Yields ``x`` or ``(x, y)`` with ``targets``.

    Example:
        >>> for x in iter_windows(h5file["frames"], length=50, stride=10, batch_size=64):
        ...     model.train_on_batch(x)
    """
    length = check_int(length, "length", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    items = _as_series_list(series, "series")
    _check_series(items, "series", length)
    tgt = None
    if targets is not None:
        tgt = _as_series_list(targets, "targets")
        if len(tgt) != len(items):
            raise ValueError(f"`targets` must hold one array per series of `series` "
                             f"({len(items)}); received {len(tgt)}.")
        for i, (s, y) in enumerate(zip(items, tgt)):
            if len(y.shape) < 1 or y.shape[0] != s.shape[0]:
                rows = y.shape[0] if len(y.shape) else "no"
                raise ValueError(
                    f"`targets` series {i} has {rows} rows (shape {tuple(y.shape)}) but "
                    f"`series` series {i} has {s.shape[0]} time steps; expected one row of "
                    "`targets` per time step (the same length).")
    index = window_index([s.shape[0] for s in items], length, stride, shuffle, seed)
    for b in range(0, len(index), batch_size):
        rows = index[b: b + batch_size]
        x = _take(items, rows, length, dtype)
        if tgt is None:
            yield x
        else:
            yield x, _take(tgt, rows, length, dtype)


def windows(series, length, stride=1, *, targets=None, shuffle=False, seed=0,
            dtype="float32", chunk_windows=256):
    """Cut one or many series into windows ``(num_windows, length, *frame_shape)``.

    ``windows[j] = series[s_j][t_j : t_j + length]`` for the ``(s_j, t_j)`` of
    :func:`window_index` (starts every ``stride`` steps, each series on its own,
    optionally shuffled across series with ``seed``). h5py datasets are read
    ``chunk_windows`` windows at a time (see :func:`iter_windows`).

    Args:
        series: an array / h5py dataset (one series), a list of them (many series,
            lengths may differ) or a ``tf.data.Dataset`` of series.
        length: window length (time steps).
        stride: steps between window starts (default 1).
        targets: optional ground truth with the same structure (one row per time
            step, e.g. positions ``(T, 2)``), windowed alongside.
        shuffle, seed: shuffle the windows across series.
        dtype: output dtype (default float32; ``None`` keeps the input's).
        chunk_windows: windows per read for lazy inputs.

    Returns:
        ``x``, or ``(x, y)`` with ``targets``.

    Raises:
        ValueError: a series shorter than ``length`` (named), frames of different shapes
            across series, targets that do not match the series, or no series.

    Example:
        >>> x = windows(np.zeros((100, 3)), length=10, stride=5)      # (19, 10, 3)
        >>> x, y = windows([a, b], 20, targets=[pos_a, pos_b], shuffle=True)
    """
    parts = list(iter_windows(series, length, stride, targets=targets, shuffle=shuffle,
                              seed=seed, dtype=dtype, batch_size=chunk_windows))
    if not parts:  # unreachable: a series of length >= window gives >= 1 window
        raise ValueError("No windows: every series is shorter than the window.")
    if targets is None:
        return np.concatenate(parts)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
