"""Training throughput of ``model.fit`` and the overhead of our ``train_step``.

* ``train/simclr_digits``: the default digits recipe of ``ldm-keras train`` (recipe
  ``simclr`` with κ = γ = 10, ``conv_encoder(dim=64)``, ``image_views("digits")``,
  Adam 2e-3, batch 256) on the 1257 training digits.
* ``train/kalman_dotmotion``: KalmanSSL on DotMotion ``circular`` (as in
  ``benchmarks/dotmotion_kalman.py``: MLP encoder 100 → 128 → 2, ``KalmanFilter`` with
  S = L = 2, no covariances, lr multipliers and spectral-radius clamping; Adam 1e-4,
  batch 32) on 256 training sequences of 100 frames.
* ``train/hand_loop_simclr`` (JAX only): the same digits model and loss trained by a
  hand-written loop: ``jax.jit`` of ``jax.value_and_grad`` of ``compute_ldm_loss`` run in
  a ``keras.StatelessScope``, and Adam written out in ``jax.numpy`` (Keras' formula, no
  optax), same batches (shuffled, last partial batch kept), buffers donated. The ratio
  fit time / hand-loop time is the overhead of our ``train_step`` and of ``fit``'s
  machinery (data adapter, callbacks, metric trackers, grouped optimizer).

Each run does one untimed epoch (compilation), then ``epochs`` timed epochs; the time
of every epoch is one repeat. Throughput = samples (digits, or sequences) per second.
"""

import math
import time

import numpy as np

DIGITS = {"recipe": "simclr", "batch": 256, "lr": 2e-3, "settings": {
    "precision": 10.0, "entropy_precision": 10.0}}


def cases(grid, backend):
    out = [{"id": "train/simclr_digits", "section": "train"},
           {"id": "train/kalman_dotmotion", "section": "train"}]
    if backend == "jax":
        out.append({"id": "train/hand_loop_simclr", "section": "train"})
    return out


