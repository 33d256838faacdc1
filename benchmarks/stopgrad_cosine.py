"""The stop-gradient diagnostic on DotMotion: cosines before and after training.

    KERAS_BACKEND=jax python benchmarks/stopgrad_cosine.py --sequences 800 --epochs 5

Trains KalmanSSL (stop-gradient) on circular DotMotion and prints
``gradient_cosines`` on a fixed batch of 16 held-out sequences at the end of each epoch
(``GradientCosineMonitor``): cos(g_sg − g_full, g_H) and cos(g_sg, g_full + g_H).
"""

import argparse
import json

import keras

import ldm_keras as ldm
from ldm_keras.data import dot_motion
from ldm_keras.models.diagnostics import GradientCosineMonitor
from ldm_keras.models.encoders import mlp
from ldm_keras.predictors import KalmanCell, KalmanFilter


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sequences", type=int, default=800)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    keras.utils.set_random_seed(args.seed)
    train = dot_motion.load("circular", "train", num_sequences=args.sequences)
    probe = dot_motion.load("circular", "test", num_sequences=16).frames
    model = ldm.models.PredictiveLDM(
        mlp(100, [128], 2, batch_norm=False),
        KalmanFilter(KalmanCell(state_dim=2, observation_dim=2, seed=args.seed),
                     return_covariances=False))
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.build(train.frames.shape)
    before = ldm.models.gradient_cosines(model, probe)
    monitor = GradientCosineMonitor(probe)
    model.fit(train.frames, epochs=args.epochs, batch_size=32, verbose=2, callbacks=[monitor])
    print(json.dumps({"backend": keras.backend.backend(), "before": before,
                      "epochs": monitor.history}, indent=1))


if __name__ == "__main__":
    main()
