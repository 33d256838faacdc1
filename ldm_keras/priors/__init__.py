"""Latent models ``p_θ(z | context)``: the alignment term of LDM.

Every prior is a serialisable Keras layer whose :meth:`~Prior.log_prob` (also its
``call``) returns one float32 log density per sample, up to a documented constant.
:func:`get` builds one by name (what the recipes use), :func:`names` lists the names.

Example:
    >>> ldm.priors.get("vmf", precision=5.0)          # VonMisesFisher(precision=5.0)
"""

from .._math import l2_normalize
from .._registry import Registry
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
from .von_mises_fisher import VonMisesFisher

#: The latent models by name.
PRIORS = Registry("prior")
for _name, _cls in (("gaussian", IsotropicGaussian), ("diagonal-gaussian", DiagonalGaussian),
                    ("full-gaussian", FullGaussian), ("vmf", VonMisesFisher),
                    ("categorical", CategoricalPair), ("generalized-gaussian", GeneralizedGaussian),
                    ("laplace", Laplace), ("logistic", Logistic), ("student-t", StudentT)):
    PRIORS.register(_name, _cls)
del _name, _cls


#: ``get(name, **kwargs)``: a new latent model by name; ``names()``: the names, sorted.
get = PRIORS.get
names = PRIORS.names

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
    "PRIORS",
    "get",
    "names",
]
