"""Entropy estimators ``Ĥ[z]`` from a batch: the uniformity term of LDM."""

from .base import EntropyEstimator

__all__ = ["EntropyEstimator"]
