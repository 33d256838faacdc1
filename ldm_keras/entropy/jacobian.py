"""Exact entropy change under an invertible linear map: ``log|det W|``."""

from keras import ops

from .._serialization import register
from .._validation import check_rank
from ._common import _Estimator, f32


def _check_square(w, name="w"):
    shape = check_rank(w, 2, name, "(d, d)")
    if shape[0] is not None and shape[1] is not None and shape[0] != shape[1]:
        raise ValueError(f"`{name}` must be a square matrix (d, d); received shape {shape}.")


def log_abs_det(w):
    """``log|det W|`` of a square matrix, via ``slogdet`` (an LU factorisation), in float32.

    Change of variables: for ``z = W x`` with ``W`` invertible,
    ``H[z] = H[x] + log|det W|``, so for linear ICA the entropy term is exact up to the
    constant ``H[x]``. The gradient is ``W^{-T}``. The transpose has the same value, so a
    Keras ``Dense`` kernel (applied as ``x @ W``) can be passed as it is.

    Example:
        >>> log_abs_det(dense.kernel)        # float32 scalar
    """
    _check_square(w)
    _, logabs = ops.slogdet(f32(w))
    return ops.cast(logabs, "float32")


@register
class LinearJacobian(_Estimator):
    """Entropy change ``log|det W|`` of an invertible linear map, as an estimator layer.

    .. math::

        H[W x] = H[x] + \\log\\lvert\\det W\\rvert

    The layer takes the square matrix ``W`` (not a batch of latents) and returns
    ``log|det W|`` (:func:`log_abs_det`); the data entropy ``H[x]`` is a constant and is
    dropped. ``joint``/``marginal`` do not apply to a single linear map and raise
    ``NotImplementedError``. Cost ``O(d³)``, one LU factorisation.

    Example:
        >>> est = LinearJacobian()
        >>> h = est(unmixing_kernel)         # log|det W|
    """

    def _validate(self, w):
        _check_square(w)

    def call(self, w):
        self._validate(w)
        return log_abs_det(w)

    def joint(self, z1, z2):
        raise NotImplementedError(
            "LinearJacobian takes the square matrix W, not two views; call it on W."
        )

    def marginal(self, z1, z2):
        raise NotImplementedError(
            "LinearJacobian takes the square matrix W, not two views; call it on W."
        )


__all__ = ["LinearJacobian", "log_abs_det"]
