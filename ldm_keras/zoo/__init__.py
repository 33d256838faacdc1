"""The model zoo: published LDM encoders that load, verified, on every backend.

Each entry (``zoo/NAME/`` in the source tree, installed as ``ldm_keras/_zoo_data``)
holds the Keras configs of its parts, their weights (``*.weights.h5``), reference
outputs, metrics and a card; ``index.json`` gives every file's size and SHA-256, which
are checked before any byte of weights is read. Entries rebuild deterministically from
a recipe with a fixed seed (``ldm-keras zoo build NAME``). ``$LDM_KERAS_ZOO`` points at
another zoo directory.

The zoo is confined to its directory and its download cache: names, versions and file
names from the index are checked before any path is built, no symbolic link is followed,
and a size cap (2 GiB, ``max_bytes=`` or ``$LDM_KERAS_ZOO_MAX_BYTES``) bounds the files
and the weights a config would allocate, measured before allocating (see
:mod:`ldm_keras.zoo.index`). Every error is a :class:`ZooError` (a ``ValueError``).

The zoo is built in one-way layers: :mod:`.index` (where the zoo is, its index, its
files checked) ← :mod:`.loader` (Keras objects from checked files) ← :mod:`.verifier`
(reference outputs, recomputed metrics) ← :mod:`.builder` (training through
:mod:`ldm_keras.jobs`, atomic writing); :mod:`.entries` holds the entries as data and
:mod:`.cards` their cards. Every function takes the zoo directory as ``root=``.

Example:
    >>> import ldm_keras as ldm
    >>> ldm.zoo.list()
    >>> encoder = ldm.zoo.load("digits-simclr")          # frozen Keras encoder
    >>> z = encoder.predict(images)                      # (n, 8, 8, 1) -> (n, 64)
    >>> model = ldm.zoo.load_model("dotmotion-circular-noisy-kalman")   # PredictiveLDM
    >>> ldm.zoo.verify("digits-simclr", eval=True)["ok"]
    True
"""

from . import builder, entries, index, loader, verifier  # noqa: F401 - the layers
from ._errors import (
    ZooError,
    ZooFormatError,
    ZooIntegrityError,
    ZooPathError,
    ZooSizeError,
    ZooUnsafeConfigError,
)
from ._limits import DEFAULT_MAX_BYTES, MAX_BYTES_ENV
from .cards import BIBTEX, CITATION
from .index import cache_dir, entry_files, info, read_card, sha256, zoo_dir
from .loader import load, load_component, load_model
from .verifier import check_reference, verify

list = index.entry_names  # noqa: A001 - the zoo's public name


def build(name, root=None, train=None, verbose=0):
    """Rebuild zoo entry ``name`` from its recipe and seed (see :mod:`.builder`).

    Example:
        >>> ldm_keras.zoo.build("digits-simclr")
    """
    return builder.build(name, root=root, train=train, verbose=verbose)


__all__ = [
    "BIBTEX",
    "CITATION",
    "DEFAULT_MAX_BYTES",
    "MAX_BYTES_ENV",
    "ZooError",
    "ZooFormatError",
    "ZooIntegrityError",
    "ZooPathError",
    "ZooSizeError",
    "ZooUnsafeConfigError",
    "build",
    "cache_dir",
    "check_reference",
    "entry_files",
    "info",
    "list",
    "load",
    "load_component",
    "load_model",
    "read_card",
    "sha256",
    "verify",
    "zoo_dir",
]
