"""Input checks shared by every ldm_keras component.

Each check raises a ``ValueError`` that names what was expected and what was given, so
bad input fails early instead of surfacing as a NaN or a backend stack trace.
Symbolic tensors (unknown batch size while Keras traces a functional model) pass the
checks that need a concrete size.
"""

import math
import numbers

import numpy as np
from keras import ops


def static_shape(x):
    """Shape of ``x`` as a tuple (entries may be ``None`` for symbolic dims)."""
    return tuple(ops.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)


def check_rank(x, rank, name="z", what="(batch, features)"):
    """Raise unless ``x`` has exactly ``rank`` dimensions."""
    shape = static_shape(x)
    if len(shape) != rank:
        raise ValueError(
            f"`{name}` must be a rank-{rank} tensor of shape {what}; "
            f"received shape {shape} (rank {len(shape)})."
        )
    return shape


def check_same_shape(a, b, name_a="z1", name_b="z2"):
    """Raise unless ``a`` and ``b`` have the same (known) shape."""
    sa, sb = static_shape(a), static_shape(b)
    if len(sa) != len(sb) or any(
        x is not None and y is not None and x != y for x, y in zip(sa, sb)
    ):
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same shape; "
            f"received {name_a}.shape={sa} and {name_b}.shape={sb}."
        )


def check_positive(value, name, allow_zero=False):
    """Raise unless ``value`` is a finite number > 0 (or >= 0 with ``allow_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number; received {value!r}.") from None
    ok = v >= 0 if allow_zero else v > 0
    if not ok or not math.isfinite(v):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be a finite number {bound}; received {value!r}.")
    return v


def check_angle(value, name):
    """``None``, or ``value`` as a float in ``(0, π]`` (an angle in radians per step)."""
    if value is None:
        return None
    angle = check_positive(value, name)
    if angle > math.pi:
        raise ValueError(f"`{name}` must be in (0, π] (radians per step); received "
                         f"{value!r}.")
    return angle


def check_choice(value, name, choices):
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}; received {value!r}.")
    return value


def check_min_batch(x, minimum, name="z", why=""):
    """Raise when the (static) batch size of ``x`` is smaller than ``minimum``."""
    n = static_shape(x)[0]
    if isinstance(n, int) and n < minimum:
        reason = f" ({why})" if why else ""
        raise ValueError(
            f"`{name}` needs a batch of at least {minimum} samples{reason}; "
            f"received a batch of {n}."
        )


def check_open_interval(value, name, low, high):
    """Raise unless ``value`` is a finite number with ``low < value < high``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number; received {value!r}.") from None
    if not (math.isfinite(v) and low < v < high):
        raise ValueError(
            f"`{name}` must lie in the open interval ({low:g}, {high:g}); received {value!r}."
        )
    return v


def check_last_dim(x, expected, name="z", what="features"):
    """Raise when the (static) last dimension of ``x`` is known and differs from ``expected``."""
    shape = static_shape(x)
    got = shape[-1] if shape else None
    if got is not None and expected is not None and int(got) != int(expected):
        raise ValueError(
            f"`{name}` must have {expected} {what} in its last dimension; "
            f"received shape {shape}."
        )


def check_int(value, name, minimum=0):
    """Raise unless ``value`` is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer >= {minimum}; received {value!r}.")
    v = int(value)
    if v < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; received {value!r}.")
    return v


def check_finite(x, name="z"):
    """Raise when a concrete tensor holds NaN or ±inf.

    Only checkable eagerly: symbolic tensors (Keras functional tracing) and traced
    tensors (inside ``jax.jit`` or ``tf.function``) pass unchecked. The check costs
    one reduction and a device-to-host copy of a single boolean.
    """
    from keras.utils import is_keras_tensor

    if is_keras_tensor(x):
        return
    flag = ops.all(ops.isfinite(x))
    try:
        ok = bool(ops.convert_to_numpy(flag))
    except Exception:  # traced value (jit / graph mode): cannot be checked eagerly
        return
    if not ok:
        raise ValueError(
            f"`{name}` must contain only finite values; received a tensor of shape "
            f"{static_shape(x)} with NaN or inf entries."
        )


def check_real_dtype(x, name="z"):
    """Raise unless ``x`` holds real numbers (a float, integer or bool dtype).

    Strings, objects and complex numbers are rejected with a ``ValueError`` instead of a
    backend cast error (or, for complex input, a silent drop of the imaginary part).
    Inputs without a ``dtype`` (Python lists/scalars) pass.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return
    text = str(getattr(dtype, "name", dtype)).lower()
    kind = getattr(dtype, "kind", None)  # NumPy dtypes
    bad = kind in ("U", "S", "O", "c", "V", "M", "m") if kind is not None else (
        "str" in text or "complex" in text or "object" in text)
    if bad:
        raise ValueError(
            f"`{name}` must hold real numbers (a float or integer dtype); "
            f"received dtype {text}."
        )


