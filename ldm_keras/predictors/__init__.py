"""Predictors: context -> prediction of the next latent (Kalman filter, recurrent)."""
