"""The zoo's errors: every one is a :class:`ZooError`, itself a ``ValueError``.

* :class:`ZooIntegrityError` — a file's size or SHA-256 differs from the index;
* :class:`ZooPathError` — a name, version, file name, URL or link that would reach outside
  the zoo or its download cache;
* :class:`ZooFormatError` — ``index.json`` or ``config.json`` is not valid JSON, or lacks a
  key or has a value of the wrong type;
* :class:`ZooUnsafeConfigError` — a Keras config that asks for something a published
  model never needs (code, modules outside Keras and ldm_keras), or that Keras'
  ``safe_mode`` refuses;
* :class:`ZooSizeError` — declared files or weights above the size cap.
"""


class ZooError(ValueError):
    """A zoo entry is unknown, incomplete or cannot be loaded (a ``ValueError``)."""


class ZooIntegrityError(ZooError):
    """A zoo file's size or SHA-256 differs from the index: it is corrupted or tampered."""


class ZooPathError(ZooError):
    """A name, file name, version, URL or link would reach outside the zoo or its cache."""


class ZooFormatError(ZooError):
    """``index.json`` or ``config.json`` is malformed (bad JSON, missing key, wrong type)."""


class ZooUnsafeConfigError(ZooError):
    """A Keras config of a zoo entry is refused (code, foreign modules, safe mode)."""


class ZooSizeError(ZooError):
    """An entry's declared files or weights exceed the size cap."""