def check_probability(value, name="p"):
    """Raise unless ``value`` is a number in ``[0, 1]``; return it as a float."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a probability in [0, 1]; received {value!r}.") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"`{name}` must be a probability in [0, 1]; received {value!r}.")
    return v


def check_interval(value, name, low=None, high=None, positive=False):
    """``value`` as a pair ``(a, b)`` of finite numbers with ``a <= b`` inside ``[low, high]``
    (and ``a > 0`` with ``positive``)."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a pair (low, high) of numbers; received {value!r}."
        ) from None
    bad = (
        not (math.isfinite(a) and math.isfinite(b))
        or a > b
        or (low is not None and a < low)
        or (high is not None and b > high)
        or (positive and a <= 0)
    )
    if bad:
        bounds = f" within [{low}, {high}]" if low is not None or high is not None else ""
        sign = " with low > 0" if positive else ""
        raise ValueError(
            f"`{name}` must be a pair (low, high) with low <= high{bounds}{sign}; "
            f"received {value!r}."
        )
    return (a, b)


def check_seed(seed, name="seed"):
    """Raise unless ``seed`` is an int or ``None``."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`{name}` must be an int or None; received {seed!r}.")
    return seed


def check_momentum(value, name="ema_momentum"):
    """``None``, or a number in ``[0, 1)`` (an exponential-moving-average momentum)."""
    if value is None:
        return None
    m = check_positive(value, name, allow_zero=True)
    if m >= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1); received {value!r}.")
    return m


def check_square(x, name="a", what="(n, n)"):
    """Raise unless ``x`` is a rank-2 tensor with equal (known) sides; return its shape."""
    shape = check_rank(x, 2, name, what)
    if shape[0] is not None and shape[1] is not None and shape[0] != shape[1]:
        raise ValueError(f"`{name}` must be a square matrix {what}; received shape {shape}.")
    return shape


# -- NumPy arrays (evaluation read-outs) --------------------------------------------------


def check_features(z, name):
    """A 2-D numeric, finite array ``(samples, features)``, returned as float64."""
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array (samples, features); "
                         f"received shape {z.shape}.")
    if not np.issubdtype(z.dtype, np.number):
        raise ValueError(f"`{name}` must be numeric; received dtype {z.dtype}.")
    z = z.astype("float64")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return z


def check_labels(y, n, name):
    """A 1-D array of integer class labels (``n`` of them unless ``n`` is None), as int64.

    A column ``(n, 1)`` is flattened; floats with integer values are accepted.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array of integer labels; "
                         f"received shape {y.shape}.")
    if n is not None and len(y) != n:
        raise ValueError(f"`{name}` must have one label per sample ({n}); "
                         f"received {len(y)} labels.")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        if np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
            y = y.astype("int64")
        else:
            raise ValueError(f"`{name}` must hold integer class labels; "
                             f"received dtype {y.dtype}.")
    return y.astype("int64")


def check_matrix(x, name):
    """A finite rank-2 array, returned as float64."""
    x = np.asarray(x, dtype="float64")
    if x.ndim != 2:
        raise ValueError(f"`{name}` must be a matrix (rank 2); received shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` must contain only finite values.")
    return x
