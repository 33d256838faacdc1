"""DotMotion KalmanSSL benchmark (docs/spec.md §4-§6): train a PredictiveLDM, score it.

A per-frame MLP encoder (100 → width → L, no batch norm) and a Kalman predictor are
trained on DotMotion videos (``ldm_keras.data.dot_motion`` presets, train split) by the
stop-gradient innovation likelihood (or with an explicit k-NN entropy). On the held-out
test split (a distinct seed) the script reports

* ``r2``: R² of an affine read-out ``positions ≈ z W + c`` fitted on training latents
  and scored on test latents (``evaluation.dynamics.affine_r2``);
* ``rotation``: the eigen-angle of the learned transition ``A``
  (``evaluation.dynamics.eigen_angles``), against the true ``2π·dt/period``;
* ``coverage``: how often the encoder latents ``z_t`` of test frames fall inside the
  filter's 95 % predictive intervals ``N(ẑ_t, S_t)`` (``interval_coverage``), for all
  steps and after a burn-in;
* train time: wall-clock and process CPU seconds of ``model.fit``.

With ``--drop-frames p`` a fraction ``p`` of the frames (train and test) is missing at
random (a boolean mask, ``PredictiveLDM.fit({"frames": x, "mask": m})``): the filter
predicts through them, and R² and coverage are computed on the observed frames; the
RTS-smoothed state decoded at the missing frames gives ``r2_smoothed_missing``.

The backend is chosen with ``KERAS_BACKEND``. Example::

    KERAS_BACKEND=jax python benchmarks/dotmotion_kalman.py --trajectory circular \
        --epochs 20 --out benchmarks/results/circular.json
"""

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

from ldm_keras.data import dot_motion  # noqa: E402
from ldm_keras.entropy import KNNEntropy  # noqa: E402
from ldm_keras.evaluation.dynamics import (  # noqa: E402
    affine_r2,
    eigen_angles,
    fit_affine_readout,
    interval_coverage,
)
from ldm_keras.models.encoders import mlp  # noqa: E402
from ldm_keras.models.predictive import DEFAULT_LR_MULTIPLIERS, PredictiveLDM  # noqa: E402
from ldm_keras.predictors import KalmanCell, KalmanFilter  # noqa: E402

# The reference notebooks' numbers (docs/spec.md §6) and the issue's acceptance targets.
REFERENCE_R2 = {"circular": 0.959, "square": 0.967, "figure-eight": 0.990}
TARGET_R2 = {"circular": 0.97, "square": 0.97, "figure-eight": 0.99}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trajectory", default="circular", choices=sorted(dot_motion.PRESETS),
                   help="DotMotion preset (data.dot_motion.PRESETS)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--sequences", type=int, default=None,
                   help="training sequences (default: the preset's)")
    p.add_argument("--test-sequences", type=int, default=None,
                   help="test sequences (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4, help="encoder learning rate (Adam)")
    p.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                   help="learning-rate schedule (cosine: decay to 1%% over the run)")
    p.add_argument("--width", type=int, default=128, help="hidden width of the MLP encoder")
    p.add_argument("--latent-dim", type=int, default=2, help="L")
    p.add_argument("--state-dim", type=int, default=2, help="S (>= L)")
    p.add_argument("--obs-noise-init", type=float, default=0.1,
                   help="initial observation-noise variance of the Kalman cell")
    p.add_argument("--process-noise-init", type=float, default=0.01)
    p.add_argument("--mult-dynamics", type=float, default=DEFAULT_LR_MULTIPLIERS["dynamics"])
    p.add_argument("--mult-noise-network", type=float,
                   default=DEFAULT_LR_MULTIPLIERS["noise_network"])
    p.add_argument("--mult-observation-noise", type=float,
                   default=DEFAULT_LR_MULTIPLIERS["observation_noise"])
    p.add_argument("--observation-matrix", choices=["fixed", "learned"], default="fixed",
                   help="D = [I 0] fixed, or learned (initialised to [I 0])")
    p.add_argument("--clamp-radius", type=float, default=1.02)
    p.add_argument("--entropy", choices=["none", "knn"], default="none",
                   help="none: stop-gradient targets; knn: explicit k-NN entropy")
    p.add_argument("--knn-k", type=int, default=3)
    p.add_argument("--heteroscedastic", action="store_true",
                   help="observation_noise='input' with a per-frame noise encoder")
    p.add_argument("--data-obs-noise", type=float, default=None,
                   help="override the preset's observation noise (pixel std)")
    p.add_argument("--data-jump-rate", type=float, default=None,
                   help="override the preset's jump rate (circular)")
    p.add_argument("--burn-in", type=int, default=5,
                   help="steps skipped for the burn-in coverage figure")
    p.add_argument("--readout-sequences", type=int, default=800,
                   help="training sequences used to fit the affine read-out")
    p.add_argument("--drop-frames", type=float, default=0.0,
                   help="fraction of frames missing at random (train and test; the first "
                        "frame of every sequence is kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON file for the metrics")
    p.add_argument("--figure", default=None, help="PNG of the decoded test trajectory")
    p.add_argument("--verbose", type=int, default=2, help="Keras fit verbosity")
    return p.parse_args(argv)


