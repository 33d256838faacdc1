"""What ``LDMModel.fit`` checks before any training step, and what it reports after.

Before training (arrays and tuples / dicts of arrays; for a ``tf.data.Dataset`` and a
PyTorch ``DataLoader`` over a ``TensorDataset`` only what can be seen without reading a
batch, see below):

* no targets ``y`` (the models are self-supervised; ``fit(x1, x2)`` is the common slip
  for ``fit((x1, x2))``; likewise a ``tf.data`` dataset of ``(x, y)`` elements or a
  ``DataLoader`` over ``TensorDataset(x, y)``, whose second part Keras reads as ``y``);
* real numbers (a string or object array is named, not a Keras dtype error);
* no integer images or frames: an integer array of rank ≥ 3, or any integer array when
  the model makes views, is refused with the division that makes it floats in [0, 1];
* at least one sample, and at least ``model.min_batch_size`` of them;
* **the last partial batch**: when the samples do not fill the last batch and what is
  left is smaller than the estimator's minimum, the last ``r`` samples (in the order
  given) are left out of training every epoch, with a :class:`PartialBatchWarning`
  naming them — the same on every backend (Keras would otherwise crash at the end of the
  first epoch on JAX and PyTorch, after steps were applied, and skip the batch as
  non-finite on TensorFlow). A partial batch at least as large as the minimum is
  trained on as Keras does. ``validation_split`` is applied first (as Keras does: the
  last fraction of the samples) and each part handled alike.

Datasets, generators and loaders are never iterated here (that would consume or load
the user's data). What is checked without reading them: a ``tf.data.Dataset``'s
``element_spec`` (string components named; integer images / frames refused as for arrays,
with a ``.map`` that casts them) and the tensors of a ``torch.utils.data.DataLoader`` over
a ``TensorDataset`` (checked as arrays: dtype, integer images, at least
``model.min_batch_size`` samples). Nothing is checked for Python generators,
``keras.utils.PyDataset`` or other loaders, and no partial batch is trimmed for any of
them: batch them with ``drop_remainder=True`` (``tf.data``) / ``drop_last=True``
(PyTorch), or a batch size that leaves a last batch of at least ``model.min_batch_size``.

After training: :func:`skipped_steps` counts the steps the non-finite guard skipped;
``fit`` warns (:class:`SkippedStepsWarning`) when more than :data:`SKIPPED_STEPS_LIMIT`
of them were skipped, and the training jobs stop there with an error.
"""

import math
import warnings

import keras
import numpy as np

from .._validation import check_int, check_real_dtype

#: Keras' batch size for arrays when ``fit`` is given none.
KERAS_DEFAULT_BATCH = 32
#: A run with more than this fraction of its steps skipped as non-finite has not trained.
SKIPPED_STEPS_LIMIT = 0.5


class PartialBatchWarning(UserWarning):
    """``fit`` left the samples of a last batch out: too few for the entropy estimator."""


class SkippedStepsWarning(RuntimeWarning):
    """``fit`` skipped most (or all) of its steps as non-finite: the model has not trained."""


def _leaves(x):
    """The arrays of ``x`` with their names (``x``, ``x[1]``, ``x['frames']``), or None
    when ``x`` is not made of arrays (a dataset, a generator)."""
    if x is None:
        return None
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return [("x", x)]
    if isinstance(x, (tuple, list)):
        items = [(f"x[{i}]", v) for i, v in enumerate(x)]
    elif isinstance(x, dict):
        items = [(f"x[{k!r}]", v) for k, v in x.items()]
    else:
        return None
    out = []
    for name, v in items:
        if not (hasattr(v, "shape") and hasattr(v, "dtype")):
            return None
        out.append((name, v))
    return out


def _dtype(a):
    """``a.dtype`` as a NumPy dtype (NumPy, JAX, TensorFlow and PyTorch arrays), or None."""
    if isinstance(a.dtype, np.dtype):
        return a.dtype
    try:
        return np.dtype(str(getattr(a.dtype, "name", a.dtype)).replace("torch.", ""))
    except TypeError:
        return None


def _is_integer(a):
    dtype = _dtype(a)
    return dtype is not None and np.issubdtype(dtype, np.integer)


def _value_range(a):
    try:
        a = np.asarray(keras.ops.convert_to_numpy(a))
        return f", values {a.min()}–{a.max()}" if a.size else ""
    except Exception:  # an exotic array type: the dtype says enough
        return ""


