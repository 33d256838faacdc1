"""Exact entropy change under an invertible linear map: ``log|det W|``."""


from .._math import log_abs_det
from .._serialization import register
from .._validation import check_square
from .base import EntropyEstimator


@register
class LinearJacobian(EntropyEstimator):
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
        check_square(w, "w", "(d, d)")

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
