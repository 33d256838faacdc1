"""Diagnostics of the stop-gradient claim (docs/spec.md §3.7).

The paper's claim: the part of the gradient that stop-gradient removes acts like the
gradient of an entropy term. With encoder parameters ``θ`` and the alignment loss
``L_align = mean_t nll_t``, compare three encoder gradients on one batch:

* ``g_sg``  = ∇θ L_align with stop-gradient targets (what stop-gradient training follows);
* ``g_full`` = ∇θ L_align with differentiated targets (plain alignment);
* ``g_H``   = ∇θ (−Ĥ[z]), an explicit entropy (k-NN by default) of the latents pooled
  over batch × time.

and report

* ``sg_entropy_cosine`` = cos(g_sg − g_full, g_H): positive when what stop-gradient changes
  points along the entropy gradient (the claim);
* ``sg_explicit_cosine`` = cos(g_sg, g_full + λ g_H): agreement of stop-gradient training
  with explicit-entropy training.
"""

import keras
import numpy as np

from .. import backend
from .._validation import check_positive
from ..entropy.base import EntropyEstimator
from ..entropy.knn import KNNEntropy
from .predictive import PredictiveLDM


def _flat(grads, variables):
    parts = []
    for g, v in zip(grads, variables):
        if g is None:
            parts.append(np.zeros(int(np.prod(v.shape)), "float64"))
        else:
            parts.append(np.asarray(keras.ops.convert_to_numpy(g), "float64").ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


def _cos(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def _target_flag_owner(model):
    return model.predictor.cell if model._is_kalman else model.predictor


def gradient_cosines(model, x, entropy=None, entropy_weight=1.0):
    """The stop-gradient diagnostics of a :class:`PredictiveLDM` on a batch ``x``.

    Returns a dict with ``sg_entropy_cosine``, ``sg_explicit_cosine`` and the three
    gradient norms (``norm_sg``, ``norm_full``, ``norm_entropy``). Computed eagerly,
    without changing any weight.

    Example:
        >>> gradient_cosines(model, frames[:32])["sg_entropy_cosine"]
    """
    if not isinstance(model, PredictiveLDM):
        raise ValueError(f"gradient_cosines needs a PredictiveLDM; received {model!r}.")
    entropy = KNNEntropy(k=3) if entropy is None else entropy
    if not isinstance(entropy, EntropyEstimator):
        raise ValueError(f"`entropy` must be an EntropyEstimator; received {entropy!r}.")
    weight = check_positive(entropy_weight, "entropy_weight", allow_zero=True)
    x = keras.ops.convert_to_tensor(np.asarray(x, "float32"))
    if not model.built:
        model.build(tuple(x.shape))
    variables = list(model.encoder.trainable_variables)
    owner = _target_flag_owner(model)

    def alignment_loss(stop_gradient):
        def fn():
            previous = owner.stop_gradient_targets
            owner.stop_gradient_targets = stop_gradient
            try:
                _, out = model._forward(x, training=False)
            finally:
                owner.stop_gradient_targets = previous
            return model.mean_nll(out["nll"])
        return fn

    def entropy_loss():
        z = model.encode(x, training=False)
        return -entropy(keras.ops.reshape(keras.ops.cast(z, "float32"), (-1, z.shape[-1])))

    g_sg = _flat(backend.gradients(alignment_loss(True), variables)[1], variables)
    g_full = _flat(backend.gradients(alignment_loss(False), variables)[1], variables)
    g_h = _flat(backend.gradients(entropy_loss, variables)[1], variables)
    return {
        "sg_entropy_cosine": _cos(g_sg - g_full, g_h),
        "sg_explicit_cosine": _cos(g_sg, g_full + weight * g_h),
        "norm_sg": float(np.linalg.norm(g_sg)),
        "norm_full": float(np.linalg.norm(g_full)),
        "norm_entropy": float(np.linalg.norm(g_h)),
    }


class GradientCosineMonitor(keras.callbacks.Callback):
    """Log the stop-gradient diagnostics of :func:`gradient_cosines` during ``fit``.

    Every ``every`` epochs (at the epoch's end) the cosines on the fixed batch ``x`` are
    added to the epoch's logs (so they appear in ``History`` and in the progress bar of
    the next epoch's summary) and appended to :attr:`history`.

    Args:
        x: a fixed batch of sequences ``(B, T, …)`` to probe (B·T > k for k-NN).
        entropy: the explicit estimator (default ``KNNEntropy(k=3)``).
        every: period in epochs.

    Example:
        >>> monitor = GradientCosineMonitor(frames[:32])
        >>> model.fit(frames, epochs=10, callbacks=[monitor])
        >>> monitor.history[-1]["sg_entropy_cosine"]
    """

    def __init__(self, x, entropy=None, entropy_weight=1.0, every=1):
        super().__init__()
        self.x = np.asarray(x, "float32")
        self.entropy = entropy
        self.entropy_weight = entropy_weight
        self.every = max(int(every), 1)
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        values = gradient_cosines(self.model, self.x, self.entropy, self.entropy_weight)
        self.history.append({"epoch": epoch, **values})
        if logs is not None:
            logs["sg_entropy_cosine"] = values["sg_entropy_cosine"]
            logs["sg_explicit_cosine"] = values["sg_explicit_cosine"]
