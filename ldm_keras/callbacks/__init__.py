"""Keras callbacks that watch a self-supervised run while it trains.

* :class:`OnlineProbe` — linear-probe accuracy (and optionally k-NN accuracy) of the
  frozen encoder on held-out labelled data at epoch ends (``probe_acc``, ``knn_acc``);
  the head is trained on the labelled split only.
* :class:`KNNMonitor` — k-NN accuracy alone (``knn_acc``).
* :class:`RepresentationMonitor` — label-free diagnostics on a fixed batch: effective
  rank, per-dimension spread, alignment and uniformity, and a ``collapsed`` flag with a
  :class:`CollapseWarning`.
* :class:`BackupAndRestore` — ``keras.callbacks.BackupAndRestore`` for runs of several
  processes: the chief writes the backups (atomically), every rank restores them.

They run eagerly between the compiled training steps, on every backend, and write
their values into the ``fit`` logs (progress bar and ``History``).

Example:
    >>> import ldm_keras as ldm
    >>> probe = ldm.callbacks.OnlineProbe(x_lab, y_lab, x_val, y_val)
    >>> monitor = ldm.callbacks.RepresentationMonitor(x[:512])
    >>> model.fit(x, epochs=60, callbacks=[probe, monitor])
"""

from .backup import BackupAndRestore
from .monitor import CollapseWarning, RepresentationMonitor
from .probe import KNNMonitor, OnlineProbe, fit_softmax_regression

__all__ = ["BackupAndRestore", "CollapseWarning", "KNNMonitor", "OnlineProbe",
           "RepresentationMonitor", "fit_softmax_regression"]
