# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Using the model zoo
#
# **What this shows.** `ldm_keras.zoo` ships trained LDM encoders with their recipe,
# seed, metrics and SHA-256 hashes. This notebook
#
# 1. lists the entries and reads an entry's description (`zoo.list`, `zoo.info`), from
#    Python and from the command line (`ldm-keras zoo list|info|verify`);
# 2. loads a published encoder (`zoo.load`: hashes checked first, then a `safe_mode`
#    reload — on whatever backend you run) and checks it against the outputs stored when
#    it was built (`zoo.verify`);
# 3. re-measures the published linear-probe accuracy from the weights and the data, and
#    compares two entries (SimCLR vs VICReg-as-exact-LDM) on the same test images;
# 4. uses a frozen zoo encoder inside your own Keras classifier, trained with `fit` on
#    10 labels per class;
# 5. loads a whole sequence model (`zoo.load_model`): the KalmanSSL filter of
#    `dotmotion-circular-noisy-kalman`, and re-measures its position R².
#
# **Numbers.** Printed as `RESULT` lines; in full mode the re-measured probe accuracies
# equal the published ones (`digits-simclr` 0.947, `digits-vicreg-ldm` 0.960, 10 labels
# per class; the Kalman entry's R² 0.943). Full mode on JAX printed exactly these, and
# 0.931 test accuracy for the frozen zoo encoder + softmax trained on 10 labels per class
# against 0.381 for the same CNN trained from scratch on those 100 images.
# `LDM_KERAS_FAST=1` uses a subset of the data (a smoke test).

# %%
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")  # "tensorflow", "jax" or "torch"
if os.environ["KERAS_BACKEND"] == "torch":
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

import ldm_keras as ldm  # noqa: E402

FAST = os.environ.get("LDM_KERAS_FAST", "0") == "1"
HERE = os.path.dirname(os.path.abspath(globals().get("__file__", "06_using_the_zoo.py")))
OUT = os.environ.get("LDM_KERAS_TUTORIAL_OUT") or (
    os.path.join(tempfile.gettempdir(), "ldm_keras_tutorials") if FAST
    else os.path.join(HERE, "figures"))
os.makedirs(OUT, exist_ok=True)
print("backend:", keras.backend.backend(), "| fast mode:", FAST, "| figures to:", OUT)
keras.utils.set_random_seed(0)

# %% [markdown]
# ## What is in the zoo
#
# `zoo.list()` gives the entry names; `zoo.info(name)` the index record (version, files
# with sizes and hashes), the build settings and the published metrics. It reads no
# weights. Some entries are recipes without weights (e.g. CIFAR-10, which needs a
# download and a GPU to train): `has_weights` is then False.

# %%
for name in ldm.zoo.list():
    i = ldm.zoo.info(name)
    print(f"{name:<26} v{i['version']:<7} weights={i['has_weights']!s:<5} {i['summary'][:70]}")
entries = [n for n in ["digits-simclr", "digits-vicreg-ldm"] if n in ldm.zoo.list()]
info = {n: ldm.zoo.info(n) for n in entries}
cfg = info["digits-simclr"]["config"]
print("digits-simclr: recipe", cfg["recipe"], cfg["settings"], "| training", cfg["training"],
      "| published metrics", {k: round(v, 4) for k, v in info["digits-simclr"]["metrics"].items()
                              if isinstance(v, float)})

# %% [markdown]
# The same from a shell (`ldm-keras` is installed with the package; here we call it
# through the current Python so that it runs in this environment):
#
# ```bash
# ldm-keras zoo list
# ldm-keras zoo info digits-simclr
# ldm-keras zoo verify digits-simclr          # add --eval to recompute the metric
# ```

# %%
cli = [sys.executable, "-m", "ldm_keras.cli", "zoo"]
print(subprocess.run(cli + ["list"], capture_output=True, text=True, check=True).stdout)

