"""What ``LDMModel.fit`` checks before any training step, and what it reports after.

Long module: one set of rules and messages for every kind of data ``fit`` accepts
(arrays, ``tf.data``, PyTorch loaders, ``PyDataset``, generators), kept together so that
a case refused for one kind is refused alike, in the same words, for the others.

Before training (arrays and tuples / dicts of arrays; for datasets, loaders and
generators what can be seen without consuming them, see below):

* no targets ``y`` (the models are self-supervised; ``fit(x1, x2)`` is the common slip
  for ``fit((x1, x2))``; likewise a ``tf.data`` dataset, a ``DataLoader`` over
  ``TensorDataset(x, y)``, a generator or a ``PyDataset`` of ``(x, y)`` batches, whose
  second part Keras reads as ``y``);
* real numbers (a string or object array is named, not a Keras dtype error);
* no integer images or frames: an integer array of rank ≥ 3, or any integer array when
  the model makes views, is refused with the division that makes it floats in [0, 1];
* the rank the encoder expects (a ``MultiViewLDM`` without views): Keras would squeeze or
  add a trailing axis of size 1 silently;
* at least one sample, and at least ``model.min_batch_size`` of them;
* **the last partial batch**: when the samples do not fill the last batch and what is
  left is smaller than the estimator's minimum, the last ``r`` samples (in the order
  given) are left out of training every epoch, with a :class:`PartialBatchWarning`
  naming them — the same on every backend (Keras would otherwise crash at the end of the
  first epoch on JAX and PyTorch, after steps were applied, and skip the batch as
  non-finite on TensorFlow). A partial batch at least as large as the minimum is
  trained on as Keras does. ``validation_split`` is applied first (as Keras does: the
  last fraction of the samples) and each part handled alike.

Datasets, loaders and generators are read no further than this:

* ``tf.data.Dataset``: its ``element_spec`` (string components named; integer images /
  frames refused as for arrays, with a ``.map`` that casts them; a fixed batch dimension
  smaller than the minimum refused). Its last batch: when the sizes can be read off the
  pipeline (``batch(b)`` followed only by ``map`` / ``prefetch`` / ``cache``, over a
  dataset of known cardinality ``n``) and ``n mod b`` is smaller than the minimum, the
  dataset is cut to ``take(n // b)`` batches with a :class:`PartialBatchWarning`;
  when the sizes cannot be known (batch dimension ``None`` and a generator, a repeat
  after batching…), or the batches are shuffled after batching, it is refused before
  training with ``drop_remainder=True`` as the fix.
* ``torch.utils.data.DataLoader``: over a ``TensorDataset`` with the default
  ``collate_fn``, its tensors are checked as arrays. A last batch too small, with a
  ``batch_size`` and a sampler of known length: the loader is replaced by an equal one
  with ``drop_last=True`` over the same sampler, with a :class:`PartialBatchWarning`;
  sizes unknown (an ``IterableDataset``): refused unless ``drop_last=True``.
* ``keras.utils.PyDataset``: ``x[0]`` (and the last batch) are read before training —
  random access consumes nothing — and checked as arrays; a last batch too small is left
  out every epoch (a ``PyDataset`` of one batch fewer) with a :class:`PartialBatchWarning`.
* a Python generator: its first batch is read before training, checked as arrays, and
  replayed; a later batch smaller than the minimum is left out as it comes, with a
  :class:`PartialBatchWarning`.

Later batches of a generator or a ``PyDataset`` are not checked for dtype or targets, and
``validation_data`` given as a dataset, loader or generator is passed to Keras unread.

After training: :func:`skipped_steps` counts the steps the non-finite guard skipped;
``fit`` warns (:class:`SkippedStepsWarning`) when more than :data:`SKIPPED_STEPS_LIMIT`
of them were skipped, and the training jobs stop there with an error.
"""

