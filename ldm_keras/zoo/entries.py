"""The zoo's entries as data: what each one is, how it is trained and how it is scored.

Each entry of :data:`ENTRIES` names a training job of :mod:`ldm_keras.jobs`
(``job="multiview"`` → :func:`~ldm_keras.jobs.train_multiview`, ``job="sequence"`` →
:func:`~ldm_keras.jobs.train_sequence`) with its recipe, dataset, seed and settings, and
its headline metric. ``kind`` is what the entry holds (``multiview``; ``kalman`` or
``recurrent``: a :class:`~ldm_keras.models.PredictiveLDM`). :mod:`.builder` trains an
entry from this table, :mod:`.verifier` recomputes its headline metric:

* digits entries: :func:`ldm_keras.evaluation.encoders.evaluate_encoder` on the
  scikit-learn digits (30 % stratified test split, seed 0): ``probe_10`` (logistic
  regression with 10 labels per class, mean over label-draw seeds 0–4), ``probe_full``,
  ``knn`` and, for the categorical recipe, ``clustering``;
* DotMotion entries: ``r2``, the R² of an affine read-out of the positions from the
  per-frame latents, fitted on :data:`DOTMOTION_READOUT_SEQUENCES` training sequences of
  the preset (``dot_motion.load(preset, "train", num_sequences=800)``) and scored on the
  preset's full test split (:func:`ldm_keras.evaluation.encoders.frame_readout_r2`).
"""

import difflib

from ._errors import ZooError


def _digits(recipe, summary, headline="probe_10", version="1.0.0"):
    """A digits entry: the multi-view job on the scikit-learn digits, seed 0."""
    return dict(kind="multiview", job="multiview", recipe=recipe, dataset="digits", seed=0,
                version=version, headline=headline, summary=summary)


#: The kalman-ssl settings the published Kalman entries were trained with (before the
#: recipe's transition start, dynamics multiplier and warm-up changed): a rebuild
#: reproduces them.
_KALMAN_SSL_V1 = dict(initial_rotation=None, lr_multipliers="default", lr_warmup_steps=None)

#: name -> the entry: how it is built (the job, its recipe and settings) and scored.
ENTRIES = {
    "digits-simclr": _digits(
        "simclr", "Conv encoder (64-d) trained on the digits with the SimCLR recipe "
        "(vMF prior + vMF-KDE, InfoNCE), κ = γ = 10."),
    "digits-vicreg-ldm": _digits(
        "vicreg-ldm", "Conv encoder (64-d) trained on the digits with VICReg as exact LDM "
        "(isotropic Gaussian prior + Gaussian log-det entropy)."),
    "digits-byol": _digits(
        "byol", "Conv encoder (64-d) trained on the digits with the BYOL recipe "
        "(predictor, EMA target, implicit entropy).", version="1.1.0"),
    "digits-categorical": _digits(
        "categorical", "Conv encoder (64-d) + 10-way softmax head trained on the digits with "
        "the categorical (clustering) recipe.", headline="clustering"),
    "dotmotion-circular-noisy-kalman": dict(
        kind="kalman", job="sequence", recipe="kalman-ssl", preset="circular-noisy", seed=0,
        version="1.0.0", headline="r2",
        training=dict(epochs=20, batch_size=32, learning_rate=1e-4, latent_dim=2),
        settings=dict(state_dim=2, noise_encoder=(64,), transition_seed=0,
                      **_KALMAN_SSL_V1),
        summary="KalmanSSL on noisy circular DotMotion (pixel noise 0.2, 135° jumps): MLP "
                "encoder 100→128→2, Kalman filter S = 2, heteroscedastic observation noise "
                "inferred per frame by a noise encoder."),
    "dotmotion-figure-eight-kalman": dict(
        kind="kalman", job="sequence", recipe="kalman-ssl", preset="figure-eight", seed=0,
        version="2.0.0", headline="r2",
        training=dict(epochs=20, batch_size=32, learning_rate=1e-4, latent_dim=3),
        settings=dict(state_dim=4, lr_warmup_steps={"dynamics": 1000}),
        summary="KalmanSSL on figure-eight DotMotion, the dynamics' learning rate warmed up "
                "over the first 1000 steps: MLP encoder 100→128→3, Kalman filter S = 4, "
                "20 epochs, seed 0 (not selected; the card gives the seed spread)."),
    "dotmotion-circular-recurrent": dict(
        kind="recurrent", job="sequence", recipe="recurrent-ldm", preset="circular", seed=0,
        version="1.1.0", headline="r2",
        training=dict(epochs=5, batch_size=32, learning_rate=1e-3, latent_dim=8,
                      sequences=800, train_length=25),
        settings=dict(units=64, hidden_units=(64,), entropy="knn", k=3, lr_multipliers=None,
                      schedule="cosine"),
        summary="Predictive LDM on circular DotMotion with a GRU predictor (Gaussian "
                "heads, 8-d latents) and the explicit Kozachenko–Leonenko k-NN entropy."),
    "cifar10-resnet18-simclr": dict(
        kind="multiview", job="multiview", recipe="simclr", dataset="cifar10", seed=0,
        version="0.1.0", headline="probe_full", weights=False, epochs=1000,
        summary="ResNet-18 (CIFAR stem, 512-d) with the SimCLR recipe on CIFAR-10 — recipe "
                "only, no published weights (train it where CIFAR-10 can be downloaded)."),
}

#: Training sequences the DotMotion read-out is fitted on.
DOTMOTION_READOUT_SEQUENCES = 800


def spec(name):
    """The entry ``name`` of :data:`ENTRIES` (a :class:`ZooError` with close matches)."""
    if name not in ENTRIES:
        close = difflib.get_close_matches(str(name), list(ENTRIES), n=3, cutoff=0.5)
        hint = f" Did you mean {close}?" if close else ""
        raise ZooError(f"Unknown zoo entry {name!r}.{hint} Known entries: {sorted(ENTRIES)}.")
    return ENTRIES[name]


def how_to_build(name):
    """The command that (re)builds an entry."""
    s = spec(name)
    if s.get("weights", True):
        return f"KERAS_BACKEND=jax ldm-keras zoo build {name}"
    return (f"Train it where CIFAR-10 can be downloaded (about {s['epochs']} epochs; a GPU "
            f"is advised): `KERAS_BACKEND=jax ldm-keras zoo build {name} --train`, which "
            f"runs ldm_keras.jobs.train_multiview('{s['recipe']}', "
            f"'{s['dataset']}', seed={s['seed']}) and writes the weights, reference "
            "outputs and metrics into the entry.")
