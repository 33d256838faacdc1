"""Named recipes: known self-supervised methods as LDM choices (LDM_SPEC §1–3).

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
``recurrent-ldm``   Gaussian N(z_t; ẑ_t, v_t) from   k-NN k=3 (``entropy="kde"``/      1e-3
                    a GRU + MLP, learned variance    ``"logdet"``), pooled
==================  ===============================  ================================  ========

The Kalman recipes train the dynamics at 100× the encoder's learning rate and clamp
the transition's spectral radius at 1.02 (LDM_SPEC §4); :func:`default_optimizer` with
``decay_steps`` gives the cosine schedule (decay to 1 %) of the DotMotion benchmark.

``simclr`` with ``entropy_weight=½`` is exactly the symmetric InfoNCE (NT-Xent across
views) at temperature ``1/κ``: ``-κ s̄ + ½ (lse₁₂ + lse₂₁)``.

Example:
    >>> import ldm_keras as ldm
    >>> ldm.recipes.list()
    >>> model = ldm.recipes.build("simclr", encoder=my_encoder,
    ...                           views=ldm.augment.image_views("digits"))
    >>> model.compile(optimizer="adam"); model.fit(x, epochs=50, batch_size=256,
    ...     callbacks=ldm.recipes.callbacks("simclr", epochs=50))
"""

import builtins
import difflib
from dataclasses import dataclass, field

import keras

from . import entropy as E
from . import priors as P
from ._validation import check_choice
from .models.encoders import mlp
from .models.multiview import MultiViewLDM
from .objectives import LDMObjective


@dataclass(frozen=True)
class Recipe:
    """A named method: how to build it and what LDM choice it makes."""

    name: str
    summary: str
    defaults: dict = field(default_factory=dict)
    kind: str = "multiview"


_RECIPES = {}


def _add(name, summary, **defaults):
    _RECIPES[name] = Recipe(name, summary, defaults)


def _add_sequence(name, summary, **defaults):
    _RECIPES[name] = Recipe(name, summary, defaults, kind="sequence")


_SPHERE = dict(projector=(256, 64), normalize=True)
_add("simclr", "SimCLR: sphere prior + vMF-KDE with the other view as centres, marginal "
     "entropy (LDM + MI), λ = ½ — the symmetric InfoNCE.",
     prior="vmf", precision=5.0, entropy="vmf-kde", entropy_precision=5.0,
     centers="other", mode="marginal", entropy_weight=0.5, **_SPHERE)
_add("sphere-ldm", "Sphere LDM: sphere prior + vMF-KDE on the joint [z1, z2].",
     prior="vmf", precision=5.0, entropy="vmf-kde", entropy_precision=5.0,
     mode="joint", entropy_weight=1.0, **_SPHERE)
_add("plane-kde", "Plane LDM: isotropic Gaussian prior + Gaussian KDE, joint entropy.",
     prior="gaussian", precision=5.0, entropy="gaussian-kde", entropy_precision=5.0,
     mode="joint", entropy_weight=1.0, projector=(256, 64), normalize=False)
_add("plane-knn", "Plane LDM with the Kozachenko–Leonenko k-NN entropy (k = 3), joint.",
     prior="gaussian", precision=5.0, entropy="knn", k=3, mode="joint",
     entropy_weight=1.0, projector=(256, 64), normalize=False)
_add("vicreg", "VICReg: isotropic Gaussian prior (invariance) + VICReg variance/covariance "
     "surrogate, marginal (LDM + MI).",
     prior="gaussian", precision=25.0, entropy="vicreg", mode="marginal",
     entropy_weight=1.0, projector=(256, 256, 128), normalize=False)
_add("vicreg-ldm", "VICReg as exact LDM: isotropic Gaussian prior + Gaussian log-det "
     "entropy of the latents of both views pooled over the batch.",
     prior="gaussian", precision=5.0, entropy="logdet", mode="pooled",
     entropy_weight=1.0, projector=(256, 64), normalize=False)
_add("simsiam", "SimSiam: predictor head, stop-gradient targets, no explicit entropy "
     "(implicit entropy by stop-gradient); negative cosine = vMF prior.",
     prior="vmf", precision=1.0, entropy=None, stop_gradient=True, predictor=(128,),
     projector=(256, 64), normalize=False)
_add("byol", "BYOL: predictor head, EMA target network (m = 0.99), no explicit entropy.",
     prior="vmf", precision=1.0, entropy=None, stop_gradient=True, predictor=(128,),
     ema_momentum=0.99, projector=(256, 64), normalize=False)
