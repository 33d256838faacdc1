"""Datasets by name: what ``ldm-keras train --dataset NAME`` and the training jobs read.

* images (:func:`load_image_dataset`): ``digits``, ``digits-pairs``, ``cifar10``,
  ``cifar100``, or ``path/to/file.h5:images[:labels]``;
* sequences (:func:`load_sequence_dataset`): ``dotmotion-<preset>``,
  ``state-space-<preset>``, or ``path/to/file.h5:frames[:targets]``.

Example:
    >>> (x, y), (x_test, y_test) = load_image_dataset("digits")
    >>> (f, pos), (f_test, pos_test), info = load_sequence_dataset("dotmotion-circular")
"""

import os

import numpy as np

from .._validation import check_int
from . import arrays, cifar, digits, dot_motion, state_space
from .windows import windows

#: The named image datasets (besides ``path/to/file.h5:images[:labels]``).
IMAGE_DATASETS = ("digits", "digits-pairs", "cifar10", "cifar100")
#: Default window length for recordings read from HDF5 files.
H5_WINDOW = 32
#: Fraction of each recorded series (its end) held out for evaluation.
H5_TEST_FRACTION = 0.2


def load_image_dataset(name, seed=0):
    """``((x_train, y_train), (x_test, y_test))`` for a dataset name or an HDF5 path.

    Names: ``digits`` (bundled with scikit-learn; 30 % stratified test split, seed 0),
    ``digits-pairs`` (the same images, trained on same-class pairs as the two views —
    the reference clustering protocol; labels are used only to form the pairs),
    ``cifar10`` / ``cifar100`` (downloaded by ``keras.datasets``; needs the network
    once), or ``path/to/file.h5:images[:labels]`` (your own images, NHWC in [0, 1];
    with labels, a random 30 % is held out for evaluation; see
    :func:`ldm_keras.data.arrays.load_h5`).

    Example:
        >>> (x, y), (x_test, y_test) = load_image_dataset("digits")
    """
    if name in ("digits", "digits-pairs"):
        return digits.load_digits(test_size=0.3, seed=seed)
    if name in ("cifar10", "cifar100"):
        return cifar.load_cifar(name)
    if ".h5:" in name or name.endswith(".h5"):
        path, _, rest = name.partition(":")
        parts = rest.split(":") if rest else []
        dataset = parts[0] if parts else "images"
        labels = parts[1] if len(parts) > 1 else None
        x, y = arrays.load_h5(path, dataset, labels=labels)
        if x.ndim == 3:
            x = x[..., None]
        n_test = int(round(0.3 * len(x)))
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(x))
        tr, te = order[n_test:], order[:n_test]
        if y is None:
            return (x[tr], None), (x[te], None)
        return (x[tr], y[tr]), (x[te], y[te])
    known = sorted(IMAGE_DATASETS) + ["path/to/file.h5:dataset[:labels]"]
    raise ValueError(f"Unknown dataset {name!r}; expected one of {known}.")


def _split_h5_spec(name):
    path, _, rest = name.partition(".h5:")
    path = path + ".h5"
    parts = rest.split(":") if rest else []
    if not parts or not parts[0]:
        raise ValueError(f"Expected 'path/to/file.h5:frames[:targets]'; received {name!r}.")
    return path, parts[0], (parts[1] if len(parts) > 1 and parts[1] else None)


def _h5_series(f, key, path):
    """The series under ``key``: a dataset (one series) or a group (one per dataset)."""
    import h5py

    obj = f.get(key)
    if isinstance(obj, h5py.Dataset):
        return [obj]
    if isinstance(obj, h5py.Group):
        names = sorted(n for n, v in obj.items() if isinstance(v, h5py.Dataset))
        if not names:
            raise ValueError(f"Group {key!r} of {path!r} holds no datasets (expected one "
                             "dataset per series).")
        return [obj[n] for n in names]
    raise ValueError(f"No dataset or group {key!r} in {path!r}; available datasets: "
                     f"{arrays.dataset_names(f)}.")


#: Rows read at a time when a recording is checked for NaN / inf.
_CHECK_ROWS = 4096


def check_finite_rows(series, key, path):
    """Raise a ``ValueError`` naming the first row (time step) of a recording that holds
    NaN or inf, before any training: one non-finite frame makes every step that sees it
    non-finite. The series are read ``_CHECK_ROWS`` rows at a time."""
    for i, s in enumerate(series):
        for lo in range(0, s.shape[0], _CHECK_ROWS):
            chunk = np.asarray(s[lo: lo + _CHECK_ROWS])
            if not np.issubdtype(chunk.dtype, np.floating):
                break  # integers and bools hold no NaN
            bad = np.flatnonzero(~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1))
            if bad.size:
                where = f"series {i} of {key!r}" if len(series) > 1 else repr(key)
                raise ValueError(
                    f"{path!r}: row {lo + int(bad[0])} of {where} holds NaN or inf; "
                    "expected finite values in every row — remove or interpolate such "
                    "rows before training.")


def check_target_lengths(series, targets, key, tkey, path):
    """Raise a ``ValueError`` naming both datasets and both lengths unless every target
    series has one row per frame of its series, before any data is read."""
    if len(targets) != len(series):
        raise ValueError(f"{path!r}: targets {tkey!r} hold {len(targets)} series but frames "
                         f"{key!r} hold {len(series)}; expected one target array per series.")
    for i, (s, y) in enumerate(zip(series, targets)):
        if len(y.shape) < 1 or y.shape[0] != s.shape[0]:
            where = f" (series {i})" if len(series) > 1 else ""
            rows = y.shape[0] if len(y.shape) else "no"
            raise ValueError(
                f"{path!r}: targets {tkey!r}{where} have {rows} rows but frames {key!r} "
                f"have {s.shape[0]} time steps; expected one row of targets per frame "
                "(the same length along the first axis).")


