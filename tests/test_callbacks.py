"""OnlineProbe, KNNMonitor and RepresentationMonitor during model.fit, on every backend."""

import warnings

import digits_runs
import keras
import numpy as np
import pytest

import ldm_keras as ldm
from ldm_keras.augment import image_views
from ldm_keras.callbacks import (
    CollapseWarning,
    KNNMonitor,
    OnlineProbe,
    RepresentationMonitor,
    fit_softmax_regression,
)
from ldm_keras.data import dot_motion
from ldm_keras.evaluation import knn_accuracy, linear_probe
from ldm_keras.models.encoders import conv_encoder, mlp

# -- the head --------------------------------------------------------------------------------


def test_softmax_regression_matches_scikit_learn(rng):
    from sklearn.linear_model import LogisticRegression

    x = rng.normal(size=(120, 6))
    y = rng.integers(0, 4, size=120)
    x += np.eye(4)[y] @ rng.normal(size=(4, 6))
    w, b, _ = fit_softmax_regression(x, y, 4, C=0.5, max_iter=1000, tol=1e-10)
    ref = LogisticRegression(C=0.5, max_iter=5000, tol=1e-12).fit(x, y)
    # the multinomial softmax is invariant to a common shift of the logits: compare
    # probabilities (and the L2 penalty makes the minimiser unique)
    p = np.exp(x @ w + b)
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, ref.predict_proba(x), atol=1e-5)
    np.testing.assert_allclose(w, ref.coef_.T, atol=1e-4)
    # a warm start from the solution stops at once
    _, _, iters = fit_softmax_regression(x, y, 4, C=0.5, tol=1e-6, init=(w, b))
    assert iters <= 2


# -- the online probe on the default digits recipe -------------------------------------------


def test_online_probe_matches_the_offline_probe_on_the_same_split():
    """Final probe_acc vs linear_probe (scikit-learn) on the same labelled split (10 per
    class of the training images) and validation split (the 540 test images). Measured
    after 10 epochs: online 0.924 / 0.928 / 0.924, offline 0.920 / 0.928 / 0.924
    (JAX / TensorFlow / PyTorch)."""
    run = digits_runs.simclr_run(0)
    d = digits_runs.digits()
    hist, probe = run["history"], run["probe"]
    assert len(hist["probe_acc"]) == digits_runs.EPOCHS
    assert len(hist["knn_acc"]) == digits_runs.EPOCHS
    assert all(np.isfinite(hist["probe_acc"])) and all(np.isfinite(hist["knn_acc"]))
    enc = run["model"].encoder
    z_lab = np.asarray(enc.predict(d["x_lab"], verbose=0))
    z_val = np.asarray(enc.predict(d["x_test"], verbose=0))
    offline, _ = linear_probe(z_lab, d["y_lab"], z_val, d["y_test"])
    online = hist["probe_acc"][-1]
    assert abs(online - offline) <= 0.02, (online, offline)
    assert offline > 0.8, offline   # the encoder learned something: the check has teeth
    knn = knn_accuracy(z_lab, d["y_lab"], z_val, d["y_test"], k=5)
    assert abs(hist["knn_acc"][-1] - knn) <= 0.02, (hist["knn_acc"][-1], knn)
    assert [r["epoch"] for r in probe.records] == list(range(digits_runs.EPOCHS))
    assert probe.records[-1]["iterations"] < probe.records[0]["iterations"] + 200


def test_online_probe_never_sees_the_validation_labels():
    run = digits_runs.simclr_run(0)
    d = digits_runs.digits()
    rng = np.random.default_rng(7)
    heads, accs = [], []
    for y_val in (d["y_test"], rng.permutation(d["y_test"]), np.zeros_like(d["y_test"])):
        probe = OnlineProbe(d["x_lab"], d["y_lab"], d["x_test"], y_val)
        values, _ = probe.evaluate(run["model"])
        heads.append((probe.coef_, probe.intercept_, probe.mean_, probe.scale_))
        accs.append(values["probe_acc"])
    for other in heads[1:]:
        for a, b in zip(heads[0], other):
            np.testing.assert_array_equal(a, b)
    # the validation labels do change the score (so they were used, for scoring only)
    assert accs[0] > accs[1] + 0.3 and accs[0] != accs[2]
    # and the validation *inputs* do not reach the fit either
    probe = OnlineProbe(d["x_lab"], d["y_lab"], d["x_test"][::-1], d["y_test"][::-1])
    probe.evaluate(run["model"])
    np.testing.assert_array_equal(probe.coef_, heads[0][0])


