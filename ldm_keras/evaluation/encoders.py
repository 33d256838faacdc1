"""Evaluation of trained encoders on data: what the training jobs and the zoo report.

* image encoders (:func:`evaluate_encoder`): linear probes with all labels and with 10
  per class, k-NN accuracy, clustering accuracy of a softmax head;
* sequence models (:func:`evaluate_sequence_model`, :func:`frame_readout_r2`): the
  held-out R² of an affine read-out of the ground truth from per-frame latents, and the
  learned rotation of a Kalman transition.

Example:
    >>> evaluate_encoder(encoder, (x, y), (x_test, y_test))   # {"probe_full": ..., ...}
"""

import numpy as np
from keras import ops

from ..predictors import KalmanFilter
from .classification import clustering_accuracy, evaluate_embeddings
from .dynamics import affine_r2, eigen_angles

__all__ = ["FrameEncoder", "encode_sequences", "evaluate_encoder", "evaluate_sequence_model",
           "frame_readout_r2"]


def evaluate_encoder(encoder, train, test, head=None, clustering=False):
    """Metrics of a frozen image encoder on labelled arrays: probes, k-NN, clustering.

    ``probe_full`` / ``probe_10`` (logistic regression on standardised embeddings with
    all labels / 10 per class, mean of 5 draws), ``knn`` (k = 20, cosine) and, with
    ``clustering=True`` and a softmax ``head`` (the categorical recipe), ``clustering``
    (Hungarian-matched argmax of ``head(encoder(x))``). ``{}`` when there are no labels.

    Example:
        >>> evaluate_encoder(model.encoder, (x, y), (x_test, y_test))
    """
    (xtr, ytr), (xte, yte) = train, test
    if ytr is None or yte is None:
        return {}
    ztr = np.asarray(encoder.predict(xtr, batch_size=512, verbose=0))
    zte = np.asarray(encoder.predict(xte, batch_size=512, verbose=0))
    metrics = {k: float(v) for k, v in evaluate_embeddings(ztr, ytr, zte, yte).items()}
    if head is not None and clustering:
        q = np.asarray(head.predict(zte, batch_size=512, verbose=0))
        metrics["clustering"] = float(clustering_accuracy(yte, q.argmax(-1)))
    return metrics


class FrameEncoder:
    """``encode(x)`` of a per-frame encoder for windows ``(B, T, *frame)`` (NumPy).

    Example:
        >>> z = FrameEncoder(keras.saving.load_model("run/encoder.keras")).encode(frames)
    """

    def __init__(self, encoder):
        self.encoder = encoder

    def encode(self, x):
        x = np.asarray(x, "float32")
        z = self.encoder.predict(x.reshape((-1,) + x.shape[2:]), batch_size=1024, verbose=0)
        return np.asarray(z).reshape(x.shape[:2] + (-1,))


def encode_sequences(model, x, batch_size=256):
    """``model.encode`` over windows ``x`` in batches, as a float64 NumPy array."""
    out = [ops.convert_to_numpy(model.encode(x[i:i + batch_size]))
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype("float64")


def evaluate_sequence_model(model, train, test, readout_sequences=800):
    """Held-out affine read-out R² of a sequence model's latents (where ground truth exists).

    Fits ``y ≈ z W + c`` on the latents of (at most ``readout_sequences``) training
    windows and scores R² on the test windows
    (:func:`~ldm_keras.evaluation.dynamics.affine_r2`); for a Kalman predictor also the
    learned rotation per step (the largest eigen-angle of the transition,
    :func:`~ldm_keras.evaluation.dynamics.eigen_angles`).

    Example:
        >>> evaluate_sequence_model(model, (x, y), (x_test, y_test))   # {"r2": ...}
    """
    (xtr, ytr), (xte, yte) = train, test
    metrics = {}
    if ytr is not None and yte is not None and xte is not None:
        n = min(int(readout_sequences), len(xtr))
        metrics["r2"] = float(affine_r2(encode_sequences(model, xtr[:n]), ytr[:n],
                                        encode_sequences(model, xte), yte))
    predictor = getattr(model, "predictor", None)
    if isinstance(predictor, KalmanFilter):
        a = ops.convert_to_numpy(predictor.transition_matrix)
        metrics["rotation"] = float(abs(eigen_angles(a)[0]))
    return metrics


def frame_readout_r2(encoder, readout, test, batch_size=4096):
    """Held-out R² of an affine read-out of targets from per-frame latents.

    ``readout`` and ``test`` are ``(frames, targets)`` with frames ``(N, T, F)`` and
    targets ``(N, T, D)``; frames are flattened over sequences × time and encoded with
    ``encoder.predict``, the read-out ``y ≈ z W + c`` is fitted on ``readout`` and scored on
    ``test`` (:func:`~ldm_keras.evaluation.dynamics.affine_r2`).

    Example:
        >>> frame_readout_r2(encoder, (train.frames, train.positions),
        ...                  (test.frames, test.positions))
    """
    (xr, yr), (xt, yt) = readout, test
    frame = xr.shape[-1]
    z_read = np.asarray(encoder.predict(xr.reshape(-1, frame), batch_size=batch_size,
                                        verbose=0))
    z_test = np.asarray(encoder.predict(xt.reshape(-1, frame), batch_size=batch_size,
                                        verbose=0))
    return float(affine_r2(z_read, yr.reshape(-1, yr.shape[-1]), z_test,
                           yt.reshape(-1, yt.shape[-1])))
