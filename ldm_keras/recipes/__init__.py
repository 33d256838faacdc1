"""Named recipes: known self-supervised methods as LDM choices (docs/spec.md §1–3).

Each recipe fixes a latent model (prior), an entropy estimator and how they combine
(joint / marginal / pooled entropy, stop-gradient, EMA targets). ``build`` returns a
ready-to-compile :class:`~ldm_keras.models.MultiViewLDM`:

==============  ========================  =============================  ==========
recipe          latent model (alignment)  entropy (uniformity)           mode
==============  ========================  =============================  ==========
``simclr``      von Mises–Fisher κ=5      vMF-KDE γ=5, other view        marginal, λ=½
``sphere-ldm``  von Mises–Fisher κ=5      vMF-KDE γ=5                    joint
``plane-kde``   isotropic Gaussian κ=5    Gaussian KDE γ=5               joint
``plane-knn``   isotropic Gaussian κ=5    Kozachenko–Leonenko k=3        joint
``vicreg``      isotropic Gaussian κ=25   VICReg variance/covariance     marginal
``vicreg-ldm``  isotropic Gaussian κ=5    Gaussian log-det               pooled
``simsiam``     von Mises–Fisher κ=1      none (stop-gradient)           —
``byol``        von Mises–Fisher κ=1      none (EMA target, m=0.99)      —
``categorical`` categorical pair, p=0.8   categorical plug-in            joint
==============  ========================  =============================  ==========

Sequence recipes (``kind="sequence"``; data ``(batch, time, *frame)``, the encoder is
applied to every frame) build a :class:`~ldm_keras.models.PredictiveLDM`,
:class:`~ldm_keras.models.CPCLDM` or :class:`~ldm_keras.models.JEPALDM`:

==================  ===============================  ================================  ========
recipe              latent model log p(z_t | z_<t)   entropy (uniformity)              lr
==================  ===============================  ================================  ========
``cpc``             vMF κ=10 of W_k c_t, k = 1..3;   vMF-KDE over the batch's other    1e-3
                    c_t = GRU(z_≤t)                  sequences at the same step (λ=1):
                                                     InfoNCE over time
``jepa``            isotropic Gaussian κ=1 (MSE) of  none (stop-gradient; EMA target   1e-3
                    GRU prediction of z_t            encoder, m = 0.99)
``kalman-ssl``      Kalman filter innovation         none (stop-gradient targets)      1e-4
                    likelihood N(z_t; ẑ_t, S_t)                                        cosine
``kalman-ssl-knn``  the same, targets differentiated Kozachenko–Leonenko k=3 on z pooled  1e-4
                                                     over batch × time                 cosine
``recurrent-ldm``   Gaussian N(z_t; ẑ_t, v) from a   k-NN k=3 with the two-NN          1e-3
                    GRU + MLP, learned variance per  intrinsic dimension, per time
                    dimension; first step skipped    step (``"gaussian-kde"``/
                                                     ``"logdet"``)
==================  ===============================  ================================  ========

The Kalman recipes clamp the transition's spectral radius at 1.02 (docs/spec.md §4).
``kalman-ssl`` trains the dynamics at 30× the encoder's learning rate and starts the
transition as rotations of the state pairs by spread angles up to π/8 per step
(``KalmanCell(initial_rotation=π/8)``): on DotMotion circular that holds 5 of 5 seeds at
R² ≥ 0.975 from 0.3× to 3× its learning rate, and square (batch 8, 40 epochs) 5 of 5 at
≥ 0.97; at 3× the same start with the reference's 100× locks 3 of 5 seeds on twice the
true frequency, and 30× with the reference's nearly identity start 1 of 5. Figure-eight
(S = 4, L = 3) reaches 0.99 on 0 of 10 runs (seeds 0–4, PyTorch and JAX; 0.56–0.99).
A warm-up of the dynamics' rate over the first 1000 steps (``lr_warmup_steps={"dynamics":
1000}``) lifts that to 5 of 10 but breaks noisy circular with jumps (rotation 0 on 5 of
5 seeds) and runs of a few hundred steps, so it is an option, not the default
(benchmarks/robustness/results/kalman/README.md; at 8× fewer steps than the reference's
budget the earlier defaults do better).
``kalman-ssl-knn`` keeps the reference's 100× and start; on DotMotion circular it
collapses to one latent dimension on 4 of 5 seeds (R² 0.998 on one, ≤ 0.17 on the
others; the job warns), so prefer ``kalman-ssl``.
``recurrent-ldm`` trains encoder and predictor at one learning rate (its settings were
chosen by the robustness suite, benchmarks/results/robustness.md);
:func:`default_optimizer` with ``decay_steps`` gives the cosine schedule (decay to 1 %)
of the DotMotion benchmark.

``simclr`` with ``entropy_weight=½`` is exactly the symmetric InfoNCE (NT-Xent across
views) at temperature ``1/κ``: ``-κ s̄ + ½ (lse₁₂ + lse₂₁)``.

Recipes are data (:mod:`.multiview`, :mod:`.sequence`); each names its latent model
and estimator, which :mod:`.components` builds with :func:`ldm_keras.priors.get` and
:func:`ldm_keras.entropy.get`. :func:`names` gives every recipe with its kind.

Example:
    >>> import ldm_keras as ldm
    >>> ldm.recipes.names()             # {'byol': 'multiview', ..., 'cpc': 'sequence', ...}
    >>> model = ldm.recipes.build("simclr", encoder=my_encoder,
    ...                           views=ldm.augment.image_views("digits"))
    >>> model.compile(optimizer="adam"); model.fit(x, epochs=50, batch_size=256,
    ...     callbacks=ldm.recipes.callbacks("simclr", epochs=50))
"""

