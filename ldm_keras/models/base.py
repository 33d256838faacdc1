"""``LDMModel``: the ``keras.Model`` base of every LDM model.

Users train with plain ``model.fit``. A subclass implements one backend-agnostic method,

    compute_ldm_loss(x, training) -> {"loss": ..., "alignment": ..., "entropy": ..., ...}

and optionally ``after_optimizer_step()`` (EMA target updates, constraints) and
``variable_groups()`` (for per-group learning-rate multipliers). The gradient step is
written once per backend in :mod:`ldm_keras.models.trainers`, whose trainer for the
active backend ``LDMModel`` derives from (as ``keras.Model`` derives from Keras' own).

Non-finite steps (``nonfinite=``): a step whose loss or gradients hold NaN or ±inf is,
by default (``"skip"``), not applied — weights, optimizer state (iteration counts of
every :class:`~ldm_keras.models.optimizers.GroupedOptimizer` clone included) and EMA
targets keep their values — and is counted in the ``skipped_steps`` metric. ``"raise"``
does the same and then stops ``fit`` with :class:`NonFiniteStepError` naming the step;
``"ignore"`` applies every update unchecked. See docs/reliability.md.

``fit`` checks its data before any step (:mod:`.fitdata`: no targets, real numbers, no
integer images, enough samples, a last batch too small for the estimator left out with a
warning) and warns when most steps were skipped. Saved weights carry the states of the
random seed generators (view augmentations, dropout) next to the weights, so
``BackupAndRestore`` resumes a run with views exactly; a model reloaded from ``.keras``
is compiled again with its saved optimizer and trains on.
"""

import math
import zipfile

import keras
from keras import ops

from .. import backend
from .._validation import check_choice, check_int, check_positive
from .fitdata import check_fit_inputs, warn_if_mostly_skipped
from .optimizers import GroupedOptimizer
from .trainers import Trainer

#: The prefix of the seed-generator states in a model's own saved variables.
SEED_STATE_KEY = "seed_state_"

#: The values of ``LDMModel(nonfinite=...)``.
NONFINITE_POLICIES = ("skip", "raise", "ignore")


class NonFiniteStepError(FloatingPointError):
    """Raised by ``fit`` under ``nonfinite="raise"`` after a step with a NaN/inf loss or gradient.

    The offending update was not applied: the weights are those after the previous step.

    Example:
        >>> model.compile("adam", nonfinite="raise")
        >>> try:
        ...     model.fit(x, epochs=3)
        ... except NonFiniteStepError as err:
        ...     print(err.step)
    """

    def __init__(self, message, step=None):
        super().__init__(message)
        self.step = step


class WeightsFileError(OSError, ValueError):
    """A weights file that cannot be read (truncated, corrupted, not a Keras weights file).

    Both an ``OSError`` (so ``keras.callbacks.BackupAndRestore`` still falls back to its
    previous backup) and a ``ValueError`` (bad input, like every ldm_keras input error).

    Example:
        >>> try:
        ...     model.load_weights("broken.weights.h5")
        ... except WeightsFileError as err:
        ...     print(err)
    """


class NonFiniteGuard(keras.callbacks.Callback):
    """Stop training at the end of the first batch whose update was skipped as non-finite.

    ``LDMModel.fit`` adds it under ``nonfinite="raise"``; the compiled step only flags the
    step (raising inside ``jax.jit`` or ``tf.function`` is not possible), and this callback
    reads the per-epoch ``skipped_steps`` count from the batch logs and raises
    :class:`NonFiniteStepError` naming the global step (1-based, counted from the start of
    this ``fit`` call), the epoch and the batch.

    Example:
        >>> model.fit(x, callbacks=[NonFiniteGuard()])        # with nonfinite="skip"
    """

    def on_train_begin(self, logs=None):
        self._steps_before_epoch = 0
        self._seen = 0.0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._seen = 0.0
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        count = (logs or {}).get("skipped_steps")
        if count is None:
            return
        count = float(ops.convert_to_numpy(count))
        if count > self._seen:
            step = self._steps_before_epoch + batch + 1
            raise NonFiniteStepError(
                f"Non-finite loss or gradient at training step {step} (epoch "
                f"{self._epoch + 1}, batch {batch + 1}); nonfinite='raise' stopped "
                "training. The update of that step was not applied, so the weights are "
                "those after the previous step. Check the data of that batch for NaN/inf "
                "and the learning rate, or use nonfinite='skip' to skip such steps.",
                step=step,
            )

    def on_epoch_end(self, epoch, logs=None):
        params = self.params or {}
        steps = params.get("steps")
        self._steps_before_epoch += int(steps) if steps else 0