def test_probe_every_n_epochs_and_monitor_every_n_steps_in_the_logs(rng):
    """A small model on pairs of flattened digits: the logs line up with the epochs."""
    d = digits_runs.digits()
    flat = d["x"][:512].reshape(-1, 64)
    pairs = (flat, (flat + 0.05 * rng.normal(size=flat.shape)).astype("float32"))
    model = ldm.recipes.build("vicreg-ldm", mlp(64, [32], 16), projector=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x_lab, x_val = d["x_lab"].reshape(-1, 64), d["x_test"][:200].reshape(-1, 64)
    probe = OnlineProbe(x_lab, d["y_lab"], x_val, d["y_test"][:200], every=2, prefix="p_")
    knn = KNNMonitor(x_lab, d["y_lab"], x_val, d["y_test"][:200], k=3)
    monitor = RepresentationMonitor((pairs[0][:64], pairs[1][:64]), every=2)
    hist = model.fit(pairs, epochs=3, batch_size=128, verbose=0,
                     callbacks=[probe, knn, monitor]).history
    acc = np.asarray(hist["p_probe_acc"])
    assert np.isnan(acc[0]) and np.isfinite(acc[1]) and np.isfinite(acc[2])  # last epoch too
    assert "p_knn_acc" not in hist and len(hist["knn_acc"]) == 3
    assert [r["epoch"] for r in probe.records] == [1, 2]
    assert len(hist["rep_rank"]) == 3 and len(hist["rep_alignment"]) == 3
    step_records = [r for r in monitor.records if r["epoch"] is None]
    assert [r["step"] for r in step_records] == [2, 4, 6, 8, 10, 12]  # 4 steps per epoch


# -- the representation monitor ------------------------------------------------------------------


def test_monitor_does_not_flag_the_default_recipe():
    run = digits_runs.simclr_run(0)
    hist, monitor = run["history"], run["monitor"]
    assert run["collapse_warnings"] == []
    assert hist["collapsed"] == [0.0] * digits_runs.EPOCHS
    for key in ("rep_rank", "rep_std_min", "rep_std_mean", "rep_spread", "rep_shrink",
                "rep_alignment", "rep_uniformity"):
        assert len(hist[key]) == digits_runs.EPOCHS and np.all(np.isfinite(hist[key])), key
    last = monitor.records[-1]
    assert last["rep_spread"] > 0.1 and last["rep_rank"] > 5
    # the epoch-end value is the statistic of the model at that point
    again = monitor.measure(run["model"])
    for key in ("rep_rank", "rep_spread", "rep_alignment", "rep_uniformity"):
        np.testing.assert_allclose(again[key], hist[key][-1], rtol=1e-5, err_msg=key)


def _simsiam_without_predictor(epochs):
    d = digits_runs.digits()
    keras.utils.set_random_seed(0)
    model = ldm.recipes.build("simsiam", conv_encoder((8, 8, 1), dim=64),
                              views=image_views("digits", seed=0), predictor=None)
    model.compile(optimizer=ldm.recipes.default_optimizer("simsiam", 2e-3))
    monitor = RepresentationMonitor(d["x"][:256], alignment=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CollapseWarning)
        hist = model.fit(d["x"], epochs=epochs, batch_size=128, verbose=0,
                         callbacks=[monitor]).history
    return hist, [w for w in caught if issubclass(w.category, CollapseWarning)]


def test_monitor_flags_simsiam_without_its_predictor():
    """SimSiam's recipe (stop-gradient, Adam 2e-3) with ``predictor=None``, batch 128: the
    known collapse of a stop-gradient method without its predictor.

    Measured (PyTorch, seed 0): spread 0.133 after one epoch, below the 0.06 threshold
    from epoch 4, 0.027-0.034 from epoch 6 to 20. (This test used BYOL without its
    predictor until the EMA target normalised by batch statistics: that run now dips to
    0.064 at epoch 6 and recovers to 0.17 by epoch 20, no collapse.)"""
    hist, caught = _simsiam_without_predictor(epochs=12)
    assert hist["collapsed"][-1] == 1.0, hist["rep_spread"]
    assert hist["rep_spread"][-1] < 0.06
    assert len(caught) == 1 and "collapsed" in str(caught[0].message)


def _dotmotion():
    return dot_motion.generate("circular", num_sequences=64, length=12, seed=3)


def _recurrent(entropy_weight, epochs, callbacks):
    data = _dotmotion()
    keras.utils.set_random_seed(0)
    model = ldm.recipes.build("recurrent-ldm", mlp(100, [32], 8, batch_norm=False), units=8,
                              hidden_units=(), entropy_weight=entropy_weight)
    steps = epochs * 8
    model.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(3e-3, steps, alpha=0.0)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CollapseWarning)
        hist = model.fit(data.frames, epochs=epochs, batch_size=8, verbose=0,
                         callbacks=callbacks).history
    return hist, [w for w in caught if issubclass(w.category, CollapseWarning)]


