"""Entropy estimators ``Ĥ[z]`` from a batch: the uniformity term of LDM.

Every estimator is a serialisable Keras layer whose call returns a float32 scalar
(whatever the dtype policy) and offers two two-view forms, :meth:`~EntropyEstimator.joint`
(``H[z1, z2]``, LDM) and :meth:`~EntropyEstimator.marginal` (``H[z1] + H[z2]``, LDM + MI).
Pairwise estimators use one matrix product and ``logsumexp``; none builds an ``N×N×d``
tensor.

=======================  ==================================================================
``GaussianKDE``          Gaussian kernel density ("plane contrastive")
``VonMisesFisherKDE``    von Mises–Fisher kernel density ("sphere contrastive", InfoNCE)
``GaussianLogDet``       ½ log det(Cov + εI) (+ d/2 log 2πe), Cholesky
``LogDetSecondOrder``    Σ log C_ii − ½ Σ_{i≠j} ρ²_ij (halved), no factorisation
``VICRegSurrogate``      VICReg's variance hinge + covariance penalty, negated
``KNNEntropy``           Kozachenko–Leonenko k-nearest neighbours
``CategoricalEntropy``   plug-in entropy of softmax outputs (cluster assignments)
``LinearJacobian``       log|det W| of an invertible linear map (ICA)
=======================  ==================================================================

:func:`get` builds one by name (what the recipes use), :func:`names` lists the names.

Example:
    >>> ldm.entropy.get("knn", k=3)                   # KNNEntropy(k=3)
"""

from .._math import log_abs_det
from .._registry import Registry
from .base import EntropyEstimator
from .categorical import CategoricalEntropy
from .jacobian import LinearJacobian
from .kde import GaussianKDE, VonMisesFisherKDE
from .knn import KNNEntropy
from .logdet import GaussianLogDet, LogDetSecondOrder, VICRegSurrogate

#: The entropy estimators by name.
ESTIMATORS = Registry("entropy estimator")
for _name, _cls in (("gaussian-kde", GaussianKDE), ("vmf-kde", VonMisesFisherKDE),
                    ("logdet", GaussianLogDet), ("logdet-second-order", LogDetSecondOrder),
                    ("vicreg", VICRegSurrogate), ("knn", KNNEntropy),
                    ("categorical", CategoricalEntropy), ("linear-jacobian", LinearJacobian)):
    ESTIMATORS.register(_name, _cls)
del _name, _cls


#: ``get(name, **kwargs)``: a new entropy estimator by name; ``names()``: the names, sorted.
get = ESTIMATORS.get
names = ESTIMATORS.names


def joint_entropy(estimator, z1, z2):
    """``H[z1, z2]`` from ``estimator`` (LDM's joint entropy): ``estimator.joint(z1, z2)``.

    Example:
        >>> joint_entropy(GaussianKDE(), z1, z2)
    """
    return estimator.joint(z1, z2)


def marginal_entropy(estimator, z1, z2):
    """``H[z1] + H[z2]`` from ``estimator`` (LDM + MI): ``estimator.marginal(z1, z2)``.

    Example:
        >>> marginal_entropy(VonMisesFisherKDE(centers="other"), z1, z2)
    """
    return estimator.marginal(z1, z2)


__all__ = [
    "EntropyEstimator",
    "GaussianKDE",
    "VonMisesFisherKDE",
    "GaussianLogDet",
    "LogDetSecondOrder",
    "VICRegSurrogate",
    "KNNEntropy",
    "CategoricalEntropy",
    "LinearJacobian",
    "log_abs_det",
    "joint_entropy",
    "marginal_entropy",
    "ESTIMATORS",
    "get",
    "names",
]