def _check_same_steps_on_every_process(x, batch_size, kwargs):
    """In a multi-process run whose processes each feed their own arrays (PyTorch), every
    process must run the same number of steps per epoch, or the one with more would wait
    in a collective for a peer that has finished. Checked before any step, on every
    process (each sees every process's count and raises the same error)."""
    if backend.num_replicas() == 1:
        return
    leaves = [t for t in keras.tree.flatten(x) if hasattr(t, "shape") and len(t.shape)]
    if not leaves or not hasattr(leaves[0], "__len__") or hasattr(leaves[0], "element_spec"):
        return
    rows = len(leaves[0])
    steps = kwargs.get("steps_per_epoch") or math.ceil(rows / int(batch_size or 32))
    counts = ops.convert_to_numpy(backend.all_gather(
        ops.convert_to_tensor([[rows, steps]], "int64")))
    if len({int(c[1]) for c in counts}) > 1:
        raise ValueError(
            "In a multi-process run every process must run the same number of steps per "
            "epoch; (rows, steps) per process: "
            f"{[(int(r), int(t)) for r, t in counts]}. Split the data with "
            "`ldm_keras.distributed.shard(x)` (equal shares) and use one batch_size.")


class LDMModel(Trainer, keras.Model):
    """Base class: an LDM objective trained by ``model.fit`` on every backend.

    Subclasses implement :meth:`compute_ldm_loss`. The values it returns under the
    names in :attr:`metric_names` are tracked as metrics (mean over the epoch), so the
    ``fit`` progress bar shows ``loss``, ``alignment`` and ``entropy``.

    Args:
        lr_multipliers: ``{group: factor}`` learning-rate multipliers for the groups
            named by :meth:`variable_groups` (may also be given to ``compile``).
        lr_warmup_steps: ``{group: steps}``: the group's learning rate ramps linearly from
            0 over its first ``steps`` optimizer steps,
            ``lr · multiplier · min(1, step / steps)`` (may also be given to ``compile``).
        nonfinite: what a training step with a NaN/inf loss or gradient does:
            ``"skip"`` (default) leaves every weight, the optimizer state and the EMA
            targets unchanged and counts the step in the ``skipped_steps`` metric (per
            epoch); ``"raise"`` also skips it and then stops ``fit`` with
            :class:`NonFiniteStepError` naming the step; ``"ignore"`` applies the update
            unchecked (no ``skipped_steps``; NaNs may enter the weights). ``"skip"`` and
            ``"raise"`` cost one finiteness reduction per gradient and, on TensorFlow, a
            copy of the weights and optimizer state per step.

    Per-group learning rates use one optimizer per group (see
    :class:`~ldm_keras.models.optimizers.GroupedOptimizer`), so they are exact for
    adaptive optimizers such as Adam.

    Example:
        >>> class MyLDM(LDMModel):
        ...     def __init__(self, encoder, **kw):
        ...         super().__init__(**kw)
        ...         self.encoder = encoder
        ...         self.prior = ldm.priors.IsotropicGaussian(5.0)
        ...         self.entropy = ldm.entropy.GaussianLogDet()
        ...     def compute_ldm_loss(self, x, training=False):
        ...         z1, z2 = self.encoder(x[0]), self.encoder(x[1])
        ...         a = keras.ops.mean(self.prior.log_prob(z2, context=z1))
        ...         h = self.entropy.joint(z1, z2)
        ...         return {"loss": -(a + h), "alignment": a, "entropy": h}
        >>> model = MyLDM(encoder); model.compile("adam"); model.fit((x1, x2), epochs=5)
    """

    def __init__(self, lr_multipliers=None, nonfinite="skip", lr_warmup_steps=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.lr_multipliers = {str(k): check_positive(v, f"lr_multipliers[{k!r}]")
                               for k, v in dict(lr_multipliers or {}).items()}
        self.lr_warmup_steps = {str(k): check_int(v, f"lr_warmup_steps[{k!r}]")
                                for k, v in dict(lr_warmup_steps or {}).items()}
        self.nonfinite = check_choice(nonfinite, "nonfinite", NONFINITE_POLICIES)
        self._group_lookup = None

    # -- the hooks subclasses provide (called by the trainers) -------------------------
    def compute_ldm_loss(self, x, training=False):
        """Return a dict of scalars with at least ``"loss"`` (the step casts them to float32)."""
        raise NotImplementedError

    def after_optimizer_step(self):
        """Hook run after every optimizer step, inside the compiled step (no gradient)."""

    def variable_groups(self):
        """``{group: [variables]}`` for learning-rate multipliers; others are "default"."""
        return {}

    def variable_group(self, variable):
        """The group of ``variable`` in :meth:`variable_groups` (``"default"`` if none)."""
        if self._group_lookup is None:
            self._group_lookup = {
                id(v): name for name, vs in self.variable_groups().items() for v in vs
            }
        return self._group_lookup.get(id(variable), "default")

    # -- Keras plumbing -----------------------------------------------------------------
    def compile(self, optimizer="adam", lr_multipliers=None, nonfinite=None,
                lr_warmup_steps=None, **kwargs):
        """Configure training. ``lr_multipliers``, ``lr_warmup_steps`` and ``nonfinite``
        override the constructor's."""
        if nonfinite is not None:
            self.nonfinite = check_choice(nonfinite, "nonfinite", NONFINITE_POLICIES)
        if kwargs.get("loss") is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own LDM loss; do not pass `loss` to "
                "compile (configure the prior and entropy estimator instead)."
            )
        multipliers = self.lr_multipliers if lr_multipliers is None else dict(lr_multipliers)
        warmup = self.lr_warmup_steps if lr_warmup_steps is None else dict(lr_warmup_steps)
        optimizer = keras.optimizers.get(optimizer)
        if not isinstance(optimizer, GroupedOptimizer) and (multipliers or warmup):
            optimizer = GroupedOptimizer(optimizer, multipliers, warmup_steps=warmup)
        if isinstance(optimizer, GroupedOptimizer):
            optimizer.resolver = self.variable_group
            optimizer.group_names = lambda: set(self.variable_groups())
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        """What ``compile`` needs again after ``keras.saving.load_model``: the optimizer
        (with its per-group clones) and ``steps_per_execution``. ``jit_compile`` and
        ``run_eagerly`` are left to the backend that loads the model."""
        config = super().get_compile_config()
        return {k: config[k] for k in ("optimizer", "steps_per_execution") if k in config}

    def compile_from_config(self, config):
        """Compile a model loaded from ``.keras`` with its saved optimizer, so that ``fit``
        trains on (Keras skips this for models that override ``compile``)."""
        config = keras.saving.deserialize_keras_object(config)
        if not isinstance(config, dict) or config.get("optimizer") is None:
            return
        self.compile(optimizer=config["optimizer"],
                     steps_per_execution=config.get("steps_per_execution", 1))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _seed_states(self):
        """The seed-generator states of the model and its layers (not in ``weights``)."""
        weights = {id(w) for w in self.weights}
        return [v for v in self.variables if id(v) not in weights]

    def save_own_variables(self, store):
        """Keras' own variables, then the random seed states (``seed_state_0``, …), so a
        restored model draws the same views and dropout masks as the saved one."""
        super().save_own_variables(store)
        for i, v in enumerate(self._seed_states()):
            store[f"{SEED_STATE_KEY}{i}"] = v

    def load_own_variables(self, store):
        """Inverse of :meth:`save_own_variables`; a file without seed states (older, or
        written by ``keras.Model``) leaves the current seed states as they are."""
        keys = list(store.keys())
        seeds = sorted((k for k in keys if k.startswith(SEED_STATE_KEY)),
                       key=lambda k: int(k[len(SEED_STATE_KEY):]))
        super().load_own_variables({k: store[k] for k in keys if k not in seeds})
        if not seeds:
            return
        states = self._seed_states()
        if len(seeds) != len(states):
            raise ValueError(
                f"The saved {type(self).__name__} holds {len(seeds)} random seed states, "
                f"this model has {len(states)} (its augmentations or dropout layers "
                "differ): expected the same architecture as the saved model.")
        for key, v in zip(seeds, states):
            v.assign(store[key])

    @property
    def min_batch_size(self):
        """The smallest batch this model's entropy estimator accepts."""
        return 2

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
            callbacks=None, **kwargs):
        """``keras.Model.fit``, after checking the data before any step.

        Refused with a ``ValueError`` naming the argument: targets ``y`` (LDM is
        self-supervised; two views go in one tuple, ``fit((x1, x2))``), strings, integer
        images or frames (rank ≥ 3, or any integer data when the model makes views:
        divide by 255 for 8-bit pixels), empty data, fewer samples or a smaller
        ``batch_size`` than the estimator needs (:attr:`min_batch_size`), a model that is
        not compiled. A last partial batch smaller than :attr:`min_batch_size` is left
        out, the same on every backend, with a ``PartialBatchWarning``; see
        :mod:`ldm_keras.models.fitdata`. Under ``nonfinite="raise"`` a
        :class:`NonFiniteGuard` callback is added; when more than half of the steps were
        skipped as non-finite, a ``SkippedStepsWarning`` says so.
        """
        if not getattr(self, "compiled", False) or getattr(self, "optimizer", None) is None:
            raise ValueError(
                f"{type(self).__name__} must be compiled before fit: call "
                "`model.compile(optimizer=...)` first (a model loaded with "
                "`keras.saving.load_model(..., compile=False)`, or saved before it was "
                "compiled, is not compiled).")
        _check_not_empty(x)
        x, kwargs = check_fit_inputs(self, x, y, batch_size, kwargs)
        _check_same_steps_on_every_process(x, batch_size, kwargs)
        callbacks = list(callbacks or [])
        if self.nonfinite == "raise" and not any(
                isinstance(c, NonFiniteGuard) for c in callbacks):
            callbacks.append(NonFiniteGuard())
        history = super().fit(x, None, batch_size, epochs, verbose, callbacks, **kwargs)
        warn_if_mostly_skipped(self, history)
        return history

    def load_weights(self, filepath, *args, **kwargs):
        """``keras.Model.load_weights`` with a clear error for an unreadable file.

        A truncated or corrupted file raises :class:`WeightsFileError` naming the file and
        what was expected; weights that do not match the model raise Keras' ``ValueError``
        listing the layers that could not be loaded.
        """
        try:
            return super().load_weights(filepath, *args, **kwargs)
        except FileNotFoundError:
            raise
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise WeightsFileError(
                f"Cannot read the weights file {str(filepath)!r}: expected an intact Keras "
                "weights file (`.weights.h5` written by `save_weights`, or a `.keras` "
                f"archive written by `save`); the file is truncated or corrupted ({err})."
            ) from err

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "lr_multipliers": dict(self.lr_multipliers), "nonfinite": self.nonfinite,
                "lr_warmup_steps": dict(self.lr_warmup_steps)}


def _check_not_empty(x):
    """Raise when ``fit`` gets arrays (or a tuple of arrays) with no samples."""
    first = x
    while isinstance(first, (tuple, list)) and first:
        first = first[0]
    if isinstance(first, dict) and first:
        first = next(iter(first.values()))
    shape = getattr(first, "shape", None)
    if shape is not None and len(shape) > 0 and isinstance(shape[0], int) and shape[0] == 0:
        raise ValueError(
            "fit received an empty dataset: expected at least one sample, received "
            f"arrays of shape {tuple(shape)}."
        )
    if isinstance(x, (tuple, list)) and len(x) == 0:
        raise ValueError("fit received an empty tuple of inputs; expected data.")
