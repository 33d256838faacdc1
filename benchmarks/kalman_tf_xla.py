"""TensorFlow: the Kalman training step with and without XLA (``jit_compile``), one process.

Keras resolves ``jit_compile="auto"`` to ``False`` on a CPU-only TensorFlow. This times
the benchmark's training step (``bench.cases_kalman.build_step_model``) compiled both
ways: the first call (tracing + compilation), then the mean of 5 steps after a warm-up.

    KERAS_BACKEND=tensorflow python benchmarks/kalman_tf_xla.py
"""

import os
import sys
import time

import keras

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench.cases_kalman import build_step_model, frames  # noqa: E402

SIZES = [(32, 100, 2), (128, 100, 8), (128, 1000, 8)]


def main():
    for b, t, s in SIZES:
        x = frames({"B": b, "T": t, "S": s})
        for jit in (True, False):
            model = build_step_model(s, t)
            model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit)
            start = time.perf_counter()
            model.train_on_batch(x)
            first = time.perf_counter() - start
            model.train_on_batch(x)
            start = time.perf_counter()
            for _ in range(5):
                model.train_on_batch(x)
            step = (time.perf_counter() - start) / 5
            print(f"B={b} T={t} S={s} jit_compile={jit}: first call {first:.1f} s, "
                  f"step {1e3 * step:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