import math
import types
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
    if not type(x).__module__.startswith("torch") or not _default_collate(x):
        return None  # (a collate_fn of the user's may convert the tensors)
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
        if not (type(x).__module__.startswith("torch") and isinstance(tensors, (tuple, list))
                and _default_collate(x)):
            return  # (a collate_fn of the user's decides what a batch is)
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
    check_rank = None if views else getattr(model, "_check_rank", None)
    for name, a in leaves:
        name = name.replace("x", what, 1)
        check_real_dtype(a, name)
        if check_rank is not None:  # here, not in the first step: on JAX a failed first
            check_rank(a)           # step leaves the model's variables unusable
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
            return _trim_tf_dataset(model, x, specs), kwargs
        tensors = _torch_loader_leaves(x)
        if tensors is not None:
            n = _check_arrays(model, tensors)
            if n is not None and n < int(model.min_batch_size):
                _keep(model, n, n, "x.dataset")  # raises: too few samples
        if _is_torch_loader(x):
            return _trim_torch_loader(model, x), kwargs
        if isinstance(x, keras.utils.PyDataset):
            return _check_py_dataset(model, x), kwargs
        if isinstance(x, types.GeneratorType):
            return _check_generator(model, x), kwargs
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


# -- datasets, loaders, PyDatasets and generators: what can be seen without consuming them --

def _warn_partial(model, rest, what, where, fix, stacklevel=5):
    minimum = int(model.min_batch_size)
    warnings.warn(
        f"fit: the last batch of `{what}` would hold {rest} sample{'s' if rest != 1 else ''} "
        f"({where}), fewer than the {minimum} that {type(model).__name__}'s entropy "
        f"estimator needs; that batch is left out of training, every epoch ({fix}).",
        PartialBatchWarning, stacklevel=stacklevel,
    )


def _static_batch(specs):
    """The batch size every element of a ``tf.data`` dataset has, when its spec fixes one."""
    sizes = {s.shape[0] if len(s.shape) else None for _, s in specs}
    return sizes.pop() if len(sizes) == 1 else None


#: ``tf.data`` transformations after ``batch`` that keep the batches and their order.
_TF_SAME_BATCHES = {"_PrefetchDataset", "_MapDataset", "_ParallelMapDataset",
                    "_OptionsDataset", "CacheDataset", "_CacheDataset"}
#: ... and those that keep the batches but not their order.
_TF_REORDERED_BATCHES = {"_ShuffleDataset", "ShuffleDataset"}


def _tf_batching(ds):
    """``(samples, batch_size, in_order)`` of ``….batch(batch_size)`` followed only by
    prefetch / map / cache / options (``in_order``) or shuffles, or None when that cannot
    be read off the pipeline without running it (a generator, a repeat after batching…).
    Maps after ``batch`` are taken to keep the batch size."""
    d, in_order = ds, True
    while type(d).__name__ in _TF_SAME_BATCHES | _TF_REORDERED_BATCHES:
        in_order = in_order and type(d).__name__ in _TF_SAME_BATCHES
        d = getattr(d, "_input_dataset", None)
    if type(d).__name__ != "_BatchDataset":
        return None
    try:
        n = int(d._input_dataset.cardinality())
        b = int(d._batch_size)
    except Exception:  # a TensorFlow version with other internals: unknown
        return None
    if n < 0 or b < 1:  # infinite (-1) or unknown (-2)
        return None
    return n, b, in_order