# %% [markdown]
# ## Load and verify
#
# `zoo.load(name)` checks every file of the entry against the index (size, SHA-256),
# rebuilds the encoder from its Keras config under `safe_mode=True` and loads the
# weights; the encoder is frozen (`trainable=False`) unless you ask otherwise.
# `zoo.verify(name)` also runs the stored reference images through it and compares with
# the outputs saved when the entry was built — on any backend, since the weights are
# backend-independent.

# %%
encoders = {n: ldm.zoo.load(n) for n in entries}
enc = encoders["digits-simclr"]
print(enc.name, "input", enc.input_shape, "output", enc.output_shape,
      "trainable:", enc.trainable)
report = ldm.zoo.verify("digits-simclr")
print(f"RESULT zoo_verify_ok = {report['reference']['ok']}")
print(f"RESULT zoo_reference_max_abs_diff = {report['reference']['max_abs_diff']:.2e}")

# %% [markdown]
# ## Re-measure the published numbers
#
# The digits entries were trained on the 70 % training split of the scikit-learn digits
# (`load_digits()`, seed 0). We embed both splits and run the same linear probe as at
# build time (logistic regression on standardised features, 10 labels per class, 5
# draws).

# %%
(x_train, y_train), (x_test, y_test) = ldm.data.digits.load_digits()
if FAST:
    x_train, y_train, x_test, y_test = x_train[:400], y_train[:400], x_test[:200], y_test[:200]
measured, published, z_test = {}, {}, {}
for n, e in encoders.items():
    z_tr = np.asarray(e.predict(x_train, batch_size=512, verbose=0))
    z_test[n] = np.asarray(e.predict(x_test, batch_size=512, verbose=0))
    measured[n] = ldm.evaluation.evaluate_embeddings(z_tr, y_train, z_test[n], y_test)
    published[n] = info[n]["metrics"]
    key = n.replace("-", "_")
    print(f"RESULT {key}_probe_10 = {measured[n]['probe_10']:.3f} "
          f"(published {published[n]['probe_10']:.3f})")
    print(f"  {n}: probe_full {measured[n]['probe_full']:.3f} "
          f"(published {published[n]['probe_full']:.3f}), k-NN {measured[n]['knn']:.3f}")

# %%
fig, axes = plt.subplots(1, len(entries) + 1, figsize=(5 * len(entries) + 4.5, 4.2))
for ax, n in zip(axes, entries):
    p = PCA(2).fit_transform(z_test[n])
    sc = ax.scatter(p[:, 0], p[:, 1], c=y_test, cmap="tab10", s=6, vmin=-0.5, vmax=9.5)
    ax.set_title(f"zoo '{n}': test embeddings (PCA)", fontsize=10)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
fig.colorbar(sc, ax=axes[:-1], ticks=range(10), label="digit (true label)")
ax = axes[-1]
pos = np.arange(len(entries))
width = 0.38
ax.bar(pos - width / 2, [published[n]["probe_10"] for n in entries], width, color="0.6",
       label="published (zoo metrics.json)")
ax.bar(pos + width / 2, [measured[n]["probe_10"] for n in entries], width,
       color="tab:blue", label=f"measured now ({keras.backend.backend()})")
ax.set_xticks(pos, entries)
ax.set_ylim(0.8, 1.0)
ax.set_ylabel("probe accuracy, 10 labels / class")
ax.set_title("Published vs re-measured")
ax.legend(fontsize=8, loc="lower right")
fig.savefig(os.path.join(OUT, "06_zoo_embeddings.png"), dpi=110, bbox_inches="tight")

# %% [markdown]
# ## A zoo encoder inside your own model
#
# A zoo encoder is an ordinary Keras model: put it in front of a new head and train the
# head with `fit`. Here a frozen `digits-simclr` encoder plus a softmax layer is trained
# on only 10 labelled images per class; a same-sized CNN trained from scratch on the same
# 100 images is the comparison.

# %%
few = ldm.evaluation.sample_per_class(y_train, 10, seed=0)
x_few, y_few = x_train[few], y_train[few]


