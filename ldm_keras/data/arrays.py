"""Users' own images: checked NumPy arrays and HDF5 files (through h5py, no pickle).

Example:
    >>> x, y = from_arrays(my_images, my_labels, rank=4)        # float32, checked
    >>> save_h5("data.h5", x, y)
    >>> x, y = load_h5("data.h5", "x", labels="y")
"""

import os

import numpy as np

__all__ = ["from_arrays", "load_h5", "save_h5"]


def from_arrays(x, y=None, rank=None, name="x", scale=None):
    """Check a data array (and its labels) and return it as float32.

    Checks: numeric (or boolean) dtype, the expected ``rank`` (e.g. 4 for images
    ``(n, H, W, C)``; None accepts any rank >= 2), at least one sample, every value
    finite; labels, when given, one per sample along the first axis.

    Args:
        x: array-like of samples, first axis the sample axis.
        y: optional labels (returned as a NumPy array of their own dtype; integer
            labels become int32, a trailing axis of size 1 is dropped).
        rank: expected number of dimensions of ``x``, or None.
        name: the name used in error messages.
        scale: optional number to divide ``x`` by (e.g. 255 for 8-bit images).

    Returns:
        ``x`` as float32, or ``(x, y)`` when labels are given.

    Raises:
        ValueError: naming what was expected and what was received.

    Example:
        >>> x = from_arrays(np.random.rand(10, 8, 8, 1), rank=4)
    """
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"`{name}` must be a numeric array; received dtype {arr.dtype}.")
    if rank is not None and arr.ndim != rank:
        raise ValueError(f"`{name}` must have rank {rank}; received shape {arr.shape} "
                         f"(rank {arr.ndim}).")
    if rank is None and arr.ndim < 2:
        raise ValueError(f"`{name}` must have a sample axis and at least one feature axis "
                         f"(rank >= 2); received shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` holds no samples (shape {arr.shape}).")
    arr = arr.astype("float32")
    if scale is not None:
        s = float(scale)
        if not np.isfinite(s) or s == 0.0:
            raise ValueError(f"`scale` must be a finite non-zero number; received {scale!r}.")
        arr = arr / np.float32(s)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"`{name}` contains {bad} NaN or infinite values.")
    if y is None:
        return arr
    lab = np.asarray(y)
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim < 1 or lab.shape[0] != arr.shape[0]:
        raise ValueError(f"The labels must have one entry per sample of `{name}` "
                         f"({arr.shape[0]}); received labels of shape {lab.shape}.")
    if np.issubdtype(lab.dtype, np.integer):
        lab = lab.astype("int32")
    return arr, lab


def open_h5(path):
    """Open an HDF5 file for reading (a ``ValueError`` naming a missing or unreadable file)."""
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"HDF5 file not found: {path!r}.")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"Could not open {path!r} as an HDF5 file: {err}") from None


def dataset_names(f):
    """The names of every dataset in an open HDF5 file, sorted."""
    import h5py

    names = []
    f.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def _read(f, key, path):
    import h5py

    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        raise ValueError(f"No dataset {key!r} in {path!r}; available datasets: "
                         f"{dataset_names(f)}.")
    return obj[()]


def load_h5(path, dataset, labels=None, rank=None, scale=None):
    """Read images (and labels) from an HDF5 file into checked NumPy arrays.

    Args:
        path: the ``.h5`` file.
        dataset: name (path inside the file) of the data array, e.g. ``"x"`` or
            ``"train/images"``.
        labels: optional name of the label array.
        rank, scale: as in :func:`from_arrays` (e.g. ``rank=4``, ``scale=255``).

    Returns:
        float32 ``x``, or ``(x, y)`` with labels.

    Raises:
        ValueError: for a missing file, a file that is not HDF5, or a missing dataset
            (the message lists the datasets the file holds), or failed checks.

    Example:
        >>> x, y = load_h5("images.h5", "x", labels="y", rank=4)
    """
    with open_h5(path) as f:
        x = _read(f, dataset, os.fspath(path))
        y = None if labels is None else _read(f, labels, os.fspath(path))
    return from_arrays(x, y, rank=rank, name=dataset, scale=scale)


def save_h5(path, x, y=None, dataset="x", labels="y", compression="gzip"):
    """Write ``x`` (and labels ``y``) to a new HDF5 file (overwriting it).

    Example:
        >>> save_h5("images.h5", x, y)            # datasets "x" and "y"
    """
    import h5py

    with h5py.File(os.fspath(path), "w") as f:
        f.create_dataset(dataset, data=np.asarray(x), compression=compression)
        if y is not None:
            f.create_dataset(labels, data=np.asarray(y), compression=compression)
    return os.fspath(path)
