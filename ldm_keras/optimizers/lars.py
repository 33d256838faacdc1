"""LARS: layer-wise adaptive rate scaling (You, Gitman & Ginsburg, 2017)."""

import re

import keras
from keras import ops

from .._serialization import register
from .._validation import check_positive

__all__ = ["LARS"]


def _patterns(value, name):
    """``None``, one regex string or a list of them → a tuple of strings (checked)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"`{name}` must be None, a string or a list of strings (regular "
                         f"expressions matched against variable paths); received "
                         f"{value!r}.") from None
    for p in items:
        if not isinstance(p, str):
            raise ValueError(f"`{name}` must hold strings (regular expressions); received "
                             f"{p!r} in {value!r}.")
        try:
            re.compile(p)
        except re.error as err:
            raise ValueError(f"`{name}` holds an invalid regular expression {p!r}: "
                             f"{err}.") from None
    return items


def _matches(variable, patterns):
    if not patterns:
        return False
    names = (str(getattr(variable, "path", "")), str(getattr(variable, "name", "")))
    return any(re.search(p, n) for p in patterns for n in names)


@register
class LARS(keras.optimizers.Optimizer):
    """Momentum SGD with a layer-wise trust ratio (You, Gitman & Ginsburg, 2017).

    For every variable ``w`` (one layer's kernel, say) with gradient ``g`` and learning
    rate ``γ_t`` (a float or a schedule), with ``λ_w`` the weight decay of ``w`` (``λ``,
    or 0 when ``w`` is excluded from weight decay):

    .. math::

        d &= g + λ_w\\, w \\\\
        τ &= \\begin{cases} \\dfrac{η\\,\\lVert w\\rVert}{\\lVert g\\rVert + λ_w\\,
             \\lVert w\\rVert + ε} & \\text{if } w \\text{ is adapted and }
             \\lVert w\\rVert > 0,\\ \\lVert g\\rVert > 0 \\\\
             1 & \\text{otherwise} \\end{cases} \\\\
        v &← μ\\,v + γ_t\\,τ\\,d \\\\
        w &← w - v \\qquad (\\text{Nesterov: } w ← w - (μ\\,v + γ_t\\,τ\\,d))

    (Algorithm 1 of the paper, with ``ε`` in the denominator; norms are Frobenius norms
    over the whole variable; the velocity ``v`` starts at 0). The weight decay is part
    of the update (it enters the trust ratio), not decoupled as in AdamW. A variable
    excluded from both weight decay and layer adaptation gets plain momentum SGD,
    ``v ← μ v + γ_t g``, ``w ← w - v``; one excluded from adaptation only gets momentum
    SGD on ``g + λ w``.

    **Exclusions.** ``exclude_from_weight_decay`` and ``exclude_from_layer_adaptation``
    are regular expressions matched (``re.search``) against each variable's ``path``
    (e.g. ``"conv_encoder/dense/bias"``) and ``name``. With ``exclude_1d=True`` (the
    default) every variable with at most one dimension — the biases and the scales and
    offsets of BatchNormalization / LayerNormalization — is excluded from both, as in
    the usual SimCLR/BYOL setup. ``exclude_from_layer_adaptation=None`` means "the same
    patterns as ``exclude_from_weight_decay``".

    Args:
        learning_rate: ``γ``: a float or a ``keras.optimizers.schedules`` schedule.
        momentum: ``μ`` in ``[0, 1)`` (default 0.9; 0: no velocity variable).
        weight_decay: ``λ >= 0`` (default 0).
        trust_coefficient: ``η > 0`` (default 0.001, as in the paper).
        epsilon: ``ε >= 0`` in the trust ratio's denominator (default 1e-8).
        nesterov: Nesterov momentum (default False).
        exclude_from_weight_decay: None, a regex or a list of regexes.
        exclude_from_layer_adaptation: None (the weight-decay patterns), a regex or a
            list of regexes.
        exclude_1d: exclude every variable of rank ≤ 1 from both (default True).
        **kwargs: the other ``keras.optimizers.Optimizer`` arguments (``clipnorm``,
            ``global_clipnorm``, ``use_ema``, ``name``, ...).

    Example:
        >>> opt = LARS(learning_rate=0.3, momentum=0.9, weight_decay=1e-6)
        >>> model.compile(optimizer=opt)
        >>> # a cosine schedule over the run, as in the reference image recipe
        >>> sched = keras.optimizers.schedules.CosineDecay(0.3, decay_steps=1000 * 195)
        >>> model.compile(optimizer=LARS(sched, weight_decay=1e-6))
    """

    def __init__(self, learning_rate=0.1, momentum=0.9, weight_decay=0.0,
                 trust_coefficient=0.001, epsilon=1e-8, nesterov=False,
                 exclude_from_weight_decay=None, exclude_from_layer_adaptation=None,
                 exclude_1d=True, name="lars", **kwargs):
        momentum = check_positive(momentum, "momentum", allow_zero=True)
        if momentum >= 1.0:
            raise ValueError(f"`momentum` must be in [0, 1); received {momentum!r}.")
        weight_decay = check_positive(0.0 if weight_decay is None else weight_decay,
                                      "weight_decay", allow_zero=True)
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay or None,
                         name=name, **kwargs)
        self.momentum = momentum
        self.trust_coefficient = check_positive(trust_coefficient, "trust_coefficient")
        self.epsilon = check_positive(epsilon, "epsilon", allow_zero=True)
        self.nesterov = bool(nesterov)
        self.exclude_1d = bool(exclude_1d)
        self._wd_patterns = _patterns(exclude_from_weight_decay, "exclude_from_weight_decay")
        self._adapt_patterns = _patterns(exclude_from_layer_adaptation,
                                         "exclude_from_layer_adaptation")

    # -- which variable gets what ------------------------------------------------------
    def _excluded_1d(self, variable):
        return self.exclude_1d and len(tuple(variable.shape)) <= 1

    def uses_weight_decay(self, variable):
        """True when ``variable`` gets the weight decay ``λ`` (see the exclusions)."""
        if not self.weight_decay or self._excluded_1d(variable):
            return False
        if id(variable) in getattr(self, "_wd_excluded_ids", ()):
            return False
        return not _matches(variable, self._wd_patterns)

    def uses_layer_adaptation(self, variable):
        """True when ``variable``'s step is scaled by the trust ratio ``τ``."""
        if self._excluded_1d(variable):
            return False
        patterns = self._wd_patterns if self._adapt_patterns is None else self._adapt_patterns
        return not _matches(variable, patterns)

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Keras' hook, honoured by LARS: exclude ``var_list`` (variables) and
        ``var_names`` (regexes, added to ``exclude_from_weight_decay``) from the weight
        decay only (their layer adaptation is unchanged). Call it before the optimizer is
        built.

        Example:
            >>> opt = LARS(0.3, weight_decay=1e-6)
            >>> opt.exclude_from_weight_decay(var_names=["embedding"])
        """
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` must be called before the "
                             "optimizer is built (before the first training step).")
        if var_names:
            added = _patterns(var_names, "var_names")
            if self._adapt_patterns is None:   # adaptation keeps the patterns it had
                self._adapt_patterns = tuple(self._wd_patterns or ())
            self._wd_patterns = tuple(self._wd_patterns or ()) + added
        self._wd_excluded_ids = set(getattr(self, "_wd_excluded_ids", set())) | {
            id(v) for v in (var_list or [])}

    # -- Keras optimizer protocol ----------------------------------------------------------
    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")
        self._decays = [self.uses_weight_decay(v) for v in variables]
        self._adapts = [self.uses_layer_adaptation(v) for v in variables]

    def _apply_weight_decay(self, variables):
        # LARS folds the weight decay into the update and the trust ratio (update_step);
        # Keras' decoupled decay (AdamW style) must not be applied on top.
        return

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        w = ops.convert_to_tensor(variable)
        wd = float(self.weight_decay or 0.0) if self._decays[index] else 0.0
        d = g + ops.cast(wd, dtype) * w if wd else g
        if self._adapts[index]:
            w32, g32 = ops.cast(w, "float32"), ops.cast(g, "float32")
            w_norm = ops.sqrt(ops.sum(ops.square(w32)))
            g_norm = ops.sqrt(ops.sum(ops.square(g32)))
            denom = g_norm + wd * w_norm + self.epsilon
            ok = ops.logical_and(w_norm > 0, g_norm > 0)
            safe = ops.where(denom > 0, denom, ops.ones_like(denom))
            trust = ops.where(ok, self.trust_coefficient * w_norm / safe,
                              ops.ones_like(w_norm))
            step = lr * ops.cast(trust, dtype) * d
        else:
            step = lr * d
        if self.momentum == 0:
            self.assign_sub(variable, step)
            return
        v = self.momentums[index]
        mu = ops.cast(self.momentum, dtype)
        new_v = mu * v + step
        self.assign(v, new_v)
        if self.nesterov:
            self.assign_sub(variable, mu * new_v + step)
        else:
            self.assign_sub(variable, new_v)

    def get_config(self):
        config = super().get_config()
        config.update({
            "weight_decay": float(self.weight_decay or 0.0),
            "momentum": self.momentum,
            "trust_coefficient": self.trust_coefficient,
            "epsilon": self.epsilon,
            "nesterov": self.nesterov,
            "exclude_from_weight_decay": None if self._wd_patterns is None
            else list(self._wd_patterns),
            "exclude_from_layer_adaptation": None if self._adapt_patterns is None
            else list(self._adapt_patterns),
            "exclude_1d": self.exclude_1d,
        })
        return config
