"""Latent models ``p_θ(z | context)``: the alignment term of LDM."""

from .base import Prior
from .gaussian import IsotropicGaussian

__all__ = ["Prior", "IsotropicGaussian"]
