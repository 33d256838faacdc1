"""Latent models ``p_θ(z | context)``: the alignment term of LDM.

Every prior is a serialisable Keras layer whose :meth:`~Prior.log_prob` (also its
``call``) returns one float32 log density per sample, up to a documented constant.
"""

from .base import Prior
from .categorical import (
    AnnealAgreement,
    CategoricalPair,
    agreement_to_temperature,
    temperature_to_agreement,
)
from .gaussian import DiagonalGaussian, FullGaussian, IsotropicGaussian
from .generalized_gaussian import GeneralizedGaussian, Laplace, Logistic
from .student_t import StudentT
from .von_mises_fisher import VonMisesFisher, l2_normalize

__all__ = [
    "Prior",
    "IsotropicGaussian",
    "DiagonalGaussian",
    "FullGaussian",
    "VonMisesFisher",
    "CategoricalPair",
    "AnnealAgreement",
    "agreement_to_temperature",
    "temperature_to_agreement",
    "GeneralizedGaussian",
    "Laplace",
    "Logistic",
    "StudentT",
    "l2_normalize",
]
