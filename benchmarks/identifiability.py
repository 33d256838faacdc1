"""Identifiability study (docs/spec.md §7): does a predictive LDM recover the latent state?

Data: ``ldm_keras.data.state_space`` presets ``nonlinear-2d`` / ``nonlinear-4d`` (damped
Duffing-type oscillators, Gaussian transition noise, a random injective leaky-tanh MLP
mixing to 20-d observations). Sequences are cut into windows of ``--window`` steps.
Every method uses the same per-frame MLP encoder ``20 → 64 → 64 → dim`` (GELU) and is
scored by the R² of an affine read-out of the true state from the latents, fitted on
training frames and evaluated on the held-out test split (distinct noise seed, same g).

Methods:
  (i)   ``knn``       PredictiveLDM + RecurrentPredictor (GRU; ``--variance constant``: unit
                      variance, i.e. MSE), explicit k-NN entropy (k = 3) on latents pooled
                      over batch × time, no stop-gradient; the NLL skips the first
                      ``--skip-first`` steps of each window (default 1: ``z_1`` is predicted
                      from a constant input; ``PredictiveLDM(skip_first=...)`` explains why);
  (ii)  ``kalman``    PredictiveLDM + KalmanFilter (state = dim), stop-gradient (reference
                      KalmanSSL setting, lr multipliers 100/10/0.03);
  (iii) ``noentropy`` as (i) with entropy weight 0 and no stop-gradient (collapse-prone);
  (iv)  ``autoencoder`` reconstruction baseline: MLP decoder (MSE on x) + a GRU latent
                      predictor (MSE on the stop-gradient next latent), trained jointly.
  ``--baseline``      the affine read-out R² of the state from the raw observations.

Final runs (benchmarks/results/identifiability.md; 160 epochs for ``nonlinear-4d``):

    KERAS_BACKEND=jax python benchmarks/identifiability.py --preset nonlinear-2d \\
        --methods knn --seeds 0 1 2 --epochs 80 --window 20 --batch-size 32 --lr 3e-3 \\
        --variance constant --skip-first 1
"""

import argparse
import json
import os
import sys
import time

import numpy as np

METHODS = ("knn", "kalman", "noentropy", "autoencoder")


