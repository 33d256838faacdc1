"""Plug-in entropy of a categorical latent (softmax outputs over clusters)."""

from keras import ops

from .._serialization import register
from .._validation import check_positive, check_rank, check_same_shape
from ._common import f32
from .base import EntropyEstimator


@register
class CategoricalEntropy(EntropyEstimator):
    """Plug-in entropy of the batch's cluster distribution, from softmax outputs.

    Inputs ``q ∈ R^{N×n}`` are probability vectors (rows of a softmax over ``n``
    classes). With ``P`` the batch-mean distribution,

    .. math::

        \\hat H = -\\sum_j P_j \\log(P_j + \\epsilon), \\qquad P_j = \\frac1N \\sum_i q_{ij}

    (``ε = 1e-6`` keeps the logarithm finite for empty clusters; it biases the estimate
    by at most ``n·ε`` nats). Nothing else is dropped: this is the exact entropy of the
    plug-in distribution.

    Two views (the categorical pair model of LDM):

    * :meth:`joint`: ``P_jk = (1/N) Σ_i q1_ij q2_ik`` (an ``n × n`` matrix, one matrix
      product) and ``H[c1, c2] = -Σ_jk P_jk log(P_jk + ε)``;
    * :meth:`marginal`: ``H[c1] + H[c2]`` with the two views' marginals tied to their
      average ``p̄ = ½(mean q1 + mean q2)``, i.e. ``2 · H(p̄)``.

    Args:
        eps: ``ε > 0`` inside the logarithm (default 1e-6).

    Call arguments:
        q: ``(N, n)`` probability vectors.
        q2: optional second view ``(N, n)``; when given, the call returns the joint
            entropy (what :meth:`joint` does).

    Example:
        >>> est = CategoricalEntropy()
        >>> q1, q2 = softmax(logits1), softmax(logits2)
        >>> h = est.joint(q1, q2)            # H[c1, c2] in nats
    """

    def __init__(self, eps=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.eps = check_positive(eps, "eps")

    def _validate(self, q, q2=None):
        check_rank(q, 2, "q", "(batch, classes)")
        if q2 is not None:
            check_same_shape(q, q2, "q1", "q2")

    def _plugin(self, p):
        return -ops.sum(p * ops.log(p + self.eps))

    def call(self, q, q2=None):
        """``H(mean_i q_i)``; with ``q2``, the joint ``H`` of ``P = qᵀ q2 / N``."""
        self._validate(q, q2)
        q = f32(q)
        if q2 is None:
            return self._plugin(ops.mean(q, axis=0))
        q2 = f32(q2)
        n = ops.cast(ops.shape(q)[0], "float32")
        return self._plugin(ops.matmul(ops.transpose(q), q2) / n)

    def joint(self, q1, q2):
        """``H[c1, c2]`` of the joint plug-in ``P = q1ᵀ q2 / N``."""
        return self(q1, q2)

    def marginal(self, q1, q2):
        """``2 · H(p̄)`` with ``p̄ = ½(mean q1 + mean q2)`` (the mean of the stacked views)."""
        check_rank(q1, 2, "q1", "(batch, classes)")
        check_same_shape(q1, q2, "q1", "q2")
        return 2.0 * self(ops.concatenate([f32(q1), f32(q2)], axis=0))

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}