class _EpochTimer:
    def __init__(self):
        import keras

        outer = self

        class CB(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.times.append(time.perf_counter() - outer.t0)

        self.times = []
        self.callback = CB()


def digits_model(quick):
    import keras

    from ldm_keras import recipes
    from ldm_keras.augment import image_views
    from ldm_keras.data import digits
    from ldm_keras.models.encoders import conv_encoder

    keras.utils.set_random_seed(0)
    (x, _), _ = digits.load_digits(test_size=0.3, seed=0)
    batch = DIGITS["batch"]
    if quick:
        x, batch = x[:64], 32
    encoder = conv_encoder(tuple(x.shape[1:]), dim=64)
    model = recipes.build(DIGITS["recipe"], encoder, views=image_views("digits", seed=0),
                          **DIGITS["settings"])
    return model, x.astype("float32"), batch


def kalman_model(quick):
    import keras

    from ldm_keras.data import dot_motion
    from ldm_keras.models.encoders import mlp
    from ldm_keras.models.predictive import PredictiveLDM
    from ldm_keras.predictors import KalmanCell, KalmanFilter

    keras.utils.set_random_seed(0)
    n = 8 if quick else 256
    data = dot_motion.load("circular", "train", num_sequences=n)
    x = data.frames.astype("float32")
    if quick:
        x = x[:, :10]
    encoder = mlp(x.shape[-1], [128], 2, batch_norm=False, name="encoder")
    kf = KalmanFilter(KalmanCell(state_dim=2, observation_dim=2, seed=0),
                      return_covariances=False)
    model = PredictiveLDM(encoder, kf, clamp_radius=1.02)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    return model, x, (4 if quick else 32)


def run_fit(case, quick, epochs):
    import keras

    from ldm_keras import recipes

    if case["id"] == "train/simclr_digits":
        model, x, batch = digits_model(quick)
        model.compile(optimizer=recipes.default_optimizer("simclr", DIGITS["lr"]))
    else:
        model, x, batch = kalman_model(quick)
    timer = _EpochTimer()
    model.fit(x, epochs=1 + epochs, batch_size=batch, shuffle=True, verbose=0,
              callbacks=[timer.callback])
    from .measure import summarize

    epoch_times = summarize(timer.times[1:])
    return {"ours": {"time": epoch_times}, "samples_per_epoch": int(len(x)),
            "batch_size": batch, "samples_per_second": len(x) / epoch_times["median"],
            "jit_compile": getattr(model, "jit_compile", None),
            "backend": keras.backend.backend()}


def run_hand_loop(quick, epochs, rounds=4):
    """The digits model trained by ``model.fit`` and by a minimal ``jax.jit`` loop with
    Adam by hand, alternately: ``rounds`` × (``epochs`` fit epochs, ``epochs`` hand epochs)."""
    import jax
    import jax.numpy as jnp
    import keras

    from ldm_keras import recipes

    from .measure import summarize

    fit_model, x, batch = digits_model(quick)
    fit_model.compile(optimizer=recipes.default_optimizer("simclr", DIGITS["lr"]))
    timer = _EpochTimer()

    model, x, batch = digits_model(quick)
    model.build(tuple((None,) + x.shape[1:]))
    tv_vars, nt_vars = model.trainable_variables, model.non_trainable_variables
    lr, b1, b2, eps = DIGITS["lr"], 0.9, 0.999, 1e-7   # keras.optimizers.Adam defaults

    def loss_fn(tv, ntv, xb):
        mapping = list(zip(tv_vars + nt_vars, list(tv) + list(ntv)))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = model.compute_ldm_loss(xb, training=True)
        new_ntv = []
        for var, old in zip(nt_vars, ntv):
            value = scope.get_current_value(var)
            new_ntv.append(old if value is None else value)
        return logs["loss"], new_ntv

    def step(tv, ntv, m, v, t, xb):
        (loss, ntv), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv, ntv, xb)
        t = t + 1.0
        alpha = lr * jnp.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        m = [mi + (g - mi) * (1.0 - b1) for mi, g in zip(m, grads)]
        v = [vi + (g * g - vi) * (1.0 - b2) for vi, g in zip(v, grads)]
        tv = [w - alpha * mi / (jnp.sqrt(vi) + eps) for w, mi, vi in zip(tv, m, v)]
        return tv, ntv, m, v, t, loss

    step = jax.jit(step, donate_argnums=(0, 1, 2, 3))
    state = {"tv": [jnp.array(w.value) for w in tv_vars],
             "ntv": [jnp.array(w.value) for w in nt_vars]}
    state["m"] = [jnp.zeros_like(w) for w in state["tv"]]
    state["v"] = [jnp.zeros_like(w) for w in state["tv"]]
    state["t"] = jnp.zeros((), "float32")
    rng = np.random.default_rng(0)
    hand_times, losses = [], []

    def hand_epochs(n):
        for _ in range(n):
            t0 = time.perf_counter()
            order = rng.permutation(len(x))
            tv, ntv, m, v, t = (state[k] for k in ("tv", "ntv", "m", "v", "t"))
            for i in range(0, len(x), batch):
                tv, ntv, m, v, t, loss = step(tv, ntv, m, v, t, x[order[i:i + batch]])
            loss = float(loss)  # wait for the last step
            hand_times.append(time.perf_counter() - t0)
            losses.append(loss)
            state.update(tv=tv, ntv=ntv, m=m, v=v, t=t)

    def fit_epochs(n):
        fit_model.fit(x, epochs=n, batch_size=batch, shuffle=True, verbose=0,
                      callbacks=[timer.callback])

    fit_epochs(1)                       # compilation (both batch shapes)
    hand_epochs(1)
    del timer.times[:], hand_times[:]
    for _ in range(1 if quick else rounds):
        fit_epochs(epochs)
        hand_epochs(epochs)
    return {"ours": {"time": summarize(hand_times)}, "fit": {"time": summarize(timer.times)},
            "samples_per_epoch": int(len(x)), "batch_size": batch,
            "samples_per_second": len(x) / summarize(hand_times)["median"],
            "final_loss": losses[-1], "loss_finite": all(math.isfinite(v) for v in losses),
            "alternation": f"{1 if quick else rounds} rounds of {epochs} fit epochs then "
                           f"{epochs} hand-loop epochs"}


def run(case, quick, epochs):
    if case["id"] == "train/hand_loop_simclr":
        return run_hand_loop(quick, epochs)
    return run_fit(case, quick, epochs)