def true_rotation(trajectory):
    """Angle per frame of the preset's motion around the origin (circular/square)."""
    kwargs = dot_motion.PRESETS[trajectory][0]
    if kwargs["trajectory"] in ("circular", "square"):
        return dot_motion.angular_step(kwargs["dt"], kwargs["period"])
    return None


def load_data(args):
    overrides = {}
    if args.data_obs_noise is not None:
        overrides["obs_noise"] = args.data_obs_noise
    if args.data_jump_rate is not None:
        overrides["jump_rate"] = args.data_jump_rate
    train = dot_motion.load(args.trajectory, "train", num_sequences=args.sequences, **overrides)
    test = dot_motion.load(args.trajectory, "test", num_sequences=args.test_sequences,
                           **overrides)
    return train, test


def cell_kwargs(args, seed):
    return dict(
        state_dim=args.state_dim,
        observation_dim=args.latent_dim,
        observation_matrix=args.observation_matrix,
        observation_noise="input" if args.heteroscedastic else "learned",
        observation_noise_init=args.obs_noise_init,
        process_noise_init=args.process_noise_init,
        stop_gradient_targets=args.entropy == "none",
        seed=seed,
    )


def build_model(args, frame_dim, steps_per_epoch):
    encoder = mlp(frame_dim, [args.width], args.latent_dim, batch_norm=False, name="encoder")
    noise_encoder = None
    if args.heteroscedastic:
        noise_encoder = mlp(frame_dim, [args.width // 2], args.latent_dim, batch_norm=False,
                            name="noise_encoder")
    kf = KalmanFilter(KalmanCell(**cell_kwargs(args, args.seed)), return_covariances=False)
    entropy = KNNEntropy(k=args.knn_k) if args.entropy == "knn" else None
    multipliers = {"dynamics": args.mult_dynamics, "noise_network": args.mult_noise_network,
                   "observation_noise": args.mult_observation_noise}
    model = PredictiveLDM(encoder, kf, entropy=entropy, noise_encoder=noise_encoder,
                          clamp_radius=args.clamp_radius, lr_multipliers=multipliers)
    lr = args.lr
    if args.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            args.lr, decay_steps=max(1, args.epochs * steps_per_epoch), alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(lr))
    return model


def drop_mask(shape, fraction, seed):
    """``(N, T)`` boolean mask, True = observed; each frame missing with probability
    ``fraction`` (independently), the first frame of every sequence kept."""
    rng = np.random.default_rng(10_000 + seed)
    mask = rng.uniform(size=shape) >= fraction
    mask[:, 0] = True
    return mask


def filter_outputs(model, args, frames, batch_size=256, mask=None):
    """Latents and the filter's predictions with covariances, in NumPy, for ``frames``
    (and, with a ``mask``, the smoothed means and covariances).

    The training filter skips the covariances; an evaluation copy of the cell (same
    config and weights, ``return_covariances=True``) gives ``S_t``.
    """
    kf = model.predictor
    eval_kf = KalmanFilter(KalmanCell.from_config(kf.cell.get_config()), return_covariances=True)
    width = kf.cell.input_dim
    eval_kf.build((None, frames.shape[1], width))
    eval_kf.set_weights(kf.get_weights())
    outs = {"latents": [], "prediction": [], "prediction_cov": []}
    if mask is not None:
        outs.update({"smoothed_mean": [], "smoothed_cov": []})
    for i in range(0, len(frames), batch_size):
        x = frames[i:i + batch_size]
        z = model.encode(x)
        inputs = z
        if model.noise_encoder is not None:
            log_var = model._per_frame(model.noise_encoder, x, False)
            inputs = keras.ops.concatenate([z, keras.ops.cast(log_var, z.dtype)], axis=-1)
        if mask is None:
            out = eval_kf(inputs)
        else:
            out = eval_kf.smooth(inputs, mask=mask[i:i + batch_size])
            for key in ("smoothed_mean", "smoothed_cov"):
                outs[key].append(keras.ops.convert_to_numpy(out[key]))
        outs["latents"].append(keras.ops.convert_to_numpy(z))
        outs["prediction"].append(keras.ops.convert_to_numpy(out["prediction"]))
        outs["prediction_cov"].append(keras.ops.convert_to_numpy(out["prediction_cov"]))
    return {k: np.concatenate(v).astype("float64") for k, v in outs.items()}


