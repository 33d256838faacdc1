"""``keras.Model`` subclasses that train by LDM with ``model.fit`` on every backend."""

from .base import LDMModel
from .diagnostics import GradientCosineMonitor, gradient_cosines
from .multiview import MultiViewLDM
from .optimizers import GroupedOptimizer, ScaledSchedule
from .predictive import PredictiveLDM

__all__ = [
    "LDMModel",
    "MultiViewLDM",
    "PredictiveLDM",
    "GradientCosineMonitor",
    "gradient_cosines",
    "GroupedOptimizer",
    "ScaledSchedule",
]
