"""Predictors: context -> prediction of the next latent (Kalman filter, recurrent)."""

from .kalman import KalmanCell, KalmanFilter, TransitionInitializer, spectral_radius
from .recurrent import RecurrentPredictor

__all__ = [
    "KalmanCell",
    "KalmanFilter",
    "RecurrentPredictor",
    "TransitionInitializer",
    "spectral_radius",
]
