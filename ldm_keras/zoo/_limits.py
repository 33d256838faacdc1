"""Size caps: nothing larger than the cap is downloaded, hashed, read or allocated.

The cap (:func:`max_bytes`) is :data:`DEFAULT_MAX_BYTES` = 2 GiB (2³¹ bytes, 512 Mi
float32 weights), or ``$LDM_KERAS_ZOO_MAX_BYTES`` (an integer number of bytes), or the
``max_bytes=`` argument of the zoo's loading functions. It is checked, in this order:

1. on the index: the sizes an entry declares for its files, summed
   (:func:`check_declared_sizes`), before any file is fetched, hashed or read; a download
   stops at the declared size, and a file on disk must have exactly that size;
2. on every HDF5 file (weights, reference outputs): the declared size of its datasets,
   summed, before any is read (:func:`check_h5`) — a compressed or sparse dataset can
   declare far more than the file holds; the file must also be self-contained (no
   external or soft links, no external or virtual datasets);
3. on every Keras config: the bytes of the variables it creates (:func:`weight_bytes`),
   measured by building it with every variable's allocation deferred (a Keras
   ``StatelessScope``: the variables get their shapes and dtypes but no values) and
   dropping those variables unallocated; only if that is within the cap is the model
   built for real. Memory that a layer allocates outside its variables is not measured.

Example:
    >>> max_bytes()                       # 2147483648 unless $LDM_KERAS_ZOO_MAX_BYTES is set
    >>> weight_bytes(lambda: keras.layers.Dense(2**20).build((None, 2**14)))   # 64 GiB, not allocated
"""

import math
import os
import re

from ._errors import ZooError, ZooPathError, ZooSizeError

#: The default cap on an entry's files and on the weights a config creates, in bytes.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: The environment variable that overrides :data:`DEFAULT_MAX_BYTES`.
MAX_BYTES_ENV = "LDM_KERAS_ZOO_MAX_BYTES"

_HOW_TO_RAISE = (f"if you trust this entry, raise the cap with max_bytes=... or "
                 f"${MAX_BYTES_ENV}")


def human(n):
    """``n`` bytes as a short text (``'2.0 GiB'``)."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def max_bytes(value=None):
    """The size cap in bytes: ``value``, else ``$LDM_KERAS_ZOO_MAX_BYTES``, else 2 GiB."""
    source = "max_bytes"
    if value is None:
        env = os.environ.get(MAX_BYTES_ENV)
        if not env:
            return DEFAULT_MAX_BYTES
        source = f"${MAX_BYTES_ENV}"
        try:
            value = int(env)
        except ValueError:
            raise ZooError(f"{source}={env!r} is not allowed: expected a positive integer "
                           "number of bytes.") from None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ZooError(f"{source}={value!r} is not allowed: expected a positive integer "
                       "number of bytes.")
    return value


def check_declared_sizes(name, files, cap):
    """:class:`ZooSizeError` if the file sizes the index declares for ``name`` sum above
    ``cap``."""
    total = sum(meta["size"] for meta in files.values())
    if total > cap:
        raise ZooSizeError(f"index.json: zoo entry {name!r} declares {total} bytes of files "
                           f"({human(total)}), above the cap of {cap} bytes ({human(cap)}); "
                           f"{_HOW_TO_RAISE}.")
    return total


def _check_links(group, path, field):
    import h5py

    for key in group:
        link = group.get(key, getlink=True)
        if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
            raise ZooPathError(f"{field}: {path} holds a {type(link).__name__} at "
                               f"{group.name.rstrip('/')}/{key}: expected a self-contained "
                               "HDF5 file (no links).")


def check_h5(path, cap, field):
    """Raise unless the HDF5 file at ``path`` is self-contained and its datasets declare
    at most ``cap`` bytes in all; returns the declared bytes. Reads no dataset."""
    import h5py

    total = 0

    def visit(name, obj):
        nonlocal total
        if isinstance(obj, h5py.Group):
            _check_links(obj, path, field)
            return None
        if obj.external:
            raise ZooPathError(f"{field}: {path} has a dataset {name!r} stored in external "
                               "files: expected a self-contained HDF5 file.")
        if obj.is_virtual:
            raise ZooPathError(f"{field}: {path} has a virtual dataset {name!r}: expected a "
                               "self-contained HDF5 file.")
        total += math.prod(obj.shape or ()) * obj.dtype.itemsize
        if total > cap:
            raise ZooSizeError(f"{field}: {path} declares {total} bytes of data "
                               f"({human(total)}) by dataset {name!r}, above the cap of {cap} "
                               f"bytes ({human(cap)}); {_HOW_TO_RAISE}.")
        return None

    with h5py.File(path, "r") as f:
        _check_links(f, path, field)
        f.visititems(visit)  # each object once, through hard links only
    return total


def _itemsize(dtype):
    if dtype == "bool":
        return 1
    bits = re.search(r"(\d+)$", str(dtype))
    return max(1, int(bits.group(1)) // 8) if bits else 8


def variable_bytes(variables):
    """Bytes taken by Keras ``variables`` (from their shapes and dtypes)."""
    return sum(math.prod(v.shape) * _itemsize(v.dtype) for v in variables)


def weight_bytes(factory):
    """Bytes of the variables that ``factory()`` creates, measured without allocating them.

    ``factory`` runs inside ``keras.StatelessScope(initialize_variables=False)``, where
    Keras gives a new variable its shape and dtype and defers its value; the variables it
    created are then removed from Keras' list of variables awaiting a value, so they are
    never allocated. Returns an ``int``.
    """
    import keras
    from keras.src.backend.common import global_state

    key = "uninitialized_variables"
    pending = global_state.get_global_attribute(key, [], set_to_default=True)
    start = len(pending)
    try:
        with keras.StatelessScope(initialize_variables=False):
            factory()
    finally:
        pending = global_state.get_global_attribute(key, [], set_to_default=True)
        created = pending[start:]
        del pending[start:]
    return variable_bytes(created)


def check_weight_bytes(factory, cap, what):
    """:func:`weight_bytes` of ``factory``, or :class:`ZooSizeError` if above ``cap``."""
    n = weight_bytes(factory)
    if n > cap:
        raise ZooSizeError(f"{what} would allocate {n} bytes of weights ({human(n)}), above "
                           f"the cap of {cap} bytes ({human(cap)}); {_HOW_TO_RAISE}.")
    return n