def r2_score(y, pred):
    ss_res = np.sum((y - pred) ** 2, axis=0)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    return float(np.mean(1.0 - ss_res / ss_tot))


def evaluate(model, args, train, test, train_mask=None, test_mask=None):
    n_read = min(args.readout_sequences, len(train.frames))
    z_train = keras.ops.convert_to_numpy(model.encode(train.frames[:n_read])).astype("float64")
    ev = filter_outputs(model, args, test.frames, mask=test_mask)
    z_test = ev["latents"]
    latent_dim = z_test.shape[-1]
    observed = (np.ones(z_test.shape[:2], bool) if test_mask is None else test_mask)
    read = (np.ones(z_train.shape[:2], bool) if train_mask is None else train_mask[:n_read])
    w, c = fit_affine_readout(z_train[read], train.positions[:n_read][read])
    flat = test.positions[observed]
    r2 = affine_r2(z_train[read], train.positions[:n_read][read], z_test[observed],
                   test.positions[observed])
    a = keras.ops.convert_to_numpy(model.predictor.transition_matrix)
    angles = eigen_angles(a)
    true_rot = true_rotation(args.trajectory)
    cov_all = interval_coverage(z_test[observed], ev["prediction"][observed],
                                ev["prediction_cov"][observed], level=0.95)
    b = args.burn_in
    late = observed.copy()
    late[:, :b] = False
    cov_burn = interval_coverage(z_test[late], ev["prediction"][late],
                                 ev["prediction_cov"][late], level=0.95)
    err = (z_test - ev["prediction"])[observed][..., None]
    white = np.linalg.solve(np.linalg.cholesky(ev["prediction_cov"][observed]), err)[..., 0]
    maha = np.sum(white ** 2, axis=-1)  # E = L under calibrated predictions
    extra = {}
    if test_mask is not None:
        d = keras.ops.convert_to_numpy(model.predictor.cell.observation_matrix_value())
        smoothed = ev["smoothed_mean"] @ d.T          # the latent D hˢ_t
        missing = ~test_mask
        extra = {
            "observed_fraction_test": float(test_mask.mean()),
            "r2_smoothed_missing": r2_score(test.positions[missing],
                                            smoothed[missing] @ w + c),
            "r2_smoothed_observed": r2_score(test.positions[observed],
                                             smoothed[observed] @ w + c),
        }
    metrics = {
        "r2": r2,
        "r2_per_axis": [r2_score(flat[:, j:j + 1], (z_test[observed] @ w + c)[:, j:j + 1])
                        for j in range(2)],
        "rotation": float(abs(angles[0])),
        "rotation_all_angles": [float(x) for x in angles],
        "true_rotation": true_rot,
        "rotation_rel_error": (None if true_rot is None
                               else float(abs(abs(angles[0]) - true_rot) / true_rot)),
        "spectral_radius": float(np.max(np.abs(np.linalg.eigvals(a)))),
        "coverage95_marginal": cov_all["marginal_mean"],
        "coverage95_ellipsoid": cov_all["ellipsoid"],
        f"coverage95_marginal_after_{b}": cov_burn["marginal_mean"],
        f"coverage95_ellipsoid_after_{b}": cov_burn["ellipsoid"],
        "mean_mahalanobis_sq": float(maha.mean()),
        "median_mahalanobis_sq": float(np.median(maha)),
        "latent_dim": int(latent_dim),
        # Scale of the latents vs the filter's noise (S_t has a 1e-6 jitter floor).
        "latent_std": [float(x) for x in z_test.reshape(-1, latent_dim).std(axis=0)],
        "mean_prediction_var": [float(x) for x in np.diagonal(
            ev["prediction_cov"], axis1=-2, axis2=-1).reshape(-1, latent_dim).mean(axis=0)],
        **extra,
    }
    return metrics, {"w": w, "c": c, **ev}


