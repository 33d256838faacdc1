"""Sampling-free Bayesian filtering of latents: the Kalman predictor of LDM (docs/spec.md §4).

An encoder gives one pseudo-observation ``z_t = f(x_t) ∈ R^L`` per frame; a
linear-Gaussian state-space model with state ``h ∈ R^S`` filters them, and the alignment
term of LDM is the innovation log-likelihood. The pieces live in:

* :mod:`.cell` — :class:`KalmanCell`, the model's parameters and one filter step (a
  Keras RNN cell; discrete or continuous time);
* :mod:`.filter` — :class:`KalmanFilter`, the filter over sequences (masks, time gaps,
  the shared-covariance fast path), open-loop rollouts and smoothing;
* :mod:`.smoother` — the Rauch–Tung–Striebel smoother;
* :mod:`.transition` — :func:`spectral_radius` and :class:`TransitionInitializer`;
* ``_recursion``, ``_linalg``, ``_layout`` — the recursions, small linear algebra
  (Cholesky, matrix exponential, Van Loan) and the cell's flat output layout.

This module re-exports the public names (saved models refer to ``ldm_keras.predictors.kalman``).
"""

from .cell import KalmanCell
from .filter import KalmanFilter
from .transition import TransitionInitializer, spectral_radius

__all__ = ["KalmanCell", "KalmanFilter", "TransitionInitializer", "spectral_radius"]