def test_monitor_flags_the_no_entropy_predictive_model_and_not_the_default():
    """recurrent-ldm with entropy weight 0: a Gaussian latent model with a learned
    variance whose targets are differentiated; nothing keeps the latents apart, and they
    contract. Measured (64 sequences, batch 8, 25 epochs, cosine decay from 3e-3): final
    shrink 0.074 / 0.048 / 0.038 (JAX, seeds 0-2), 0.038 / 0.042 / 0.026 (TensorFlow),
    0.032 / 0.037 / 0.168 (PyTorch; seed 2 stalls before collapsing) against the
    threshold 0.1; with the default entropy weight 1 the raw spread grows to 1.7-2.9×
    its initial value within 6 epochs on every backend and seed."""
    frames = _dotmotion().frames
    monitor = RepresentationMonitor(frames[:32])
    hist, caught = _recurrent(0.0, 25, [monitor])
    assert hist["collapsed"][-1] == 1.0, hist["rep_shrink"]
    assert hist["rep_shrink"][-1] < 0.1 and len(caught) == 1
    assert "rep_alignment" in hist                       # consecutive frames
    healthy = RepresentationMonitor(frames[:32])
    positions = _dotmotion().positions
    quadrant = (positions[:, 0, 0] > 0).astype(int) + 2 * (positions[:, 0, 1] > 0)
    probe = OnlineProbe(frames[:48], quadrant[:48], frames[48:], quadrant[48:], knn_k=3)
    hist, caught = _recurrent(1.0, 6, [healthy, probe])
    assert hist["collapsed"] == [0.0] * 6 and caught == []
    assert min(hist["rep_shrink"]) > 0.5
    # the last epoch's probe and k-NN accuracies, recomputed from the trained model's
    # time-pooled latents: the head fitted on the 48 labelled sequences only (features
    # standardised with their statistics) scores the 16 held-out ones as logged, the
    # head agrees with scikit-learn's LogisticRegression (same objective), and the k-NN
    # accuracy is knn_accuracy's on the same features
    from sklearn.linear_model import LogisticRegression

    z = keras.ops.convert_to_numpy(probe.model.encode(frames)).mean(axis=1).astype("float64")
    z_lab, z_val, y_lab, y_val = z[:48], z[48:], quadrant[:48], quadrant[48:]
    np.testing.assert_allclose(probe.mean_, z_lab.mean(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(probe.scale_, z_lab.std(axis=0), rtol=1e-4)
    ours = probe.predict(z_val)
    assert hist["probe_acc"][-1] == pytest.approx(np.mean(ours == y_val), abs=1e-9)
    scaled = lambda a: (a - z_lab.mean(axis=0)) / z_lab.std(axis=0)  # noqa: E731
    sk = LogisticRegression(C=1.0, tol=1e-8, max_iter=5000).fit(scaled(z_lab), y_lab)
    assert np.mean(sk.predict(scaled(z_val)) == ours) >= 15 / 16, (sk.predict(scaled(z_val)),
                                                                   ours)
    assert hist["knn_acc"][-1] == pytest.approx(
        knn_accuracy(z_lab, y_lab, z_val, y_val, k=3), abs=1e-9)
    assert len(hist["knn_acc"]) == 6 and np.all(np.isfinite(hist["probe_acc"]))


@pytest.mark.parametrize("name, settings", [
    ("cpc", dict(context_units=8, prediction_steps=2)),
    ("jepa", dict(units=8, hidden_units=(8,))),
])
def test_callbacks_in_fit_of_the_other_sequence_models(name, settings):
    data = dot_motion.generate("circular", num_sequences=16, length=8, seed=3)
    labels = (data.positions[:, 0, 0] > 0).astype(int)
    keras.utils.set_random_seed(0)
    model = ldm.recipes.build(name, mlp(100, [16], 4, batch_norm=False), **settings)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    monitor = RepresentationMonitor(data.frames[:8], every=1)
    knn = KNNMonitor(data.frames[:8], labels[:8], data.frames[8:], labels[8:], k=3)
    hist = model.fit(data.frames, epochs=2, batch_size=8, verbose=0,
                     callbacks=[monitor, knn]).history
    for key in ("rep_rank", "rep_spread", "rep_alignment", "knn_acc", "collapsed"):
        assert len(hist[key]) == 2 and np.all(np.isfinite(hist[key])), key
    z = keras.ops.convert_to_numpy(model.encode(data.frames[:8])).reshape(-1, 4)
    np.testing.assert_allclose(hist["rep_rank"][-1], ldm.evaluation.effective_rank(z),
                               rtol=1e-5)
    assert len([r for r in monitor.records if r["epoch"] is None]) == 4   # every step


# -- features of every model kind; bad input ---------------------------------------------------


def test_features_of_each_model_kind(rng):
    frames = _dotmotion().frames[:6]
    labels = np.arange(6) % 2
    seq = ldm.models.PredictiveLDM(
        mlp(100, [8], 3, batch_norm=False),
        ldm.predictors.RecurrentPredictor(4, hidden_units=()))
    seq.build(frames.shape)
    z = keras.ops.convert_to_numpy(seq.encode(frames))                # (6, 12, 3)
    probe = OnlineProbe(frames, labels, frames, labels)
    zp, _ = probe._embed(seq, frames, labels)                          # pooled over time
    np.testing.assert_allclose(zp, z.mean(axis=1), rtol=1e-5, atol=1e-6)
    per_frame = np.tile(labels[:, None], (1, 12))
    zf, yf = OnlineProbe(frames, per_frame, frames, per_frame)._embed(seq, frames, per_frame)
    np.testing.assert_allclose(zf, z.reshape(-1, 3), rtol=1e-5, atol=1e-6)
    assert yf.shape == (72,)
    stats = RepresentationMonitor(frames).measure(seq)
    np.testing.assert_allclose(stats["rep_rank"],
                               ldm.evaluation.effective_rank(z.reshape(-1, 3)), rtol=1e-5)
    np.testing.assert_allclose(
        stats["rep_alignment"],
        ldm.evaluation.alignment(z[:, :-1].reshape(-1, 3), z[:, 1:].reshape(-1, 3)),
        rtol=1e-5)
    # a multi-view model fed pairs: alignment of the pair, latents = projector(encoder(x))
    x1 = rng.normal(size=(16, 6)).astype("float32")
    x2 = (x1 + 0.1 * rng.normal(size=x1.shape)).astype("float32")
    mv = ldm.recipes.build("vicreg-ldm", mlp(6, [8], 5), projector=(7, 4))
    mv.build(x1.shape)
    monitor = RepresentationMonitor((x1, x2))
    monitor.set_model(mv)
    monitor.on_train_begin()
    stats = monitor.measure(mv)
    e1, e2 = (keras.ops.convert_to_numpy(mv.embed(v)) for v in (x1, x2))
    np.testing.assert_allclose(stats["rep_alignment"], ldm.evaluation.alignment(e1, e2),
                               rtol=1e-5)
    rep = RepresentationMonitor(x1, space="representation").measure(mv)
    h = keras.ops.convert_to_numpy(mv.encoder(x1))
    np.testing.assert_allclose(rep["rep_rank"], ldm.evaluation.effective_rank(h), rtol=1e-5)
    assert "rep_alignment" not in rep                  # no views generator, no pair
    custom = RepresentationMonitor(x1, features=lambda m, x: np.asarray(x)[:, :3])
    np.testing.assert_allclose(custom.measure(mv)["rep_rank"],
                               ldm.evaluation.effective_rank(x1[:, :3]), rtol=1e-6)


def test_bad_arguments_are_clear_errors(rng):
    x = rng.normal(size=(10, 4)).astype("float32")
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="same number of samples"):
        OnlineProbe(x, y[:5], x, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        OnlineProbe(x, np.zeros(10, int), x, y)
    with pytest.raises(ValueError, match="every"):
        OnlineProbe(x, y, x, y, every=0)
    with pytest.raises(ValueError, match="knn_k"):
        OnlineProbe(x, y, x, y, knn_k=11)
    with pytest.raises(ValueError, match="integer"):
        OnlineProbe(x, y + 0.5, x, y)
    with pytest.raises(ValueError, match="space"):
        OnlineProbe(x, y, x, y, space="projector")
    with pytest.raises(ValueError, match="every"):
        RepresentationMonitor(x, every=0)
    with pytest.raises(ValueError, match="min_rank_fraction"):
        RepresentationMonitor(x, min_rank_fraction=2.0)
    with pytest.raises(ValueError, match="pair"):
        RepresentationMonitor((x, x, x))
    with pytest.raises(ValueError, match="at least 2 samples"):
        RepresentationMonitor(x[:1])
    with pytest.raises(ValueError, match="encoder"):
        OnlineProbe(x, y, x, y).evaluate(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="shape"):
        mv = ldm.recipes.build("vicreg-ldm", mlp(6, [8], 5), projector=None)
        RepresentationMonitor(x).measure(mv)