def integer_image_error(name, a, why, dataset=False):
    """The ``ValueError`` for integer images / frames: what to divide them by
    (``dataset``: ``a`` is a ``tf.data`` element spec, the advice is a ``.map``)."""
    dtype = _dtype(a)
    top = np.iinfo(dtype).max if dtype.kind == "u" and dtype.itemsize <= 2 else None
    if dataset:
        how = ("cast and scale it in the pipeline, e.g. `dataset.map(lambda v: "
               f"tf.cast(v, 'float32') / {top or 255})`")
    else:
        how = (f"divide by {top} (e.g. `{name}.astype('float32') / {top}` for {dtype} "
               "pixels)" if top else "divide by the largest value it can take (255 for "
               "8-bit pixels) or cast it with `.astype('float32')`")
    return ValueError(
        f"`{name}` holds integers (dtype {dtype}, shape {tuple(a.shape)}"
        f"{'' if dataset else _value_range(a)}): {why} expects floats (images and frames in [0, 1]); {how}. "
        "ldm_keras does not rescale integer data itself."
    )


def _tf_dataset_leaves(x):
    """The component specs of a ``tf.data.Dataset``'s elements with their names
    (``x.element_spec``, ``x.element_spec[1]``, ...), or None for anything else."""
    if not (type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")):
        return None
    out = []

    def walk(spec, name):
        if isinstance(spec, dict):
            for k, v in spec.items():
                walk(v, f"{name}[{k!r}]")
        elif isinstance(spec, (tuple, list)):
            for i, v in enumerate(spec):
                walk(v, f"{name}[{i}]")
        elif hasattr(spec, "shape") and hasattr(spec, "dtype"):  # TensorSpec
            out.append((name, spec))

    walk(x.element_spec, "x.element_spec")
    return out


def _torch_loader_leaves(x):
    """The tensors of a PyTorch ``DataLoader`` over a ``TensorDataset`` (read without
    loading a batch), or None."""
    if not type(x).__module__.startswith("torch"):
        return None
    tensors = getattr(getattr(x, "dataset", None), "tensors", None)
    if not isinstance(tensors, (tuple, list)) or not tensors:
        return None
    return [(f"x.dataset.tensors[{i}]", t) for i, t in enumerate(tensors)]


def _refuse_dataset_targets(model, x):
    """Refuse a ``tf.data`` dataset of 2- or 3-tuples and a ``DataLoader`` over a
    ``TensorDataset`` of 2 or 3 tensors: Keras reads those as ``(x, y[, sample_weight])``
    and the model would drop ``y`` silently."""
    if type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec"):
        spec, what = x.element_spec, "the dataset's elements are"
        k = len(spec) if isinstance(spec, tuple) else 0
        how = "`dataset.map(lambda a, b: ((a, b),))`"
    else:
        tensors = getattr(getattr(x, "dataset", None), "tensors", None)
        if not (type(x).__module__.startswith("torch") and isinstance(tensors, (tuple, list))):
            return
        k, what = len(tensors), "the DataLoader's batches are"
        how = "a `collate_fn` that returns `((x1, x2),)`"
    if k in (2, 3):
        raise ValueError(
            f"{type(model).__name__} is self-supervised: `fit` takes no targets, but {what} "
            f"{k}-tuples, which Keras reads as (x, y{', sample_weight' if k == 3 else ''}): "
            "the second part would be dropped silently. Put everything the model sees in "
            f"the first part — two views as one nested pair per element, {how} — and leave "
            "labels out of fit.")


def _check_arrays(model, leaves, what="x", dataset=False):
    views = getattr(model, "views", None) is not None
    for name, a in leaves:
        name = name.replace("x", what, 1)
        check_real_dtype(a, name)
        if _is_integer(a) and (views or len(a.shape) >= 3):
            kind = "tensor" if dataset else "array"
            why = (f"{type(model).__name__}'s view generator" if views
                   else f"{type(model).__name__} (an integer {kind} of rank "
                   f"{len(a.shape)}: images or frames)")
            raise integer_image_error(name, a, why, dataset=dataset)
    sizes = {int(a.shape[0]) for _, a in leaves if len(a.shape) > 0 and a.shape[0] is not None}
    return sizes.pop() if len(sizes) == 1 else None


def _take(x, n):
    """The first ``n`` samples of an array or a tuple / list / dict of arrays."""
    if x is None:
        return None
    if isinstance(x, dict):
        return {k: v[:n] for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(v[:n] for v in x)
    return x[:n]


def _keep(model, n, batch_size, what):
    """How many of ``n`` samples to train on; refuses too few, notes a dropped remainder."""
    minimum = int(model.min_batch_size)
    name = type(model).__name__
    if n < minimum:
        raise ValueError(
            f"{name} needs batches of at least {minimum} samples for its entropy estimator; "
            f"`{what}` holds {n} sample{'s' if n != 1 else ''}: expected at least {minimum}."
        )
    rest = n % batch_size if batch_size < n else 0
    if 0 < rest < minimum:
        warnings.warn(
            f"fit: the last batch of `{what}` would hold {rest} sample"
            f"{'s' if rest != 1 else ''} ({n} samples, batch_size={batch_size}), fewer than "
            f"the {minimum} that {name}'s entropy estimator needs; the last {rest} of the "
            f"{n} samples are left out of training, every epoch (use a batch size that "
            f"leaves a last batch of at least {minimum} to train on them).",
            PartialBatchWarning, stacklevel=4,
        )
        return n - rest
    return n


def check_fit_inputs(model, x, y, batch_size, kwargs):
    """Check what ``fit`` was given; return ``(x, kwargs)`` to pass on to Keras.

    Raises ``ValueError`` (naming the argument) for targets, non-numeric or integer
    images, empty data or too few samples; trims a last batch too small for the
    estimator (see the module docstring).
    """
    name = type(model).__name__
    if y is not None:
        shape = getattr(y, "shape", None)
        what = f"of shape {tuple(shape)}" if shape is not None else f"({type(y).__name__})"
        raise ValueError(
            f"{name} is self-supervised: `fit` takes no targets, but received `y` {what}. "
            "Pass the data as `x` only — two views as one tuple, `fit((x1, x2))`, not "
            "`fit(x1, x2)`; labels are for evaluating the encoder, not for fit."
        )
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        if batch_size < model.min_batch_size:
            raise ValueError(
                f"{name} needs batches of at least {model.min_batch_size} samples for its "
                f"entropy estimator; received batch_size={batch_size}."
            )
    leaves = _leaves(x)
    if leaves is None:
        _refuse_dataset_targets(model, x)
        specs = _tf_dataset_leaves(x)
        if specs is not None:
            _check_arrays(model, specs, dataset=True)
        tensors = _torch_loader_leaves(x)
        if tensors is not None:
            n = _check_arrays(model, tensors)
            if n is not None and n < int(model.min_batch_size):
                _keep(model, n, n, "x.dataset")  # raises: too few samples
        return x, kwargs
    n = _check_arrays(model, leaves)
    if n is None:
        return x, kwargs  # Keras names sizes that disagree
    if n == 0:
        shape = tuple(leaves[0][1].shape)
        raise ValueError("fit received an empty dataset: expected at least one sample, "
                         f"received arrays of shape {shape}.")
    batch = batch_size or KERAS_DEFAULT_BATCH
    kwargs = dict(kwargs)
    split = kwargs.get("validation_split") or 0.0
    if split and kwargs.get("validation_data") is None:
        at = int(math.floor(n * (1.0 - float(split))))  # as Keras splits: the last part
        if 0 < at < n:
            val = _take(_slice_from(x, at), n - at)
            kwargs["validation_data"] = (val, None, None)
            kwargs.pop("validation_split")
            x, n = _take(x, at), at
    val = kwargs.get("validation_data")
    if val is not None:
        vx, vy, vw = keras.utils.unpack_x_y_sample_weight(val) if isinstance(
            val, (tuple, list)) else (val, None, None)
        if vy is not None:
            raise ValueError(
                f"{name} is self-supervised: `validation_data` must hold no targets; "
                "received a tuple (x, y). Pass `validation_data=(x_val,)`, or for two "
                "views `validation_data=((x1_val, x2_val),)`.")
        vleaves = _leaves(vx)
        if vleaves is not None:
            vn = _check_arrays(model, vleaves, "validation_data")
            vbatch = kwargs.get("validation_batch_size") or batch
            if vn:
                keep = _keep(model, vn, vbatch, "validation_data")
                kwargs["validation_data"] = (_take(vx, keep), None, _take(vw, keep))
    keep = _keep(model, n, batch, "x")
    if keep < n:
        x = _take(x, keep)
        if kwargs.get("sample_weight") is not None:
            kwargs["sample_weight"] = _take(kwargs["sample_weight"], keep)
    return x, kwargs


def _slice_from(x, start):
    if isinstance(x, dict):
        return {k: v[start:] for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(v[start:] for v in x)
    return x[start:]


def skipped_steps(history):
    """``(skipped, total)`` training steps of a ``fit`` (``(0, total)`` without a guard)."""
    params = getattr(history, "params", None) or {}
    logs = getattr(history, "history", None) or {}
    epochs = len(logs.get("loss", []))
    steps = params.get("steps") or 0
    skipped = sum(float(v) for v in logs.get("skipped_steps", []))
    return int(round(skipped)), int(steps) * epochs


def warn_if_mostly_skipped(model, history):
    """Warn when more than :data:`SKIPPED_STEPS_LIMIT` of the steps were skipped."""
    skipped, total = skipped_steps(history)
    if total and skipped > SKIPPED_STEPS_LIMIT * total:
        warnings.warn(
            f"fit: {skipped} of the {total} training steps of {type(model).__name__} were "
            "skipped as non-finite (NaN/inf loss or gradient); the weights "
            + ("were never updated" if skipped == total else "were updated only by the rest")
            + ". Check the data for NaN/inf and lower the learning rate.",
            SkippedStepsWarning, stacklevel=3,
        )