def classifier(body):
    inputs = keras.Input(x_train.shape[1:])
    outputs = keras.layers.Dense(10, activation="softmax")(body(inputs))
    m = keras.Model(inputs, outputs)
    m.compile(optimizer=keras.optimizers.Adam(1e-2 if body is enc else 2e-3),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


epochs = 20 if FAST else 200
keras.utils.set_random_seed(0)
frozen = classifier(enc)
frozen.fit(x_few, y_few, epochs=epochs, batch_size=100, verbose=0)
scratch = classifier(ldm.encoders.conv_encoder(x_train.shape[1:], dim=64))
scratch.fit(x_few, y_few, epochs=epochs, batch_size=100, verbose=0)
acc_frozen = frozen.evaluate(x_test, y_test, verbose=0)[1]
acc_scratch = scratch.evaluate(x_test, y_test, verbose=0)[1]
print(f"RESULT frozen_zoo_encoder_accuracy = {acc_frozen:.3f}")
print(f"RESULT from_scratch_accuracy = {acc_scratch:.3f}")

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.8))
bars = ax.bar(["frozen zoo encoder\n+ softmax", "same CNN\nfrom scratch"],
              [acc_frozen, acc_scratch], color=["tab:blue", "0.6"])
for b in bars:
    ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 0.01, f"{b.get_height():.3f}",
            ha="center", fontsize=9)
ax.set_ylim(0, 1.05)
ax.set_ylabel("test accuracy")
ax.set_title("Classifier trained on 10 labels per class (digits)")
fig.tight_layout()
fig.savefig(os.path.join(OUT, "06_few_labels.png"), dpi=110)

# %% [markdown]
# ## A whole sequence model
#
# `zoo.load_model(name)` returns the full LDM model. For the DotMotion entry that is a
# `PredictiveLDM` — an MLP frame encoder, a noise encoder that predicts each frame's
# observation noise, and a Kalman filter — ready for `predict` on videos. We score it as
# it was published: an affine read-out of the true dot position from the latents,
# fitted on 800 training videos and scored on the held-out test videos.

# %%
from ldm_keras.data import dot_motion  # noqa: E402

kalman = ldm.zoo.load_model("dotmotion-circular-noisy-kalman")
n_fit, n_test, length = (16, 8, 24) if FAST else (800, None, 100)
train_v = dot_motion.load("circular-noisy", "train", num_sequences=n_fit, length=length)
test_v = dot_motion.load("circular-noisy", "test", num_sequences=n_test, length=length)
z_fit = np.asarray(kalman.predict(train_v.frames, batch_size=64, verbose=0)["latents"])
out = kalman.predict(test_v.frames, batch_size=64, verbose=0)
r2 = ldm.evaluation.affine_r2(z_fit, train_v.positions, np.asarray(out["latents"]),
                              test_v.positions)
print(f"RESULT kalman_zoo_r2 = {r2:.3f} "
      f"(published {ldm.zoo.info('dotmotion-circular-noisy-kalman')['metrics']['r2']:.3f})")

# %%
w, c = ldm.evaluation.fit_affine_readout(z_fit, train_v.positions)
dec = np.asarray(out["latents"][0]) @ w + c
dec_pred = np.asarray(out["prediction"][0]) @ w + c
fig, ax = plt.subplots(figsize=(5, 5))
ax.plot(test_v.positions[0, :, 0], test_v.positions[0, :, 1], "k-", alpha=0.3, lw=2.5,
        label="true position")
ax.plot(dec[:, 0], dec[:, 1], ".", color="tab:blue", ms=4, label="latent z_t (decoded)")
ax.plot(dec_pred[1:, 0], dec_pred[1:, 1], "x", color="tab:red", ms=4,
        label="Kalman prediction ẑ_t (decoded)")
ax.set_aspect("equal")
ax.set_xlabel("x (world units)")
ax.set_ylabel("y (world units)")
ax.set_title(f"zoo 'dotmotion-circular-noisy-kalman'\ntest video 0, R² (all) = {r2:.3f}")
ax.legend(fontsize=8, loc="center")
fig.tight_layout()
fig.savefig(os.path.join(OUT, "06_zoo_kalman.png"), dpi=110)
plt.close("all")
