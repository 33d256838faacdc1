"""Per-group learning rates for LDM models: one optimizer per variable group.

Keras optimizers have no parameter groups, and scaling gradients is not the same as
scaling the learning rate for adaptive optimizers such as Adam (whose update is
invariant to the gradient's scale). :class:`GroupedOptimizer` therefore clones the
user's optimizer once per group, with the learning rate multiplied by the group's
factor, and routes every variable to the optimizer of its group. To Keras it is one
optimizer: its ``variables`` are the union of the clones' variables, so saving,
``BackupAndRestore`` and JAX's stateless training work unchanged.
"""

import keras

from .._serialization import register
from .._validation import check_int, check_positive


@register
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate multiplied by a constant, optionally ramped up from 0:
    ``factor · schedule(step) · min(1, step / warmup_steps)``.

    Args:
        schedule: a ``LearningRateSchedule`` (or its config) or a constant rate.
        factor: the multiplier.
        warmup_steps: optimizer steps over which the rate ramps linearly from 0 to
            ``factor · schedule(step)`` (0: no ramp).

    Example:
        >>> base = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=1000)
        >>> fast = ScaledSchedule(base, 100.0)        # the dynamics' rate
        >>> held = ScaledSchedule(base, 30.0, warmup_steps=100)   # 0 at step 0, full at 100
    """

    def __init__(self, schedule, factor, warmup_steps=0):
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = float(schedule)
        self.schedule = schedule
        self.factor = float(factor)
        self.warmup_steps = check_int(warmup_steps, "warmup_steps")

    def __call__(self, step):
        if isinstance(self.schedule, float):
            rate = keras.ops.cast(self.schedule * self.factor, "float32")
        else:
            rate = self.schedule(step) * self.factor
        if self.warmup_steps:
            ramp = keras.ops.cast(step, "float32") / float(self.warmup_steps)
            rate = rate * keras.ops.minimum(1.0, ramp)
        return rate

    def get_config(self):
        schedule = self.schedule
        if not isinstance(schedule, float):
            schedule = keras.optimizers.schedules.serialize(schedule)
        return {"schedule": schedule, "factor": self.factor,
                "warmup_steps": self.warmup_steps}


def _scaled_clone(optimizer, factor, name, warmup_steps=0):
    config = optimizer.get_config()
    lr = optimizer._learning_rate  # the float or the schedule the user gave
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        config["learning_rate"] = ScaledSchedule(lr, factor, warmup_steps)
    elif warmup_steps:
        config["learning_rate"] = ScaledSchedule(float(keras.ops.convert_to_numpy(lr)),
                                                 factor, warmup_steps)
    else:
        config["learning_rate"] = float(keras.ops.convert_to_numpy(lr)) * factor
    config["name"] = name
    return optimizer.__class__.from_config(config)


@register
class GroupedOptimizer(keras.optimizers.Optimizer):
    """Apply one optimizer per variable group, with per-group learning-rate multipliers
    and warm-ups.

    ``lr(group, step) = multipliers[group] · lr(base, step) · min(1, step / warmup[group])``
    (no ramp for a group not in ``warmup_steps``); variables of groups named in neither
    use the base rate (group ``"default"``). Which group a variable
    belongs to is decided by ``resolver(variable) -> str``, and ``group_names()`` (when
    set) names the groups that exist, so that a multiplier for an unknown group is a
    ``ValueError`` as soon as it is set (:class:`~ldm_keras.models.LDMModel` sets both
    from its ``variable_groups()`` in ``compile``, so ``compile`` refuses it).

    Args:
        optimizer: the base optimizer (instance, name or config), cloned per group.
        multipliers: dict ``{group: factor}``, each factor > 0.
        warmup_steps: dict ``{group: steps}``: the group's rate ramps linearly from 0 over
            its first ``steps`` optimizer steps (e.g. to hold a latent model's dynamics
            back while the encoder starts to learn).

    Example:
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3),
        ...               lr_multipliers={"dynamics": 100.0, "noise": 10.0})
        >>> GroupedOptimizer("adam", {"dynamics": 30.0}, warmup_steps={"dynamics": 1000})
    """

    def __init__(self, optimizer, multipliers=None, name="grouped_optimizer",
                 warmup_steps=None, **kwargs):
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        base = keras.optimizers.get(optimizer)
        self.multipliers = {str(k): check_positive(v, f"lr_multipliers[{k!r}]")
                            for k, v in dict(multipliers or {}).items()}
        self.warmup_steps = {str(k): check_int(v, f"warmup_steps[{k!r}]")
                             for k, v in dict(warmup_steps or {}).items()}
        self.base_optimizer = base
        groups = ["default"] + [g for g in self.multipliers if g != "default"]
        groups += [g for g in self.warmup_steps if g not in groups]
        self._group_names = groups
        self._optimizers = [
            _scaled_clone(base, self.multipliers.get(g, 1.0), f"{name}_{g}",
                          self.warmup_steps.get(g, 0)) for g in groups
        ]
        self.resolver = None
        self._names = None

    @property
    def group_names(self):
        """``None``, or a callable returning the names of the variable groups that exist."""
        return self._names

    @group_names.setter
    def group_names(self, names):
        # set by ``LDMModel.compile``: a multiplier for a group the model does not have is
        # refused right there, not at the first ``fit``
        self._names = names
        if names is None:
            return
        try:
            known = names()
        except AttributeError:  # groups that exist only once the model is built: at build
            return
        self.check_groups(known)

    def check_groups(self, known):
        """Raise ``ValueError`` when ``multipliers`` names a group not in ``known``."""
        known = set(known)
        valid = ["default"] + sorted(known - {"default"})
        for what, given in (("lr_multipliers", self.multipliers),
                            ("lr_warmup_steps", self.warmup_steps)):
            unknown = sorted(g for g in given if g not in known and g != "default")
            if unknown:
                raise ValueError(
                    f"`{what}` names unknown variable group"
                    f"{'s' if len(unknown) > 1 else ''} {unknown}: expected group names "
                    f"among {valid}; received {what}={dict(given)}.")

    # -- Keras optimizer protocol -------------------------------------------------
    @property
    def variables(self):
        own = self._variables[:]
        return own + [v for opt in self._optimizers for v in opt.variables]

    @property
    def learning_rate(self):
        return self._optimizers[0].learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        for group, opt in zip(self._group_names, self._optimizers):
            opt.learning_rate = value * self.multipliers.get(group, 1.0)

    def _group_of(self, variable):
        group = "default" if self.resolver is None else self.resolver(variable)
        return group if group in self._group_names else "default"

    def build(self, var_list):
        if self.resolver is not None and self.group_names is not None:
            self.check_groups(self.group_names())  # the groups may have changed since
        groups = [self._group_of(v) for v in var_list]
        for name, opt in zip(self._group_names, self._optimizers):
            opt.build([v for v, g in zip(var_list, groups) if g == name])
        self._keys_to_group = {self._var_key(v): g for v, g in zip(var_list, groups)}
        super().build(var_list)

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            self.build(trainable_variables)
        grads = list(grads)
        for name, opt in zip(self._group_names, self._optimizers):
            pairs = [(g, v) for g, v in zip(grads, trainable_variables)
                     if self._keys_to_group.get(self._var_key(v), "default") == name]
            if pairs:
                opt.apply([g for g, _ in pairs], [v for _, v in pairs])
        self._iterations.assign_add(1)

    def apply_gradients(self, grads_and_vars):
        grads, variables = zip(*grads_and_vars)
        self.apply(list(grads), list(variables))
        return self._iterations

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.optimizers.serialize(self.base_optimizer),
            "multipliers": dict(self.multipliers),
            "warmup_steps": dict(self.warmup_steps),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = keras.optimizers.deserialize(config["optimizer"])
        return cls(**config)
