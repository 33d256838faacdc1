"""The LDM objective: one latent model (alignment) plus one entropy estimator (uniformity).

.. math::

    F = \\mathbb{E}_R[\\log p_θ(z)] + λ\\,H_R[z], \\qquad \\text{loss} = -F

For two views ``z1 = f(x1)``, ``z2 = f(x2)`` (docs/spec.md §1):

* alignment ``= ½ (E[log p(t2 | μ(z1))] + E[log p(t1 | μ(z2))])`` with ``μ`` the predictor
  head (identity when absent) and ``t`` the targets: the other view's latents, wrapped in
  ``stop_gradient`` when ``stop_gradient=True`` (SimSiam, BYOL), or the output of an EMA
  target network;
* entropy, by ``mode``:

  - ``"joint"``     ``H[z1, z2]`` on the feature-wise concatenation (LDM);
  - ``"marginal"``  ``H[z1] + H[z2] = H[z1, z2] + I(z1; z2)`` (LDM + MI; SimCLR, VICReg);
  - ``"pooled"``    ``2·Ĥ(stack([z1, z2]))``: one estimate on the ``2N`` latents of both
    views pooled over the batch, i.e. ``H[z1] + H[z2]`` under the assumption that the
    views share one marginal distribution;
* ``entropy=None`` drops the entropy term (implicit entropy by stop-gradient).
"""

import keras
from keras import ops

from ._serialization import deserialize, register, serialize
from ._validation import check_choice, check_positive, check_rank, check_same_shape
from .entropy.base import EntropyEstimator
from .priors.base import Prior

MODES = ("joint", "marginal", "pooled")


@register
class LDMObjective(keras.layers.Layer):
    """Compose a latent model and an entropy estimator into one LDM loss.

    ``loss = -(alignment + entropy_weight · entropy)``; the call returns a dict with
    float32 scalars ``loss``, ``alignment`` and ``entropy`` so that a model can report all
    three as metrics.

    Args:
        prior: a :class:`ldm_keras.priors.Prior` (the latent model).
        entropy: a :class:`ldm_keras.entropy.EntropyEstimator`, or ``None`` for the
            implicit (stop-gradient) case.
        entropy_weight: ``λ ≥ 0``; 1 is the principled value.
        mode: ``"joint"``, ``"marginal"`` or ``"pooled"`` (see the module docstring).
        stop_gradient: wrap the alignment targets in ``stop_gradient``.
        symmetric: average the alignment over both directions (``z1 → z2`` and
            ``z2 → z1``); ``False`` uses ``log p(t2 | μ(z1))`` only.

    Example:
        >>> objective = LDMObjective(
        ...     prior=ldm.priors.VonMisesFisher(precision=5.0),
        ...     entropy=ldm.entropy.VonMisesFisherKDE(precision=5.0),
        ...     mode="joint")
        >>> out = objective(z1, z2)       # {"loss", "alignment", "entropy"}
    """

    def __init__(self, prior, entropy=None, entropy_weight=1.0, mode="joint",
                 stop_gradient=False, symmetric=True, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        prior, entropy = deserialize(prior), deserialize(entropy)
        if not isinstance(prior, Prior):
            raise ValueError(f"`prior` must be an ldm_keras.priors.Prior; received {prior!r}.")
        if entropy is not None and not isinstance(entropy, EntropyEstimator):
            raise ValueError(
                "`entropy` must be an ldm_keras.entropy.EntropyEstimator or None; "
                f"received {entropy!r}."
            )
        self.prior = prior
        self.entropy = entropy
        self.entropy_weight = check_positive(entropy_weight, "entropy_weight", allow_zero=True)
        self.mode = check_choice(mode, "mode", MODES)
        self.stop_gradient = bool(stop_gradient)
        self.symmetric = bool(symmetric)

    def build(self, z1_shape, *args, **kwargs):
        for layer in (self.prior, self.entropy):
            if layer is not None and not layer.built:
                layer.build(tuple(z1_shape))
        self.built = True

    def alignment(self, z1, z2, prediction1=None, prediction2=None, target1=None, target2=None):
        """Mean log density of each view's target under the prediction from the other."""
        t1 = z1 if target1 is None else target1
        t2 = z2 if target2 is None else target2
        p1 = z1 if prediction1 is None else prediction1
        p2 = z2 if prediction2 is None else prediction2
        if self.stop_gradient:
            t1, t2 = ops.stop_gradient(t1), ops.stop_gradient(t2)
        forward = ops.mean(self.prior.log_prob(t2, context=p1))
        if not self.symmetric:
            return forward
        backward = ops.mean(self.prior.log_prob(t1, context=p2))
        return 0.5 * (forward + backward)

    def entropy_term(self, z1, z2):
        """The entropy estimate chosen by ``mode`` (0 when ``entropy`` is None)."""
        if self.entropy is None:
            return ops.zeros((), "float32")
        if self.mode == "joint":
            return self.entropy.joint(z1, z2)
        if self.mode == "marginal":
            return self.entropy.marginal(z1, z2)
        pooled = ops.concatenate([ops.cast(z1, "float32"), ops.cast(z2, "float32")], axis=0)
        return 2.0 * self.entropy(pooled)

    def call(self, z1, z2, prediction1=None, prediction2=None, target1=None, target2=None):
        check_rank(z1, 2, "z1")
        check_same_shape(z1, z2, "z1", "z2")
        z1 = ops.cast(z1, "float32")
        z2 = ops.cast(z2, "float32")
        cast = lambda t: None if t is None else ops.cast(t, "float32")  # noqa: E731
        align = self.alignment(z1, z2, cast(prediction1), cast(prediction2),
                               cast(target1), cast(target2))
        ent = self.entropy_term(z1, z2)
        loss = -(align + self.entropy_weight * ent)
        return {"loss": loss, "alignment": align, "entropy": ent}

    def compute_output_spec(self, *args, **kwargs):
        scalar = keras.KerasTensor((), dtype="float32")
        return {"loss": scalar, "alignment": scalar, "entropy": scalar}

    def get_config(self):
        return {
            **super().get_config(),
            "prior": serialize(self.prior),
            "entropy": serialize(self.entropy),
            "entropy_weight": self.entropy_weight,
            "mode": self.mode,
            "stop_gradient": self.stop_gradient,
            "symmetric": self.symmetric,
        }