import warnings

import keras

from .._validation import check_choice
from ..priors import AnnealAgreement
from . import multiview, sequence
from .base import KINDS, RECIPES, Recipe

#: kind -> the module that says which settings its recipes take and builds them.
_KIND_MODULES = {"multiview": multiview, "sequence": sequence}


def names(kind="all"):
    """Every recipe with its kind, ``{name: "multiview" | "sequence"}``, sorted by name;
    ``kind`` keeps one kind (``"multiview"`` or ``"sequence"``; default ``"all"``).

    Example:
        >>> ldm.recipes.names()["kalman-ssl"]        # 'sequence'
        >>> sorted(ldm.recipes.names("multiview"))   # ['byol', 'categorical', ...]
    """
    check_choice(kind, "kind", KINDS + ("all",))
    kinds = {name: RECIPES.lookup(name).kind for name in RECIPES.names()}
    return {name: k for name, k in kinds.items() if kind in ("all", k)}


def _list(kind="multiview"):
    """Deprecated (kept for one release; it shadowed the builtin): ``sorted(names(kind))``.

    The default is the multi-view recipes, as before.
    """
    warnings.warn("ldm_keras.recipes.list is deprecated and will be removed in the next "
                  "release; use ldm_keras.recipes.names(kind), which also gives the kinds.",
                  DeprecationWarning, stacklevel=2)
    return sorted(names(kind))


def get(name):
    """The :class:`Recipe` called ``name`` (a clear error lists the known ones).

    Example:
        >>> ldm.recipes.get("vicreg").defaults["precision"]     # 25.0
    """
    return RECIPES.lookup(name)


def describe(name):
    """A one-paragraph description of recipe ``name`` with its default settings.

    Example:
        >>> print(ldm.recipes.describe("simclr"))
    """
    r = get(name)
    settings = ", ".join(f"{k}={v!r}" for k, v in sorted(r.defaults.items()))
    return f"{r.name}: {r.summary}\n  defaults: {settings}"


def options(name, **overrides):
    """The settings of recipe ``name`` after ``overrides`` (unknown keys are errors).

    Example:
        >>> ldm.recipes.options("plane-kde", precision=12.5)["precision"]   # 12.5
    """
    r = get(name)
    kind = _KIND_MODULES[r.kind]
    allowed = kind.settings(r)
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(
            f"Recipe {name!r} has no setting(s) {unknown}; settings: {sorted(allowed)}."
        )
    return kind.check(r, {**r.defaults, **overrides})


def build(name, encoder, *, views=None, **overrides):
    """Build recipe ``name`` around ``encoder``; returns an uncompiled model.

    Multi-view recipes return a :class:`~ldm_keras.models.MultiViewLDM`, sequence recipes
    a :class:`~ldm_keras.models.PredictiveLDM`, :class:`~ldm_keras.models.CPCLDM` or
    :class:`~ldm_keras.models.JEPALDM`.

    Args:
        name: one of :func:`names`.
        encoder: a Keras model with a known output size (per frame for sequences).
        views: the view generator (e.g. ``ldm_keras.augment.image_views("digits")``),
            or ``None`` when the data come as pairs ``(x1, x2)`` (and for sequences).
        **overrides: recipe settings (see :func:`describe`), e.g. ``precision=10``,
            ``projector=(2048, 2048)``, ``projector=None`` (no projector),
            ``entropy_weight=1.0``, ``mode="joint"``.

    Example:
        >>> model = build("plane-kde", encoder, views=views, precision=12.5)
    """
    r = get(name)
    if r.kind == "sequence" and views is not None:
        raise ValueError(f"Recipe {name!r} is a sequence recipe: it takes no `views` "
                         "(the data are sequences of frames).")
    return _KIND_MODULES[r.kind].build(r, encoder, views, options(name, **overrides))


