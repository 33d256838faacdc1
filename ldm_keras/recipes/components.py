"""The latent model and entropy estimator of a recipe, built by name from its settings.

A recipe names its components (``prior="vmf"``, ``entropy="knn"``); the tables below say
which recipe settings each component's constructor takes, and
:func:`ldm_keras.priors.get` / :func:`ldm_keras.entropy.get` build it.
"""

import warnings

from .. import entropy as entropy_estimators
from .. import priors

#: prior name -> its constructor arguments from the recipe settings ``o``.
PRIOR_ARGS = {
    "vmf": lambda o: {"precision": o["precision"]},
    "gaussian": lambda o: {"precision": o["precision"]},
    "categorical": lambda o: {"num_classes": o["num_classes"], "agreement": o["agreement"]},
}

#: entropy name -> its constructor arguments from the recipe settings ``o``.
ENTROPY_ARGS = {
    "vmf-kde": lambda o: {"precision": o["entropy_precision"],
                          "centers": o.get("centers", "self")},
    "gaussian-kde": lambda o: {"precision": o.get("entropy_precision", 5.0)},
    "knn": lambda o: {"k": o.get("k", 3), "clip_quantile": o.get("clip_quantile")},
    # marginal mode sums the variance hinge of both branches; VICReg averages them
    # (weight 25), so 12.5 per branch reproduces VICReg's loss exactly.
    "vicreg": lambda o: {"variance_weight": 12.5, "covariance_weight": 1.0},
    "logdet": lambda o: {},
    "categorical": lambda o: {},
}

#: Old spellings of entropy names, accepted for one release with a DeprecationWarning.
DEPRECATED_ENTROPY_NAMES = {"kde": "gaussian-kde"}


def entropy_name(name):
    """``name`` with a deprecated spelling replaced (and a DeprecationWarning)."""
    if name in DEPRECATED_ENTROPY_NAMES:
        new = DEPRECATED_ENTROPY_NAMES[name]
        warnings.warn(f"entropy={name!r} is deprecated; use entropy={new!r} (the name of "
                      "ldm_keras.entropy.get).", DeprecationWarning, stacklevel=3)
        return new
    return name


def prior(o):
    """The latent model of settings ``o`` (``o["prior"]`` names it)."""
    name = o["prior"]
    if name not in PRIOR_ARGS:
        raise ValueError(f"Unknown prior kind {name!r}; recipes use {sorted(PRIOR_ARGS)}.")
    return priors.get(name, **PRIOR_ARGS[name](o))


def entropy(o):
    """The entropy estimator of settings ``o`` (``o["entropy"]``; ``None`` for none)."""
    name = o.get("entropy")
    if name is None:
        return None
    if name not in ENTROPY_ARGS:
        raise ValueError(f"Unknown entropy kind {name!r}; recipes use {sorted(ENTROPY_ARGS)}.")
    return entropy_estimators.get(name, **ENTROPY_ARGS[name](o))
