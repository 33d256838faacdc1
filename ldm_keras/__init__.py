"""ldm_keras: self-supervised learning by Latent Distribution Matching, for Keras 3.

LDM fits the distribution of learned latents to an explicit latent model,

    F = E_R[log p_θ(z)] + H_R[z]     (alignment + entropy),

and each choice of latent model (:mod:`ldm_keras.priors`) and entropy estimator
(:mod:`ldm_keras.entropy`) gives a known self-supervised method
(:mod:`ldm_keras.recipes`). Works on the TensorFlow, JAX and PyTorch backends.
"""

__version__ = "0.1.0"

from ._choose_backend import check_keras_version, choose_backend  # noqa: E402

choose_backend()  # before Keras is imported: see ldm_keras/_choose_backend.py
check_keras_version()  # keras >= _choose_backend.MIN_KERAS, with a clear error

from . import (  # noqa: E402,F401
    augment,
    callbacks,
    data,
    entropy,
    evaluation,
    models,
    objectives,
    optimizers,
    plots,
    predictors,
    priors,
    recipes,
    zoo,
)
from .models import encoders  # noqa: E402,F401
from .objectives import LDMObjective  # noqa: E402,F401