def load_windows(preset, split, window, num_sequences=None):
    """``(observations, latents)`` of a preset split, cut into non-overlapping windows."""
    from ldm_keras.data import state_space

    d = state_space.load(preset, split, num_sequences=num_sequences)
    x, s = d.observations, d.latents
    t = (x.shape[1] // window) * window
    shape = lambda a: a[:, :t].reshape(-1, window, a.shape[-1])  # noqa: E731
    return shape(x), shape(s)


def frame_encoder(obs_dim, latent_dim, width=64, seed=0):
    """Per-frame MLP ``obs_dim → width → width → latent_dim`` (GELU)."""
    import keras

    init = lambda k: keras.initializers.GlorotUniform(seed=seed * 10 + k)  # noqa: E731
    return keras.Sequential([
        keras.Input((obs_dim,)),
        keras.layers.Dense(width, activation="gelu", kernel_initializer=init(0)),
        keras.layers.Dense(width, activation="gelu", kernel_initializer=init(1)),
        keras.layers.Dense(latent_dim, kernel_initializer=init(2)),
    ])


def build_ldm(method, obs_dim, dim, seed=0, variance="softplus", skip_first=0,
              entropy_weight=1.0, width=64, units=32, k=3):
    """The PredictiveLDM of methods (i)–(iii) (``skip_first``: steps at the start of each
    window left out of the NLL, see :class:`~ldm_keras.models.PredictiveLDM`)."""
    import ldm_keras as ldm
    from ldm_keras.predictors import KalmanCell, KalmanFilter, RecurrentPredictor

    encoder = frame_encoder(obs_dim, dim, width=width, seed=seed)
    if method == "kalman":
        return ldm.models.PredictiveLDM(
            encoder, KalmanFilter(KalmanCell(state_dim=dim, seed=seed)), entropy=None)
    predictor = RecurrentPredictor(units=units, cell="gru", hidden_units=(units,),
                                   variance=variance, stop_gradient_targets=False)
    return ldm.models.PredictiveLDM(
        encoder, predictor, entropy=ldm.entropy.KNNEntropy(k=k),
        entropy_weight=0.0 if method == "noentropy" else entropy_weight,
        lr_multipliers=None, skip_first=int(skip_first))


def raw_readout_r2(preset, readout_frames=20000, seed=0):
    """Baseline: R² of an affine read-out of the state from the raw observations."""
    from ldm_keras.data import state_space
    from ldm_keras.evaluation import affine_r2

    tr, te = state_space.load(preset, "train"), state_space.load(preset, "test")
    dim = tr.latents.shape[-1]
    x_tr = tr.observations.reshape(-1, tr.observations.shape[-1])
    s_tr = tr.latents.reshape(-1, dim)
    idx = np.random.default_rng(seed).choice(len(x_tr), min(readout_frames, len(x_tr)),
                                             replace=False)
    return affine_r2(x_tr[idx], s_tr[idx],
                     te.observations.reshape(-1, x_tr.shape[-1]), te.latents.reshape(-1, dim))


def build_autoencoder(obs_dim, dim, window, seed=0):
    """Reconstruction baseline: encoder, decoder and a GRU latent predictor (functional)."""
    import keras
    from keras import ops

    encoder = frame_encoder(obs_dim, dim, seed=seed)
    decoder = frame_encoder(dim, obs_dim, seed=seed + 100)
    x = keras.Input((window, obs_dim))
    z = keras.layers.TimeDistributed(encoder)(x)
    x_hat = keras.layers.TimeDistributed(decoder, name="reconstruction")(z)
    past = keras.layers.Lambda(lambda t: t[:, :-1])(z)
    h = keras.layers.GRU(32, return_sequences=True, seed=seed)(past)
    z_pred = keras.layers.Dense(dim)(keras.layers.Dense(32, activation="gelu")(h))
    err = keras.layers.Lambda(lambda ab: ab[0] - ops.stop_gradient(ab[1][:, 1:]),
                              name="prediction")([z_pred, z])
    model = keras.Model(x, {"reconstruction": x_hat, "prediction": err})
    return model, encoder


def encode(encoder, x):
    flat = x.reshape(-1, x.shape[-1])
    return np.asarray(encoder.predict(flat, batch_size=4096, verbose=0))


def run(method, preset="nonlinear-2d", seed=0, epochs=30, window=20, batch_size=64,
        learning_rate=2e-3, num_sequences=None, readout_frames=20000,
        kalman_learning_rate=3e-4, variance="softplus", skip_first=0, entropy_weight=1.0,
        width=64, units=32, k=3):
    """Train one method on one preset and seed; return a dict with the test R²."""
    import keras

    from ldm_keras.evaluation import affine_r2

    keras.utils.set_random_seed(seed)
    x_tr, s_tr = load_windows(preset, "train", window, num_sequences)
    x_te, s_te = load_windows(preset, "test", window)
    obs_dim, dim = x_tr.shape[-1], s_tr.shape[-1]
    steps = epochs * int(np.ceil(len(x_tr) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    t0 = time.time()
    if method == "autoencoder":
        model, encoder = build_autoencoder(obs_dim, dim, window, seed)
        model.compile(keras.optimizers.Adam(schedule), loss="mse")
        targets = {"reconstruction": x_tr,
                   "prediction": np.zeros(x_tr.shape[:1] + (window - 1, dim), "float32")}
        hist = model.fit(x_tr, targets, epochs=epochs, batch_size=batch_size, verbose=0)
    else:
        model = build_ldm(method, obs_dim, dim, seed, variance,
                          skip_first if method != "kalman" else 0, entropy_weight,
                          width, units, k)
        if method == "kalman":  # the dynamics train at 100× (reference multipliers)
            schedule = keras.optimizers.schedules.CosineDecay(kalman_learning_rate, steps)
        model.compile(keras.optimizers.Adam(schedule))
        hist = model.fit(x_tr, epochs=epochs, batch_size=batch_size, verbose=0)
        encoder = model.encoder
    seconds = time.time() - t0
    z_tr, z_te = encode(encoder, x_tr), encode(encoder, x_te)
    s_tr_flat, s_te_flat = s_tr.reshape(-1, dim), s_te.reshape(-1, dim)
    idx = np.random.default_rng(seed).choice(len(z_tr), min(readout_frames, len(z_tr)),
                                             replace=False)
    finite = bool(np.all(np.isfinite(z_tr)) and np.all(np.isfinite(z_te)))
    r2 = affine_r2(z_tr[idx], s_tr_flat[idx], z_te, s_te_flat) if finite else float("nan")
    return {
        "method": method, "preset": preset, "seed": seed, "epochs": epochs,
        "window": window, "batch_size": batch_size, "learning_rate": learning_rate,
        "variance": variance if method in ("knn", "noentropy") else None,
        "skip_first": skip_first if method in ("knn", "noentropy") else None,
        "entropy_weight": entropy_weight if method == "knn" else None,
        "width": width, "r2_test": r2,
        "latent_std": np.std(z_te, axis=0).tolist() if finite else None,
        "final_loss": float(hist.history["loss"][-1]), "train_seconds": round(seconds, 1),
        "backend": keras.backend.backend(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="nonlinear-2d")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--num-sequences", type=int, default=None)
    parser.add_argument("--variance", default="softplus", choices=["softplus", "constant"],
                        help="variance head of the recurrent predictor (methods i, iii)")
    parser.add_argument("--skip-first", type=int, default=1,
                        help="steps at the start of each window left out of the NLL (i, iii)")
    parser.add_argument("--entropy-weight", type=float, default=1.0)
    parser.add_argument("--width", type=int, default=64, help="encoder width")
    parser.add_argument("--units", type=int, default=32, help="GRU / predictor MLP width")
    parser.add_argument("--k", type=int, default=3, help="k of the k-NN entropy")
    parser.add_argument("--baseline", action="store_true",
                        help="only print the raw-observation affine read-out R²")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "identifiability.json"))
    args = parser.parse_args()
    if args.baseline:
        print(json.dumps({"preset": args.preset, "raw_r2_test": raw_readout_r2(args.preset)}))
        return
    rows = []
    if os.path.exists(args.out):
        with open(args.out) as fh:
            rows = json.load(fh)["runs"]
    for method in args.methods:
        for seed in args.seeds:
            r = run(method, args.preset, seed, args.epochs, args.window, args.batch_size,
                    args.lr, args.num_sequences, variance=args.variance,
                    skip_first=args.skip_first, entropy_weight=args.entropy_weight,
                    width=args.width, units=args.units, k=args.k)
            print(json.dumps(r), flush=True)
            r["command"] = "KERAS_BACKEND=jax python benchmarks/identifiability.py " + " ".join(
                sys.argv[1:])
            rows.append(r)
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            with open(args.out, "w") as fh:
                json.dump({"runs": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
