"""Short trainings of the default digits recipe, shared by the test files that need them.

``simclr_run(seed)`` trains ``simclr`` (κ = γ = 10, the digits settings of
``ldm_keras.training``; conv encoder, Adam 2e-3, batch 256) for ``EPOCHS`` epochs with an
:class:`~ldm_keras.callbacks.OnlineProbe` and a
:class:`~ldm_keras.callbacks.RepresentationMonitor` attached. Runs are cached per
process, so ``tests/test_callbacks.py`` and ``tests/test_consistency.py`` pay for each
seed once.
"""

import functools
import warnings

import keras
import numpy as np

import ldm_keras as ldm
from ldm_keras.augment import image_views
from ldm_keras.data.digits import load_digits
from ldm_keras.evaluation import sample_per_class
from ldm_keras.models.encoders import conv_encoder

EPOCHS = 10


@functools.cache
def digits():
    (x, y), (x_test, y_test) = load_digits()
    labelled = sample_per_class(y, 10, seed=0)          # 10 labels per class
    return {"x": x, "y": y, "x_test": x_test, "y_test": y_test,
            "x_lab": x[labelled], "y_lab": y[labelled]}


def simclr_model(seed):
    keras.utils.set_random_seed(seed)
    model = ldm.recipes.build("simclr", conv_encoder((8, 8, 1), dim=64),
                              views=image_views("digits", seed=seed),
                              precision=10.0, entropy_precision=10.0)
    model.compile(optimizer=ldm.recipes.default_optimizer("simclr", 2e-3))
    return model


@functools.cache
def simclr_run(seed):
    d = digits()
    model = simclr_model(seed)
    probe = ldm.callbacks.OnlineProbe(d["x_lab"], d["y_lab"], d["x_test"], d["y_test"],
                                      knn_k=5)
    monitor = ldm.callbacks.RepresentationMonitor(d["x"][:256])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ldm.callbacks.CollapseWarning)
        history = model.fit(d["x"], epochs=EPOCHS, batch_size=256, verbose=0,
                            callbacks=[probe, monitor])
    collapse_warnings = [w for w in caught
                         if issubclass(w.category, ldm.callbacks.CollapseWarning)]
    return {"model": model, "history": history.history, "probe": probe,
            "monitor": monitor, "collapse_warnings": collapse_warnings}


def latents(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model.embed(x)), "float64")
