"""Base class of the entropy estimators (the uniformity term of LDM)."""

import keras
from keras import ops

from .._validation import check_rank, check_real_dtype


class EntropyEstimator(keras.layers.Layer):
    """Estimate the differential entropy ``H[z]`` from a batch ``Z ∈ R^{N×d}``.

    Subclasses implement :meth:`call`, returning a float32 scalar whatever the dtype
    policy (inputs are not autocast; the estimator casts them to float32). Additive
    constants that do not depend on ``Z`` may be dropped; each subclass says which.

    Two views:

    * :meth:`joint` — ``H[z1, z2]`` estimated on the feature-wise concatenation
      ``[z1, z2]`` (LDM, the reference code's "dual" mode);
    * :meth:`marginal` — ``H[z1] + H[z2] = H[z1, z2] + I(z1; z2)`` (LDM + MI; standard
      SimCLR and VICReg).

    Subclasses override either when the estimator has a better two-view form, and
    ``_validate`` to check their (possibly symbolic) inputs: a symbolic call (Keras
    functional tracing) runs the check and returns a float32 scalar spec.

    Example (a new estimator: the entropy of a diagonal Gaussian fit, constants dropped):
        >>> class DiagonalGaussianEntropy(EntropyEstimator):
        ...     def call(self, z):
        ...         z = keras.ops.cast(z, "float32")
        ...         return 0.5 * keras.ops.sum(keras.ops.log(keras.ops.var(z, axis=0) + 1e-6))
        >>> h = DiagonalGaussianEntropy().joint(z1, z2)
    """

    #: The smallest batch the estimator accepts (``k + 1`` for k-NN).
    min_batch_size = 2

    def __init__(self, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)

    def __call__(self, z, *args, **kwargs):
        check_real_dtype(z, "z")  # before Keras converts it to a backend tensor
        return super().__call__(z, *args, **kwargs)

    def compute_output_shape(self, *args, **kwargs):
        return ()

    def compute_output_spec(self, *args, **kwargs):
        self._validate(*args, **kwargs)
        return keras.KerasTensor((), dtype="float32")

    def _validate(self, z, *args, **kwargs):
        """Raise ``ValueError`` on bad (possibly symbolic) input; overridden per estimator."""
        check_rank(z, 2, "z", "(batch, features)")

    def joint(self, z1, z2):
        """``H[z1, z2]`` estimated on ``concatenate([z1, z2], axis=-1)``."""
        return self(ops.concatenate([ops.cast(z1, "float32"), ops.cast(z2, "float32")], -1))

    def marginal(self, z1, z2):
        """``H[z1] + H[z2]``."""
        return self(z1) + self(z2)