_add("categorical", "Clustering: softmax head over n classes, categorical pair model with "
     "agreement p annealed 0.8 → 0.992, categorical plug-in entropy of the joint.",
     prior="categorical", num_classes=10, agreement=0.8, final_agreement=0.992,
     entropy="categorical", mode="joint", entropy_weight=1.0, projector=(256,))


_add_sequence(
    "cpc", "CPC: a GRU context c_t over past latents predicts z_{t+k} (k = 1..3) by W_k c_t; "
    "vMF latent model (cosine × κ = 10) and vMF-KDE entropy over the other sequences of the "
    "batch at the same time step — InfoNCE over time.",
    model="cpc", context_units=64, context_cell="gru", prediction_steps=3, score="vmf",
    precision=10.0, entropy_weight=1.0, learning_rate=1e-3)
_add_sequence(
    "jepa", "JEPA over time: a GRU predictor of z_t from z_<t against stop-gradient targets "
    "of an EMA target encoder (m = 0.99); isotropic Gaussian latent model (MSE), implicit "
    "entropy.",
    model="jepa", units=64, cell="gru", hidden_units=(64,), precision=1.0,
    ema_momentum=0.99, learning_rate=1e-3)
_add_sequence(
    "kalman-ssl", "KalmanSSL: PredictiveLDM + Kalman filter (state = latent size), "
    "innovation likelihood with stop-gradient targets (implicit entropy); dynamics lr ×100, "
    "spectral radius ≤ 1.02; Adam 1e-4 with cosine decay.",
    model="kalman", state_dim=None, observation_noise_init=0.1, process_noise_init=0.01,
    clamp_radius=1.02, entropy=None, learning_rate=1e-4, schedule="cosine")
_add_sequence(
    "kalman-ssl-knn", "KalmanSSL with explicit entropy: the Kalman innovation likelihood with "
    "differentiated targets plus the k-NN entropy (k = 3) of the latents pooled over "
    "batch × time.",
    model="kalman", state_dim=None, observation_noise_init=0.1, process_noise_init=0.01,
    clamp_radius=1.02, entropy="knn", k=3, entropy_weight=1.0, learning_rate=1e-4,
    schedule="cosine")
_add_sequence(
    "recurrent-ldm", "Recurrent LDM: PredictiveLDM + RecurrentPredictor (GRU 64 + MLP, "
    "softplus variance), Gaussian latent model with differentiated targets and explicit "
    "entropy of the pooled latents: k-NN (k = 3) by default, 'kde' or 'logdet' as options.",
    model="recurrent", units=64, cell="gru", hidden_units=(64,), variance="softplus",
    entropy="knn", k=3, entropy_weight=1.0, learning_rate=1e-3)

#: Settings every sequence recipe accepts as overrides (besides its own defaults).
_SEQUENCE_SETTINGS = {"entropy_weight", "learning_rate", "schedule", "precision",
                      "entropy_precision", "k", "clip_quantile"}


def list(kind="multiview"):  # noqa: A001 - mirrors ldm.zoo.list()
    """Names of the available recipes of ``kind``: ``"multiview"`` (default),
    ``"sequence"`` or ``"all"``.

    The default stays the multi-view recipes (what ``build(name, encoder, views=...)``
    trains on images); the sequence recipes are ``list("sequence")``.

    Example:
        >>> ldm.recipes.list()              # ['byol', 'categorical', 'plane-kde', ...]
        >>> ldm.recipes.list("sequence")    # ['cpc', 'jepa', 'kalman-ssl', ...]
    """
    check_choice(kind, "kind", ("multiview", "sequence", "all"))
    return sorted(n for n, r in _RECIPES.items() if kind == "all" or r.kind == kind)


