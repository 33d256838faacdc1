"""Base class of the latent models (the alignment term of LDM)."""

import keras
from keras import ops

from .._validation import check_rank, check_real_dtype, check_same_shape


class Prior(keras.layers.Layer):
    """A latent model ``p_θ(z | context)``: the alignment term of LDM.

    Subclasses implement :meth:`log_prob`, which returns one log density per sample
    (shape ``(batch,)``), in float32 whatever the dtype policy, up to an additive
    constant that each subclass documents. Calling the layer is the same as calling
    ``log_prob``. For two views, ``z`` is the target view and ``context`` the
    prediction made from the other view (``μ(z1)``); the alignment term is
    ``mean(log_prob(z2, context=μ(z1)))``.

    Inputs are not autocast: the layer casts them to float32 itself, so it is safe to
    use under ``mixed_float16``.

    Example (a new latent model; register it to make it serialisable):
        >>> @keras.saving.register_keras_serializable(package="my_project")
        ... class Cauchy(Prior):
        ...     def log_prob(self, z, context=None):
        ...         e = self._f32(z) - (0.0 if context is None else self._f32(context))
        ...         return -keras.ops.sum(keras.ops.log1p(keras.ops.square(e)), axis=-1)
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)

    def __call__(self, z, *args, **kwargs):
        check_real_dtype(z, "z")  # before Keras converts it to a backend tensor
        context = args[0] if args else kwargs.get("context")
        if context is not None:
            check_real_dtype(context, "context")
        return super().__call__(z, *args, **kwargs)

    def call(self, z, context=None):
        return self.log_prob(z, context)

    def log_prob(self, z, context=None):
        raise NotImplementedError

    def compute_output_shape(self, z_shape, context_shape=None):
        return tuple(z_shape[:-1])

    @staticmethod
    def _f32(x):
        return None if x is None else ops.cast(x, "float32")


def residual(z, context):
    """``e = z - context`` in float32 after checking both are ``(batch, features)`` of the
    same shape; ``z`` itself when there is no context (the error of most priors)."""
    z = ops.cast(z, "float32")
    check_rank(z, 2)
    if context is None:
        return z
    context = ops.cast(context, "float32")
    check_rank(context, 2, name="context")
    check_same_shape(z, context, "z", "context")
    return z - context