def _trim_tf_dataset(model, ds, specs):
    """A ``tf.data.Dataset`` whose last batch is too small for the estimator, without it.

    Batches of a size fixed by the element spec (``drop_remainder=True``): checked
    against the minimum. Sizes read off the pipeline (``from_tensor_slices(…).batch(b)``,
    also followed by map / prefetch / cache): a last batch too small is taken off with
    ``take`` and a :class:`PartialBatchWarning`. Sizes unknown (a generator, a repeat
    after batching), or a last batch too small after a shuffle of the batches: refused,
    with ``drop_remainder=True`` as the fix.
    """
    minimum = int(model.min_batch_size)
    name = type(model).__name__
    fixed = _static_batch(specs)
    if fixed is not None:
        if fixed < minimum:
            raise ValueError(
                f"{name} needs batches of at least {minimum} samples for its entropy "
                f"estimator; the dataset's batches hold {fixed} (x.element_spec has batch "
                f"dimension {fixed}).")
        return ds
    batching = _tf_batching(ds)
    if batching is None:
        raise ValueError(
            f"fit cannot tell how many samples the last batch of this tf.data.Dataset holds "
            "(x.element_spec has batch dimension None, and the sizes cannot be read off the "
            f"pipeline without running it); a last batch smaller than the {minimum} that "
            f"{name}'s entropy estimator needs would fail after steps were applied. Batch "
            "it with `.batch(batch_size, drop_remainder=True)` (or `.rebatch(...)`), or "
            "give a generator's output_signature a fixed batch dimension.")
    n, b, in_order = batching
    if n < minimum:
        _keep(model, n, n, "x")  # raises: too few samples
    rest = n % b
    if not 0 < rest < minimum:
        return ds
    fix = ("batch with `drop_remainder=True`, or a batch size that leaves a last batch of "
           f"at least {minimum}")
    if not in_order:
        raise ValueError(
            f"The last batch of this tf.data.Dataset holds {rest} sample"
            f"{'s' if rest != 1 else ''} ({n} samples, batch({b})), fewer than the "
            f"{minimum} that {name}'s entropy estimator needs, and the batches are "
            f"shuffled after batching, so it cannot be left out: {fix}.")
    _warn_partial(model, rest, "x", f"{n} samples, batch({b})", fix + ", to silence this")
    return ds.take(n // b)


def _is_torch_loader(x):
    """A PyTorch ``DataLoader`` (recognised by its class: ldm_keras imports no PyTorch here)."""
    return (type(x).__module__.startswith("torch.utils.data")
            and type(x).__name__ == "DataLoader")


def _default_collate(loader):
    fn = getattr(loader, "collate_fn", None)
    return (getattr(fn, "__module__", "").startswith("torch.utils.data")
            and getattr(fn, "__name__", "") in ("default_collate", "default_convert"))


def _trim_torch_loader(model, loader):
    """A PyTorch ``DataLoader`` whose last batch is too small for the estimator, without it.

    Sizes known (a ``DataLoader`` with a ``batch_size`` over a sampler with a length: the
    default, ``shuffle=True`` or a ``sampler`` of the user's): the last batch is left out
    by an equal loader with ``drop_last=True`` and a :class:`PartialBatchWarning`. Sizes
    unknown (an ``IterableDataset``, a sampler without length): refused unless
    ``drop_last=True``. ``batch_size=None`` (the dataset yields whole batches) is passed on.
    """
    minimum = int(model.min_batch_size)
    b = loader.batch_size
    if b is None or loader.drop_last:
        return loader
    if b < minimum:
        raise ValueError(
            f"{type(model).__name__} needs batches of at least {minimum} samples for its "
            f"entropy estimator; received a DataLoader with batch_size={b}.")
    try:
        n = len(loader.sampler)
    except TypeError:
        n = None
    batches = type(loader.batch_sampler)
    if n is None or batches.__name__ != "BatchSampler":
        raise ValueError(
            f"fit cannot tell how many samples the last batch of this DataLoader holds (its "
            f"sampler or dataset has no length); a last batch smaller than the {minimum} "
            f"that {type(model).__name__}'s entropy estimator needs would fail after steps "
            "were applied. Create the DataLoader with `drop_last=True`.")
    if n < minimum:
        _keep(model, n, n, "x.dataset")  # raises: too few samples
    rest = n % b if n > b else 0
    if not 0 < rest < minimum:
        return loader
    _warn_partial(model, rest, "x", f"{n} samples, DataLoader batch_size={b}",
                  "create the DataLoader with `drop_last=True`, or with a batch size that "
                  f"leaves a last batch of at least {minimum}, to silence this")
    return type(loader)(
        loader.dataset, batch_sampler=batches(loader.sampler, b, drop_last=True),
        num_workers=loader.num_workers, collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory, timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if loader.num_workers else None,
        persistent_workers=loader.persistent_workers,
        pin_memory_device=loader.pin_memory_device,
        in_order=getattr(loader, "in_order", True),
    )


def _batch_x(model, batch, source, how):
    """The part of one batch that Keras passes as ``x``; refuses ``(x, y)`` batches."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch
    if len(batch) in (2, 3):
        k = len(batch)
        raise ValueError(
            f"{type(model).__name__} is self-supervised: `fit` takes no targets, but {source} "
            f"are {k}-tuples, which Keras reads as (x, y{', sample_weight' if k == 3 else ''}):"
            " the second part would be dropped silently. Put everything the model sees in "
            f"the first part — two views as one nested pair per batch, {how} — and leave "
            "labels out of fit.")
    return batch[0] if len(batch) == 1 else batch


def _batch_size(leaves):
    sizes = {int(a.shape[0]) for _, a in leaves
             if len(a.shape) > 0 and isinstance(a.shape[0], int)}
    return sizes.pop() if len(sizes) == 1 else None


def _check_batch(model, batch, name, source, how):
    """Check one batch as arrays are checked; return its size (None if unknown)."""
    leaves = _leaves(_batch_x(model, batch, source, how))
    if leaves is None:
        return None
    _check_arrays(model, leaves, name)
    n = _batch_size(leaves)
    minimum = int(model.min_batch_size)
    if n is not None and n < minimum:
        raise ValueError(
            f"{type(model).__name__} needs batches of at least {minimum} samples for its "
            f"entropy estimator; `{name}` (the first batch) holds {n} "
            f"sample{'s' if n != 1 else ''}: expected at least {minimum}.")
    return n


def _size_of(batch):
    if isinstance(batch, list):
        batch = tuple(batch)
    if isinstance(batch, tuple) and len(batch) == 1:
        batch = batch[0]
    leaves = _leaves(batch)
    return None if leaves is None else _batch_size(leaves)


class _WithoutLastBatch(keras.utils.PyDataset):
    """A ``PyDataset`` without its last batch (too small for the estimator)."""

    def __init__(self, dataset, num_batches):
        super().__init__(workers=dataset.workers, use_multiprocessing=dataset.use_multiprocessing,
                         max_queue_size=dataset.max_queue_size)
        self.dataset, self._n = dataset, int(num_batches)

    def __len__(self):
        return self._n

    @property
    def num_batches(self):
        return self._n

    def __getitem__(self, index):
        return self.dataset[index]

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def _check_py_dataset(model, ds):
    """Check a ``keras.utils.PyDataset`` by reading its first and last batch
    (``ds[0]``, ``ds[len - 1]``; random access consumes nothing): ``(x, y)`` batches,
    non-numeric or integer images, a first batch too small are refused; a last batch
    too small is left out with a :class:`PartialBatchWarning`."""
    how = "`__getitem__` returning `((x1, x2),)`"
    source = "the PyDataset's batches"
    try:
        count = ds.num_batches
    except NotImplementedError:
        count = None
    if count == 0:
        raise ValueError("fit received an empty PyDataset (num_batches 0): expected at "
                         "least one batch.")
    _check_batch(model, ds[0], "x[0]", source, how)
    if count is None or count < 2:
        return ds
    last = _size_of(ds[count - 1])
    minimum = int(model.min_batch_size)
    if last is not None and last < minimum:
        _warn_partial(model, last, "x", f"x[{count - 1}], the last of {count} batches",
                      "let `__getitem__` return batches of at least "
                      f"{minimum} samples to silence this")
        return _WithoutLastBatch(ds, count - 1)
    return ds


def _check_generator(model, gen):
    """Check a Python generator's first batch before training (then replay it): ``(x, y)``
    batches, non-numeric or integer images, a first batch too small are refused. Later
    batches smaller than the estimator's minimum (a last partial batch) are left out as
    they come, each with a :class:`PartialBatchWarning`."""
    try:
        first = next(gen)
    except StopIteration:
        raise ValueError("fit received an empty generator: expected at least one batch.") \
            from None
    _check_batch(model, first, "next(x)", "the generator's batches", "`yield ((x1, x2),)`")
    return _replay(model, first, gen)


def _replay(model, first, gen):
    minimum = int(model.min_batch_size)
    yield first
    for i, batch in enumerate(gen, start=1):
        n = _size_of(batch)
        if n is not None and n < minimum:
            warnings.warn(
                f"fit: batch {i + 1} of the generator `x` holds {n} sample"
                f"{'s' if n != 1 else ''}, fewer than the {minimum} that "
                f"{type(model).__name__}'s entropy estimator needs; it is left out of "
                "training (yield batches of at least that size to silence this).",
                PartialBatchWarning, stacklevel=2)
            continue
        yield batch
