"""Deprecated names, kept for one release: they warn and call the new name."""

import functools
import warnings


def deprecated_alias(func, old_name, where):
    """A function ``old_name`` that warns (``DeprecationWarning``) and calls ``func``.

    ``where`` is the module path shown in the message (e.g. ``"ldm_keras.data.dot_motion"``).

    Example:
        >>> rotation_per_step = deprecated_alias(angular_step, "rotation_per_step",
        ...                                      "ldm_keras.data.dot_motion")
    """
    @functools.wraps(func)
    def alias(*args, **kwargs):
        warnings.warn(f"{where}.{old_name} is deprecated and will be removed in the next "
                      f"release; use {where}.{func.__name__}.", DeprecationWarning,
                      stacklevel=2)
        return func(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated alias of :func:`{func.__name__}` (removed in the next release)."
    return alias