def plot(path, test, ev, metrics, args, seq=0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w, c = ev["w"], ev["c"]
    pos = test.positions[seq]
    dec_z = ev["latents"][seq] @ w + c
    dec_pred = ev["prediction"][seq] @ w + c
    # Decoded predictive covariance W^T S_t W, per step.
    dec_cov = np.einsum("fi,tfg,gj->tij", w, ev["prediction_cov"][seq], w)
    sd = np.sqrt(np.diagonal(dec_cov, axis1=-2, axis2=-1))
    t = np.arange(len(pos))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    ax = axes[0]
    ax.plot(pos[:, 0], pos[:, 1], "k-", lw=2.5, alpha=0.35, label="true position")
    ax.plot(dec_z[:, 0], dec_z[:, 1], "o", ms=3, color="tab:blue",
            label="encoder latent z_t (affine-decoded)")
    ax.plot(dec_pred[1:, 0], dec_pred[1:, 1], "x", ms=4, color="tab:red",
            label="Kalman prediction ẑ_t (decoded)")
    ax.set_xlabel("x (world units)")
    ax.set_ylabel("y (world units)")
    ax.set_aspect("equal")
    ax.set_title(f"test sequence {seq}: decoded latents, R² = {metrics['r2']:.3f}")
    ax.legend(loc="center", fontsize=7)
    for j, name in enumerate(("x", "y")):
        ax = axes[1 + j]
        ax.fill_between(t[1:], dec_pred[1:, j] - 1.96 * sd[1:, j],
                        dec_pred[1:, j] + 1.96 * sd[1:, j], color="tab:red", alpha=0.2,
                        label="95 % predictive band (W^T S_t W)")
        ax.plot(t[1:], dec_pred[1:, j], "-", color="tab:red", lw=1, label="prediction ẑ_t")
        ax.plot(t, dec_z[:, j], ".", color="tab:blue", ms=4, label="latent z_t")
        ax.plot(t, pos[:, j], "k-", lw=1.5, alpha=0.5, label="true position")
        ax.set_xlabel("time step t")
        ax.set_ylabel(f"{name} (world units, decoded)")
        ax.set_title(f"{name}(t), coverage (all steps, latent space) "
                     f"{metrics['coverage95_marginal']:.3f}")
        if j == 0:
            ax.legend(loc="upper right", fontsize=7)
    data = args.trajectory
    if args.data_obs_noise is not None:
        data += f", obs. noise {args.data_obs_noise}"
    if args.data_jump_rate is not None:
        data += f", jump rate {args.data_jump_rate}"
    fig.suptitle(f"DotMotion {data}: KalmanSSL (PredictiveLDM), "
                 f"{keras.backend.backend()}, learned rotation {metrics['rotation']:.4f} rad/step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    t0 = time.time()
    train, test = load_data(args)
    print(f"[data] {args.trajectory}: train {train.frames.shape}, test {test.frames.shape} "
          f"({time.time() - t0:.1f} s)", flush=True)
    steps = math.ceil(len(train.frames) / args.batch_size)
    model = build_model(args, train.frames.shape[-1], steps)
    train_mask = test_mask = None
    data = train.frames
    if args.drop_frames > 0:
        train_mask = drop_mask(train.frames.shape[:2], args.drop_frames, 2 * args.seed)
        test_mask = drop_mask(test.frames.shape[:2], args.drop_frames, 2 * args.seed + 1)
        data = {"frames": train.frames, "mask": train_mask}
    wall0, cpu0 = time.time(), time.process_time()
    history = model.fit(data, epochs=args.epochs, batch_size=args.batch_size,
                        shuffle=True, verbose=args.verbose)
    wall, cpu = time.time() - wall0, time.process_time() - cpu0
    print(f"[train] {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    metrics, ev = evaluate(model, args, train, test, train_mask, test_mask)
    losses = [float(x) for x in history.history["loss"]]
    result = {
        "trajectory": args.trajectory,
        "backend": keras.backend.backend(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "figure", "verbose")},
        "num_train_sequences": int(len(train.frames)),
        "num_test_sequences": int(len(test.frames)),
        "train_wall_seconds": wall,
        "train_cpu_seconds": cpu,
        "loss_first_last": [losses[0], losses[-1]],
        "loss_finite": bool(all(math.isfinite(x) for x in losses)),
        **metrics,
        "reference_r2": REFERENCE_R2.get(args.trajectory),
        "target_r2": TARGET_R2.get(args.trajectory),
        "command": "KERAS_BACKEND=" + keras.backend.backend() + " python "
                   + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"load average {os.getloadavg()[0]:.1f} at end",
    }
    print(json.dumps({k: v for k, v in result.items() if k != "settings"}, indent=1), flush=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    if args.figure:
        plot(args.figure, test, ev, metrics, args)
    return result


if __name__ == "__main__":
    main()