def callbacks(name, epochs, **overrides):
    """Callbacks that recipe ``name`` needs during ``fit`` (e.g. annealing), a list.

    Example:
        >>> model.fit(x, epochs=50, callbacks=ldm.recipes.callbacks("categorical", 50))
    """
    o = options(name, **overrides)
    cbs = []
    if o.get("prior") == "categorical" and o.get("final_agreement"):
        cbs.append(AnnealAgreement(o["agreement"], o["final_agreement"],
                                   epochs=max(int(epochs), 1)))
    return cbs


#: The optimizers :func:`default_optimizer` builds, by name.
OPTIMIZERS = ("adam", "lars")

#: The LARS settings of the reference image recipe (ResNet-18 on CIFAR, batch 256):
#: learning rate 0.3 (0.3 × batch / 256), momentum 0.9, weight decay 1e-6, trust
#: coefficient 0.001; biases and normalisation parameters (every variable of rank ≤ 1)
#: excluded from weight decay and trust ratio.
LARS_DEFAULTS = {"learning_rate": 0.3, "momentum": 0.9, "weight_decay": 1e-6,
                 "trust_coefficient": 0.001}


def default_optimizer(name, learning_rate=None, decay_steps=None, schedule=None,
                      optimizer="adam", weight_decay=None):
    """The optimizer the recipe is tuned with: Adam (lr 1e-3 by default) or LARS.

    ``optimizer="adam"`` (the default; the small-data recipes, e.g. digits) gives
    ``keras.optimizers.Adam``. ``optimizer="lars"`` (the reference image recipe, used by
    the cifar10 / cifar100 jobs of :mod:`ldm_keras.jobs`) gives
    :class:`ldm_keras.optimizers.LARS` with :data:`LARS_DEFAULTS`: lr 0.3, momentum 0.9,
    weight decay ``weight_decay`` (default 1e-6), trust coefficient 0.001, and biases and
    normalisation parameters excluded from weight decay and the trust ratio
    (``exclude_1d=True``).

    ``schedule="cosine"`` with ``decay_steps`` decays the learning rate over
    ``decay_steps`` optimizer steps (``keras.optimizers.schedules.CosineDecay``; to 1 %
    for Adam, to 0 for LARS); constant when ``decay_steps`` is None. Sequence recipes
    carry their own learning rate (``kalman-ssl``: 1e-4) and schedule (``"cosine"``).

    Example:
        >>> model.compile(optimizer=ldm.recipes.default_optimizer("simclr", 2e-3))
        >>> opt = ldm.recipes.default_optimizer("kalman-ssl", decay_steps=20 * 100)
        >>> opt = ldm.recipes.default_optimizer("simclr", optimizer="lars",
        ...                                     schedule="cosine", decay_steps=1000 * 195)
    """
    r = get(name)
    check_choice(optimizer, "optimizer", OPTIMIZERS)
    if schedule not in (None, "cosine", "constant"):
        raise ValueError(f"`schedule` must be None, 'constant' or 'cosine'; received "
                         f"{schedule!r}.")
    if r.kind == "sequence":
        schedule = r.defaults.get("schedule") if schedule is None else schedule
        base = r.defaults["learning_rate"] if optimizer == "adam" \
            else LARS_DEFAULTS["learning_rate"]
    else:
        base = 1e-3 if optimizer == "adam" else LARS_DEFAULTS["learning_rate"]
    lr = float(learning_rate or base)
    if schedule == "cosine" and decay_steps:
        lr = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=int(decay_steps), alpha=0.01 if optimizer == "adam" else 0.0)
    if optimizer == "lars":
        from ..optimizers import LARS

        wd = LARS_DEFAULTS["weight_decay"] if weight_decay is None else weight_decay
        return LARS(learning_rate=lr, momentum=LARS_DEFAULTS["momentum"], weight_decay=wd,
                    trust_coefficient=LARS_DEFAULTS["trust_coefficient"], exclude_1d=True)
    if weight_decay:
        raise ValueError(f"`weight_decay` is a LARS setting (optimizer='lars'); received "
                         f"weight_decay={weight_decay!r} with optimizer={optimizer!r}.")
    return keras.optimizers.Adam(learning_rate=lr)


#: Deprecated, kept for one release: bound last, so that no code here sees it as the builtin.
list = _list  # noqa: A001

__all__ = ["Recipe", "RECIPES", "names", "get", "describe", "options", "build", "callbacks",
           "default_optimizer", "OPTIMIZERS", "LARS_DEFAULTS"]