def get(name):
    """The :class:`Recipe` called ``name`` (a clear error lists the known ones).

    Example:
        >>> ldm.recipes.get("vicreg").defaults["precision"]     # 25.0
    """
    if name not in _RECIPES:
        close = difflib.get_close_matches(str(name), _RECIPES, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(f"Unknown recipe {name!r}.{hint} Known recipes: {list('all')}.")
    return _RECIPES[name]


def describe(name):
    """A one-paragraph description of recipe ``name`` with its default settings.

    Example:
        >>> print(ldm.recipes.describe("simclr"))
    """
    r = get(name)
    settings = ", ".join(f"{k}={v!r}" for k, v in sorted(r.defaults.items()))
    return f"{r.name}: {r.summary}\n  defaults: {settings}"


def _feature_dim(encoder):
    shape = getattr(encoder, "output_shape", None)
    if shape is None or not isinstance(shape, tuple) or shape[-1] is None:
        raise ValueError(
            "Cannot infer the encoder's output size; pass an encoder with a known "
            "output shape (a functional or sequential keras.Model)."
        )
    return int(shape[-1])


def _prior(o):
    kind = o["prior"]
    if kind == "vmf":
        return P.VonMisesFisher(precision=o["precision"])
    if kind == "gaussian":
        return P.IsotropicGaussian(precision=o["precision"])
    if kind == "categorical":
        return P.CategoricalPair(num_classes=o["num_classes"], agreement=o["agreement"])
    raise ValueError(f"Unknown prior kind {kind!r}.")


def _entropy(o):
    kind = o.get("entropy")
    if kind is None:
        return None
    if kind == "vmf-kde":
        return E.VonMisesFisherKDE(precision=o["entropy_precision"],
                                   centers=o.get("centers", "self"))
    if kind == "gaussian-kde":
        return E.GaussianKDE(precision=o["entropy_precision"])
    if kind == "knn":
        return E.KNNEntropy(k=o.get("k", 3), clip_quantile=o.get("clip_quantile"))
    if kind == "vicreg":
        # marginal mode sums the variance hinge of both branches; VICReg averages them
        # (weight 25), so 12.5 per branch reproduces VICReg's loss exactly.
        return E.VICRegSurrogate(variance_weight=12.5, covariance_weight=1.0)
    if kind == "logdet":
        return E.GaussianLogDet()
    if kind == "categorical":
        return E.CategoricalEntropy()
    raise ValueError(f"Unknown entropy kind {kind!r}.")


def options(name, **overrides):
    """The settings of recipe ``name`` after ``overrides`` (unknown keys are errors).

    Example:
        >>> ldm.recipes.options("plane-kde", precision=12.5)["precision"]   # 12.5
    """
    r = get(name)
    if r.kind == "sequence":
        allowed = set(r.defaults) | _SEQUENCE_SETTINGS
        if r.defaults["model"] == "recurrent":
            allowed.add("entropy")
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise ValueError(f"Recipe {name!r} has no setting(s) {unknown}; settings: "
                             f"{sorted(allowed)}.")
        o = {**r.defaults, **overrides}
        if r.defaults["model"] == "recurrent":
            check_choice(o["entropy"], "entropy", ("knn", "kde", "logdet"))
        return o
    allowed = set(r.defaults) | {"projector", "predictor", "ema_momentum", "normalize",
                                 "stop_gradient", "mode", "entropy_weight", "precision",
                                 "entropy_precision", "centers", "k", "clip_quantile"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(
            f"Recipe {name!r} has no setting(s) {unknown}; settings: {sorted(allowed)}."
        )
    return {**r.defaults, **overrides}


def build(name, encoder, *, views=None, **overrides):
    """Build recipe ``name`` around ``encoder``; returns an uncompiled MultiViewLDM.

    Args:
        name: one of :func:`list`.
        encoder: a Keras model with a known output size.
        views: the view generator (e.g. ``ldm_keras.augment.image_views("digits")``),
            or ``None`` when the data come as pairs ``(x1, x2)``.
        **overrides: recipe settings (see :func:`describe`), e.g. ``precision=10``,
            ``projector=(2048, 2048)``, ``projector=None`` (no projector),
            ``entropy_weight=1.0``, ``mode="joint"``.

    Example:
        >>> model = build("plane-kde", encoder, views=views, precision=12.5)
    """
    if get(name).kind == "sequence":
        if views is not None:
            raise ValueError(f"Recipe {name!r} is a sequence recipe: it takes no `views` "
                             "(the data are sequences of frames).")
        return _build_sequence(name, encoder, options(name, **overrides))
    o = options(name, **overrides)
    if o.get("entropy") is None and o.get("mode") not in (None, "joint"):
        o["mode"] = "joint"
    dim = _feature_dim(encoder)
    projector = None
    if o.get("projector"):
        widths = tuple(o["projector"])
        if o["prior"] == "categorical":
            projector = mlp(dim, widths, o["num_classes"], output_activation="softmax",
                            name=f"{name}_head")
        else:
            projector = mlp(dim, widths[:-1], widths[-1], normalize=o.get("normalize", False),
                            name=f"{name}_projector")
        out_dim = o["num_classes"] if o["prior"] == "categorical" else widths[-1]
    else:
        out_dim = dim
    predictor = None
    if o.get("predictor"):
        predictor = mlp(out_dim, tuple(o["predictor"]), out_dim, name=f"{name}_predictor")
    objective = LDMObjective(
        prior=_prior(o), entropy=_entropy(o), entropy_weight=o.get("entropy_weight", 1.0),
        mode=o.get("mode") or "joint", stop_gradient=o.get("stop_gradient", False),
    )
    return MultiViewLDM(encoder, objective, projector=projector, predictor=predictor,
                        views=views, ema_momentum=o.get("ema_momentum"),
                        name=name.replace("-", "_"))


def callbacks(name, epochs, **overrides):
    """Callbacks that recipe ``name`` needs during ``fit`` (e.g. annealing), a list.

    Example:
        >>> model.fit(x, epochs=50, callbacks=ldm.recipes.callbacks("categorical", 50))
    """
    o = options(name, **overrides)
    cbs = []
    if o.get("prior") == "categorical" and o.get("final_agreement"):
        cbs.append(P.AnnealAgreement(o["agreement"], o["final_agreement"],
                                     epochs=max(int(epochs), 1)))
    return builtins.list(cbs)


def default_optimizer(name, learning_rate=None, decay_steps=None):
    """The optimizer the recipe is tuned with on small data: Adam (lr 1e-3 by default).

    Sequence recipes carry their own learning rate (``kalman-ssl``: 1e-4) and, with
    ``schedule="cosine"``, decay it to 1 % over ``decay_steps`` optimizer steps
    (``keras.optimizers.schedules.CosineDecay``; constant when ``decay_steps`` is None).

    Example:
        >>> model.compile(optimizer=ldm.recipes.default_optimizer("simclr", 2e-3))
        >>> opt = ldm.recipes.default_optimizer("kalman-ssl", decay_steps=20 * 100)
    """
    r = get(name)
    if r.kind == "sequence":
        lr = float(learning_rate or r.defaults["learning_rate"])
        if r.defaults.get("schedule") == "cosine" and decay_steps:
            lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=int(decay_steps),
                                                        alpha=0.01)
        return keras.optimizers.Adam(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=learning_rate or 1e-3)


def _sequence_entropy(o):
    kind = o.get("entropy")
    if kind is None:
        return None
    if kind == "knn":
        return E.KNNEntropy(k=o.get("k", 3), clip_quantile=o.get("clip_quantile"))
    if kind == "kde":
        return E.GaussianKDE(precision=o.get("entropy_precision", 5.0))
    if kind == "logdet":
        return E.GaussianLogDet()
    raise ValueError(f"Unknown entropy kind {kind!r}; expected 'knn', 'kde' or 'logdet'.")


def _build_sequence(name, encoder, o):
    from .models.predictive import PredictiveLDM
    from .models.sequence import CPCLDM, JEPALDM
    from .predictors import KalmanCell, KalmanFilter, RecurrentPredictor

    dim = _feature_dim(encoder)
    model_name = name.replace("-", "_")
    kind = o["model"]
    if kind == "cpc":
        return CPCLDM(encoder, context_units=o["context_units"], context_cell=o["context_cell"],
                      prediction_steps=o["prediction_steps"], score=o["score"],
                      precision=o["precision"], entropy_weight=o["entropy_weight"],
                      name=model_name)
    if kind == "jepa":
        predictor = RecurrentPredictor(units=o["units"], cell=o["cell"],
                                       hidden_units=tuple(o["hidden_units"]),
                                       variance="constant")
        return JEPALDM(encoder, predictor=predictor,
                       prior=P.IsotropicGaussian(precision=o["precision"]),
                       ema_momentum=o["ema_momentum"], name=model_name)
    entropy = _sequence_entropy(o)
    if kind == "kalman":
        cell = KalmanCell(state_dim=o["state_dim"] or dim, observation_dim=dim,
                          observation_noise_init=o["observation_noise_init"],
                          process_noise_init=o["process_noise_init"],
                          stop_gradient_targets=entropy is None)
        return PredictiveLDM(encoder, KalmanFilter(cell, return_covariances=False),
                             entropy=entropy, entropy_weight=o.get("entropy_weight", 1.0),
                             clamp_radius=o["clamp_radius"], name=model_name)
    predictor = RecurrentPredictor(units=o["units"], cell=o["cell"],
                                   hidden_units=tuple(o["hidden_units"]),
                                   variance=o["variance"], stop_gradient_targets=entropy is None)
    return PredictiveLDM(encoder, predictor, entropy=entropy,
                         entropy_weight=o.get("entropy_weight", 1.0), name=model_name)
