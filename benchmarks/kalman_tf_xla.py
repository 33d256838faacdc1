"""TensorFlow: the Kalman training step with and without XLA (``jit_compile``), one process.

Keras resolves ``jit_compile="auto"`` to ``False`` on a CPU-only TensorFlow;
``PredictiveLDM`` picks XLA for a Kalman model with ``S ≤ PredictiveLDM.TF_XLA_MAX_STATE``
(docs/models.md, "XLA on TensorFlow"). This times the benchmark's training step
(``bench.cases_kalman.build_step_model``, ``train_on_batch``) compiled both ways: the
first call (tracing + compilation), then the median of 5 steps after one more warm-up.
With ``--parts`` it also times, under ``tf.function(jit_compile=True)``, the filter's
forward + backward alone (on random latents) and the encoder's alone, to show where a
step's time goes.

    KERAS_BACKEND=tensorflow python benchmarks/kalman_tf_xla.py
    KERAS_BACKEND=tensorflow python benchmarks/kalman_tf_xla.py --sizes 32x2x100 --parts
"""

import argparse
import os
import statistics
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench.cases_kalman import (  # noqa: E402
    FRAME_DIM,
    build_step_model,
    frames,
    tf_filter_value_and_grad,
)

#: (B, S, T) — the sizes of benchmarks/results/kalman/README.md, "XLA on TensorFlow".
SIZES = [(32, 2, 100), (32, 8, 100), (128, 2, 100), (128, 8, 100), (32, 16, 100),
         (32, 32, 100), (128, 64, 100), (128, 8, 1000), (32, 16, 1000), (32, 32, 1000),
         (32, 8, 3000)]


def median_ms(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def step_times(b, s, t, jit):
    model = build_step_model(s, t)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit)
    x = frames({"B": b, "T": t, "S": s})

    def step():
        return float(model.train_on_batch(x, return_dict=True)["loss"])

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    return first, median_ms(step), model


def parts(model, b, s, t):
    """Filter forward + backward, encoder forward + backward, under XLA (ms)."""
    import tensorflow as tf

    enc, kf = model.encoder, model.predictor
    z = tf.constant(np.random.default_rng(0).standard_normal((b, t, s)).astype("float32"))
    x = tf.constant(frames({"B": b, "T": t, "S": s}))

    filter_grad = tf_filter_value_and_grad(kf)

    @tf.function(jit_compile=True)
    def encoder_grad(x_):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(enc(tf.reshape(x_, (-1, FRAME_DIM))) ** 2)
        return loss, tape.gradient(loss, enc.trainable_variables)

    return (median_ms(lambda: filter_grad(z)[0].numpy()),
            median_ms(lambda: encoder_grad(x)[0].numpy()))


def main():
    if keras.backend.backend() != "tensorflow":
        raise SystemExit("run with KERAS_BACKEND=tensorflow")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", default=None, metavar="BxSxT")
    p.add_argument("--parts", action="store_true")
    args = p.parse_args()
    sizes = SIZES if args.sizes is None else [tuple(map(int, v.split("x")))
                                              for v in args.sizes]
    print("| B | S | T | plain graph | XLA | first call plain / XLA |")
    print("|---|---|---|---|---|---|")
    for b, s, t in sizes:
        first_plain, plain, _ = step_times(b, s, t, False)
        first_xla, xla, model = step_times(b, s, t, True)
        print(f"| {b} | {s} | {t} | {plain:.1f} ms | {xla:.1f} ms | "
              f"{first_plain:.1f} s / {first_xla:.1f} s |", flush=True)
        if args.parts:
            f_ms, e_ms = parts(model, b, s, t)
            print(f"  parts (XLA): filter forward + backward {f_ms:.1f} ms, encoder "
                  f"forward + backward {e_ms:.1f} ms, whole step {xla:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
