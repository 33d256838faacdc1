"""End-of-run checks of the training jobs (:mod:`ldm_keras.jobs`, ``ldm-keras train``).

A run can finish without an error and still not have trained: its latents collapsed, it
skipped steps as non-finite, its evaluation is NaN, or the trained encoder reads the
ground truth out no better than the untrained one. :func:`run_warnings` turns what the
job measured into plain sentences, each with the likely cause; the jobs issue them as
:class:`RunWarning` and keep them in ``run.json``, and the CLI prints them after its table.
The latents are measured before and after training by :class:`LatentCheck`, as
:class:`~ldm_keras.callbacks.RepresentationMonitor` measures them (effective rank,
spread, shrink against the start, and its collapse thresholds).

Example:
    >>> said = run_warnings("byol", {}, latents, skipped=0, total=120, metrics={})
"""

import warnings

import keras
import numpy as np

from . import recipes
from .callbacks import RepresentationMonitor


class RunWarning(UserWarning):
    """A training job's end-of-run warning (:func:`run_warnings`): the run ended collapsed,
    skipped steps, evaluated to NaN, or learned nothing the read-out can see."""


class LatentCheck:
    """The latents of a fixed sample before and after training, measured as
    :class:`~ldm_keras.callbacks.RepresentationMonitor` does (effective rank, spread,
    shrink against the first measurement; its collapse thresholds): call
    :meth:`measure` before and after training, with ``embed(x) -> (n, d)`` latents of this
    process alone. Latents holding NaN/inf are not measured: the record is then
    ``{"nonfinite": 1.0, "collapsed": 0.0, "size": d}``."""

    def __init__(self, sample):
        self.sample = sample
        self._z = None
        self.monitor = RepresentationMonitor(sample, warn=False, alignment=False,
                                             features=lambda _model, _x: self._z)

    def measure(self, embed):
        z = np.asarray(embed(self.sample), "float64")
        if not np.all(np.isfinite(z)):
            return {"nonfinite": 1.0, "collapsed": 0.0, "size": int(z.shape[-1])}
        self._z = z
        out = self.monitor.measure(model=None)
        out["size"] = int(self.monitor.latent_size)
        return out


def encoder_latents(encoder, frames=False):
    """``embed(x)`` for :class:`LatentCheck`: the encoder's outputs (per frame for
    windows ``(n, T, ...)``), float64."""
    def embed(x):
        x = np.asarray(x, "float32")
        flat = x.reshape((-1,) + x.shape[2:]) if frames else x
        # direct calls, not `predict`: on PyTorch its DataLoader would draw from the
        # global generator and change the shuffling of the `fit` that follows
        z = np.concatenate([keras.ops.convert_to_numpy(encoder(flat[i:i + 512], training=False))
                            for i in range(0, len(flat), 512)]).astype("float64")
        return z.reshape(-1, z.shape[-1])
    return embed


def run_warnings(recipe, settings, latents, skipped, total, metrics):
    """Plain-language warnings about a finished run, each with its likely cause:

    * the latents ended **collapsed** (``latents``: a
      :meth:`~ldm_keras.callbacks.RepresentationMonitor.measure` record with its
      ``collapsed`` flag — effective rank, spread or shrink below the monitor's
      thresholds);
    * ``skipped`` of the ``total`` steps were skipped as **non-finite**;
    * the latents at the end hold **NaN/inf**; a metric is **NaN**;
    * a sequence run's held-out read-out ``r2`` is no better than the **untrained**
      encoder's ``r2_untrained``.

    ``settings`` are the recipe settings of the run (over the recipe's defaults), used to
    name the likely cause. Returns a list of strings (empty for a healthy run).

    Example:
        >>> run_warnings("byol", {}, {"collapsed": 1.0, "rep_rank": 1.1, ...}, 0, 100, {})
    """
    out = []
    options = {**recipes.get(recipe).defaults, **(settings or {})}
    if latents is not None and latents.get("collapsed"):
        if options.get("entropy") is None or not options.get("entropy_weight", 1.0):
            cause = ("the objective has no explicit entropy term, so only the recipe's "
                     "predictor, stop-gradient targets or EMA target keep the latents apart: "
                     "check that they are on (or use a recipe with an entropy term)")
        else:
            cause = ("the entropy term did not hold the latents apart against the alignment: "
                     "raise `entropy_weight`, lower the latent model's `precision`, or lower "
                     "the learning rate")
        out.append(
            f"The run ended collapsed: effective rank {latents['rep_rank']:.2f} of "
            f"{latents.get('size', '?')} latent dimensions, spread {latents['rep_spread']:.3f}, "
            f"shrink {latents['rep_shrink']:.3f} against the untrained encoder (collapsed below "
            "rank 0.03 × size, spread 0.06 or shrink 0.1). Likely cause: " + cause + ".")
    if latents is not None and latents.get("nonfinite"):
        out.append("The latents at the end hold NaN or inf. Likely cause: non-finite "
                   "weights (a learning rate too high) or NaN/inf in the data.")
    if skipped:
        out.append(
            f"{skipped} of the {total} training steps were skipped as non-finite (NaN/inf loss "
            "or gradient) and did not update the weights. Likely cause: NaN/inf or huge values "
            "in the data, or a learning rate too high.")
    bad = sorted(k for k, v in (metrics or {}).items()
                 if isinstance(v, float) and not np.isfinite(v))
    if bad:
        out.append(f"The evaluation gave non-finite {', '.join(bad)}. Likely cause: NaN/inf "
                   "latents (non-finite weights or inputs).")
    r2, r2_0 = (metrics or {}).get("r2"), (metrics or {}).get("r2_untrained")
    if r2 is not None and r2_0 is not None and np.isfinite(r2) and r2 <= r2_0:
        out.append(
            f"The trained encoder reads the ground truth out no better than the untrained one "
            f"(held-out R² {r2:.4f} against {r2_0:.4f}). Likely cause: too few epochs or a "
            "learning rate too low or too high for this data.")
    return out


def warn_all(messages):
    for m in messages:
        warnings.warn(m, RunWarning, stacklevel=3)