def load_sequence_dataset(name, sequences=None, test_sequences=None, window=None,
                          stride=None, seed=0, train_length=None):
    """``((x_train, y_train), (x_test, y_test), info)`` for a sequence dataset.

    ``x`` are windows ``(N, T, *frame)``; ``y`` the ground truth per frame (positions,
    latent states) or ``None``. Names:

    * ``dotmotion-<preset>`` (``circular``, ``circular-noisy``, ``square``,
      ``figure-eight``, ``wobbly``; :data:`ldm_keras.data.dot_motion.PRESETS`): train and
      test splits with distinct seeds, ``y`` = dot positions; ``sequences`` /
      ``test_sequences`` shrink them; sequences are used whole (T = 100) unless
      ``window`` is given (``train_length`` keeps only the first steps of each training
      sequence, before any windowing);
    * ``state-space-<preset>`` (``nonlinear-2d``, ``nonlinear-4d``): observations and the
      latent states as ``y``;
    * ``path/to/file.h5:frames[:targets]``: your own recordings, time first. ``frames``
      names a dataset (one series ``(T, features)`` or ``(T, H, W, C)``) or a group
      (each dataset in it one series; lengths may differ); ``targets`` (optional) the
      ground truth with the same layout. Each series is split in time: the first 80 %
      for training, the last 20 % held out, then cut into windows of ``window`` steps
      (default 32) every ``stride`` (default ``window // 2``) by
      :func:`ldm_keras.data.windows`; the file is read lazily, window block by block.

    Example:
        >>> (x, y), (x_test, y_test), info = load_sequence_dataset("dotmotion-circular",
        ...                                                        sequences=256)
    """
    info = {}
    if name.startswith("dotmotion-") or name.startswith("state-space-"):
        if name.startswith("dotmotion-"):
            module, preset, attrs = dot_motion, name[len("dotmotion-"):], ("frames", "positions")
        else:
            module, preset, attrs = state_space, name[len("state-space-"):], (
                "observations", "latents")
        if preset not in module.PRESETS:
            prefix = name[: len(name) - len(preset)]
            raise ValueError(f"Unknown dataset {name!r}; expected one of "
                             f"{[prefix + p for p in sorted(module.PRESETS)]}.")
        tr = module.load(preset, "train", num_sequences=sequences)
        te = module.load(preset, "test", num_sequences=test_sequences)
        train = (getattr(tr, attrs[0]), getattr(tr, attrs[1]))
        test = (getattr(te, attrs[0]), getattr(te, attrs[1]))
        if train_length is not None:
            t = check_int(train_length, "train_length", minimum=2)
            train = (train[0][:, :t], train[1][:, :t])
        if window is not None:
            stride = stride or window
            train = windows(list(train[0]), window, stride, targets=list(train[1]))
            test = windows(list(test[0]), window, stride, targets=list(test[1]))
        info["ground_truth"] = attrs[1]
        return train, test, info
    if ".h5:" not in name:
        known = ([f"dotmotion-{p}" for p in sorted(dot_motion.PRESETS)]
                 + [f"state-space-{p}" for p in sorted(state_space.PRESETS)]
                 + ["path/to/file.h5:frames[:targets]"])
        raise ValueError(f"Unknown sequence dataset {name!r}; expected one of {known}.")
    path, key, tkey = _split_h5_spec(name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"HDF5 file not found: {path!r} (from dataset spec "
                                f"{name!r}; expected 'path/to/file.h5:frames[:targets]').")
    window = int(window or H5_WINDOW)
    stride = int(stride or max(1, window // 2))
    with arrays.open_h5(path) as f:
        series = _h5_series(f, key, path)
        targets = _h5_series(f, tkey, path) if tkey else None
        if targets is not None:
            check_target_lengths(series, targets, key, tkey, path)
        check_finite_rows(series, key, path)
        if targets is not None:
            check_finite_rows(targets, tkey, path)
        cuts = [int(round((1 - H5_TEST_FRACTION) * s.shape[0]))
                for s in series]
        tr_x = [TimeSlice(s, 0, c) for s, c in zip(series, cuts)]
        te_x = [TimeSlice(s, c, s.shape[0]) for s, c in zip(series, cuts)]
        tr_y = te_y = None
        if targets is not None:
            tr_y = [TimeSlice(y, 0, c) for y, c in zip(targets, cuts)]
            te_y = [TimeSlice(y, c, y.shape[0]) for y, c in zip(targets, cuts)]
        train = windows(tr_x, window, stride, targets=tr_y, shuffle=True, seed=seed)
        keep = [i for i, s in enumerate(te_x) if s.shape[0] >= window]
        test = (None, None)
        if keep:
            test = windows([te_x[i] for i in keep], window, stride,
                           targets=None if te_y is None else [te_y[i] for i in keep])
    if targets is None:
        train, test = (train, None), (test if keep else None, None)
    info["ground_truth"] = tkey
    info["window"], info["stride"] = window, stride
    return train, test, info


class TimeSlice:
    """A lazy time slice ``[start, stop)`` of an array or h5py dataset (read on index)."""

    def __init__(self, data, start, stop):
        self.data, self.start, self.stop = data, int(start), int(stop)
        self.shape = (self.stop - self.start,) + tuple(data.shape[1:])

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("TimeSlice supports contiguous slices only.")
        lo, hi, _ = key.indices(self.shape[0])
        return self.data[self.start + lo: self.start + hi]
