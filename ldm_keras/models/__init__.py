"""``keras.Model`` subclasses that train by LDM with ``model.fit`` on every backend."""

from .base import LDMModel
from .multiview import MultiViewLDM
from .optimizers import GroupedOptimizer, ScaledSchedule
from .predictive import PredictiveLDM

__all__ = ["LDMModel", "MultiViewLDM", "PredictiveLDM", "GroupedOptimizer", "ScaledSchedule"]
