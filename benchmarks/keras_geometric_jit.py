"""Keras' RandomRotation (supports_jit=False) vs ldm_keras' RandomAffine in a SimCLR step.

Keras turns jit off for a whole model when one of its layers says ``supports_jit =
False``, as Keras' geometric preprocessing layers do. This measures what that costs a
digits SimCLR training step on the active backend: seconds per step (the fastest of three
epochs of two steps, after one compiling epoch), and whether the model was jit-compiled.
Cited by docs/dependencies.md and RESULTS.md ("Implementation choices").

    KERAS_BACKEND=jax python benchmarks/keras_geometric_jit.py
"""

import time

import keras
import numpy as np

import ldm_keras as ldm
from ldm_keras.models.encoders import conv_encoder

OPS = {
    "keras RandomRotation": lambda: keras.layers.RandomRotation(15 / 360, seed=1),
    "ldm_keras RandomAffine": lambda: ldm.augment.RandomAffine(rotation=15.0, translation=0.0,
                                                               seed=1),
}


def main():
    x = np.random.default_rng(0).random((512, 8, 8, 1)).astype("float32")
    for name, op in OPS.items():
        keras.utils.set_random_seed(0)
        views = ldm.augment.ViewPipeline([op()])
        model = ldm.recipes.build("simclr", conv_encoder((8, 8, 1), dim=64), views=views)
        model.compile(keras.optimizers.Adam(1e-3))
        model.fit(x, epochs=1, batch_size=256, verbose=0)  # compiles
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            model.fit(x, epochs=1, batch_size=256, verbose=0)
            times.append((time.perf_counter() - t0) / 2)
        print(f"{name}: {min(times):.3f} s per step, model.jit_compile={model.jit_compile}")


if __name__ == "__main__":
    main()
