"""``keras.Model`` subclasses that train by LDM with ``model.fit`` on every backend."""

from .base import LDMModel
from .diagnostics import GradientCosineMonitor, gradient_cosines
from .ica import LinearICA, expm
from .multiview import MultiViewLDM
from .optimizers import GroupedOptimizer, ScaledSchedule
from .predictive import PredictiveLDM
from .sequence import CPCLDM, JEPALDM, infonce_over_time

__all__ = [
    "LDMModel",
    "MultiViewLDM",
    "PredictiveLDM",
    "LinearICA",
    "expm",
    "CPCLDM",
    "JEPALDM",
    "infonce_over_time",
    "GradientCosineMonitor",
    "gradient_cosines",
    "GroupedOptimizer",
    "ScaledSchedule",
]
