"""The multi-view recipes (two views of each image; a :class:`~ldm_keras.models.MultiViewLDM`)."""

from ..models.encoders import mlp
from ..models.multiview import MultiViewLDM
from ..objectives import LDMObjective
from . import components
from .base import add, feature_dim

_SPHERE = dict(projector=(256, 64), normalize=True)
add("simclr", "SimCLR: sphere prior + vMF-KDE with the other view as centres, marginal "
    "entropy (LDM + MI), λ = ½ — the symmetric InfoNCE.",
    prior="vmf", precision=5.0, entropy="vmf-kde", entropy_precision=5.0,
    centers="other", mode="marginal", entropy_weight=0.5, **_SPHERE)
add("sphere-ldm", "Sphere LDM: sphere prior + vMF-KDE on the joint [z1, z2].",
    prior="vmf", precision=5.0, entropy="vmf-kde", entropy_precision=5.0,
    mode="joint", entropy_weight=1.0, **_SPHERE)
add("plane-kde", "Plane LDM: isotropic Gaussian prior + Gaussian KDE, joint entropy.",
    prior="gaussian", precision=5.0, entropy="gaussian-kde", entropy_precision=5.0,
    mode="joint", entropy_weight=1.0, projector=(256, 64), normalize=False)
add("plane-knn", "Plane LDM with the Kozachenko–Leonenko k-NN entropy (k = 3), joint.",
    prior="gaussian", precision=5.0, entropy="knn", k=3, mode="joint",
    entropy_weight=1.0, projector=(256, 64), normalize=False)
add("vicreg", "VICReg: isotropic Gaussian prior (invariance) + VICReg variance/covariance "
    "surrogate, marginal (LDM + MI).",
    prior="gaussian", precision=25.0, entropy="vicreg", mode="marginal",
    entropy_weight=1.0, projector=(256, 256, 128), normalize=False)
add("vicreg-ldm", "VICReg as exact LDM: isotropic Gaussian prior + Gaussian log-det "
    "entropy of the latents of both views pooled over the batch.",
    prior="gaussian", precision=5.0, entropy="logdet", mode="pooled",
    entropy_weight=1.0, projector=(256, 64), normalize=False)
add("simsiam", "SimSiam: predictor head, stop-gradient targets, no explicit entropy "
    "(implicit entropy by stop-gradient); negative cosine = vMF prior.",
    prior="vmf", precision=1.0, entropy=None, stop_gradient=True, predictor=(128,),
    projector=(256, 64), normalize=False)
add("byol", "BYOL: predictor head, EMA target network (m = 0.99), no explicit entropy.",
    prior="vmf", precision=1.0, entropy=None, stop_gradient=True, predictor=(128,),
    ema_momentum=0.99, projector=(256, 64), normalize=False)
add("categorical", "Clustering: softmax head over n classes, categorical pair model with "
    "agreement p annealed 0.8 → 0.992, categorical plug-in entropy of the joint.",
    prior="categorical", num_classes=10, agreement=0.8, final_agreement=0.992,
    entropy="categorical", mode="joint", entropy_weight=1.0, projector=(256,))

#: Settings every multi-view recipe accepts as overrides (besides its own defaults).
SETTINGS = {"projector", "predictor", "ema_momentum", "normalize", "stop_gradient", "mode",
            "entropy_weight", "precision", "entropy_precision", "centers", "k",
            "clip_quantile"}


def settings(recipe):
    """The settings ``recipe`` accepts."""
    return set(recipe.defaults) | SETTINGS


def check(recipe, o):
    """Nothing beyond the allowed names to check for the multi-view recipes."""
    return o


def build(recipe, encoder, views, o):
    """The uncompiled :class:`~ldm_keras.models.MultiViewLDM` of settings ``o``."""
    name = recipe.name
    if o.get("entropy") is None and o.get("mode") not in (None, "joint"):
        o["mode"] = "joint"
    dim = feature_dim(encoder)
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
        prior=components.prior(o), entropy=components.entropy(o),
        entropy_weight=o.get("entropy_weight", 1.0), mode=o.get("mode") or "joint",
        stop_gradient=o.get("stop_gradient", False),
    )
    return MultiViewLDM(encoder, objective, projector=projector, predictor=predictor,
                        views=views, ema_momentum=o.get("ema_momentum"),
                        name=name.replace("-", "_"))
