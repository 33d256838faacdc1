"""Behaviour that had no test (issue 20): each check compares with a hand count, a NumPy
reference or a control, so that the plausible bug turns it red.

* ``zoo verify`` without a name verifies every entry with weights (and only those), and
  exits 1 when one fails;
* ``resnet18``: the CIFAR stem (stride 1, no max-pool), output ``8·width``, and the
  parameter count of ResNet-18 (11,168,832 trainable parameters without the classifier,
  the 11,173,962 of the CIFAR ResNet-18 less its 512·10 + 10 head) and a hand count;
* ``KNNEntropy`` and ``GaussianLogDet`` on duplicated or collapsed latents: the value and
  the gradient against NumPy (their docstrings promise both finite);
* the ``digits-pairs`` and ``state-space-*`` datasets with the documented shapes;
* ``steps_per_execution > 1`` trains to the same weights as 1 (JAX, TensorFlow); the
  PyTorch backend refuses it with a ``ValueError`` naming it.
"""

import json

import keras
import numpy as np
import pytest
from helpers import gradients, to_numpy

from ldm_keras import cli, recipes
from ldm_keras import entropy as E
from ldm_keras.data import load_image_dataset, load_sequence_dataset, state_space
from ldm_keras.models.encoders import mlp, resnet18
from ldm_keras.zoo import index, verifier

# ---------------------------------------------------------------------------------------
# zoo verify without a name
# ---------------------------------------------------------------------------------------


def _fake_report(name, ok):
    return {"name": name, "ok": ok, "backend": keras.backend.backend(), "files": 3,
            "reference": {"ok": ok, "max_abs_diff": 0.0 if ok else 1.0, "atol": 1e-5}}


@pytest.mark.parametrize("failing", [None, "first", "last"])
def test_zoo_verify_without_a_name_checks_every_entry_with_weights(monkeypatch, capsys,
                                                                   failing):
    entries = index.read_index()["entries"]
    with_weights = sorted(n for n in entries if entries[n].get("weights", True))
    without = sorted(set(entries) - set(with_weights))
    assert len(with_weights) >= 2 and without  # the zoo has both kinds
    bad = {None: None, "first": with_weights[0], "last": with_weights[-1]}[failing]
    seen = []

    def fake_verify(name, eval=False):  # noqa: A002
        seen.append((name, eval))
        return _fake_report(name, name != bad)

    monkeypatch.setattr(verifier, "verify", fake_verify)
    code = cli.main(["zoo", "verify"])
    out = capsys.readouterr().out
    assert seen == [(n, False) for n in with_weights]
    assert code == (0 if bad is None else 1)
    for name in with_weights:
        status = "FAILED" if name == bad else "OK"
        assert f"{name}: {status} on" in out
    for name in without:
        assert f"{name}:" not in out
    reports = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    assert [r["name"] for r in reports] == with_weights


# ---------------------------------------------------------------------------------------
# resnet18
# ---------------------------------------------------------------------------------------


def _resnet18_hand_count(channels, w):
    """Trainable parameters of the CIFAR ResNet-18 backbone (conv without bias; BN γ, β)."""
    total = 9 * channels * w + 2 * w  # stem conv + BN
    width = w
    for mult in (1, 2, 4, 8):
        f = w * mult
        for i in range(2):
            stride = 2 if (i == 0 and mult > 1) else 1
            total += 9 * width * f + 2 * f + 9 * f * f + 2 * f
            if stride != 1 or width != f:
                total += width * f + 2 * f
            width = f
    return total


def test_resnet18_builds_with_the_cifar_stem_and_the_resnet18_parameter_count():
    # the hand count reproduces the known figure at width 64 ...
    assert _resnet18_hand_count(3, 64) == 11_168_832
    # ... and a narrow build (cheap: no 11M-parameter initialisation) matches it
    model = resnet18((8, 8, 3), width=4)
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) \
        == _resnet18_hand_count(3, 4)
    assert model.output_shape == (None, 32)  # 8 · width
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    # the stem: 3×3 at stride 1 keeps 8×8, no max-pooling; three stride-2 stages
    assert convs[0].kernel_size == (3, 3) and convs[0].strides == (1, 1)
    assert tuple(convs[0].output.shape) == (None, 8, 8, 4)
    assert not any(isinstance(la, keras.layers.MaxPooling2D) for la in model.layers)
    assert sum(c.strides == (2, 2) for c in convs) == 6  # 3 stages × (conv + shortcut)
    assert tuple(convs[-1].output.shape)[1:3] == (1, 1)


# ---------------------------------------------------------------------------------------
# duplicated / collapsed latents
# ---------------------------------------------------------------------------------------


def _knn_with_duplicates():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(12, 3)).astype("float32")
    # rows 0..5 twice (duplicates), rows 6..11 once
    z = np.concatenate([base, base[:6]])
    groups = np.concatenate([np.arange(12), np.arange(6)])
    return z, groups


def _np_knn_grouped_grad(z, groups, k, eps):
    """d/dz of d·mean_i ½ log(r_k(i)² + eps), summed over the copies of each point (the
    sum does not depend on which copy a tie picks)."""
    z64 = z.astype("float64")
    n, d = z.shape
    d2 = ((z64[:, None] - z64[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    j = np.argsort(d2, axis=1, kind="stable")[:, k - 1]
    g = np.zeros_like(z64)
    for i in range(n):
        diff = z64[i] - z64[j[i]]
        c = (d / n) * diff / (diff @ diff + eps)
        g[i] += c
        g[j[i]] -= c
    out = np.zeros((groups.max() + 1, d))
    np.add.at(out, groups, g)
    return out


@pytest.mark.parametrize("k", [1, 2])
def test_knn_entropy_duplicated_latents_value_and_gradient(k):
    z, groups = _knn_with_duplicates()
    est = E.KNNEntropy(k=k, include_constant=False)
    value = float(to_numpy(est(z)))
    (grad,) = gradients(est, [z])
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    summed = np.zeros((groups.max() + 1, 3))
    np.add.at(summed, groups, grad)
    want = _np_knn_grouped_grad(z, groups, k, est.eps)
    np.testing.assert_allclose(summed, want, rtol=1e-3, atol=1e-5)
    if k == 1:  # a duplicate's nearest neighbour is its copy: no gradient at all
        np.testing.assert_array_equal(grad[[0, 12]], 0.0)


def _np_logdet(z, jitter, with_grad=True):
    z = z.astype("float64")
    n, d = z.shape
    zc = z - z.mean(0)
    cov = zc.T @ zc / (n - 1)
    scale = max(np.trace(cov) / d, 1e-12)
    m = cov + jitter * scale * np.eye(d)
    h = 0.5 * np.linalg.slogdet(m)[1] + 0.5 * d * np.log(2 * np.pi * np.e)
    minv = np.linalg.solve(m, np.eye(d))
    dh_dcov = 0.5 * minv
    if np.trace(cov) / d > 1e-12:  # the jitter follows tr(C)/d
        dh_dcov = dh_dcov + 0.5 * np.trace(minv) * jitter / d * np.eye(d)
    return h, 2.0 / (n - 1) * zc @ dh_dcov


@pytest.mark.parametrize("case", ["collapsed", "one-dim-collapsed", "duplicated"])
def test_gaussian_logdet_collapsed_latents_value_and_gradient(case):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(32, 3)).astype("float32")
    if case == "collapsed":  # dyadic values: the float32 batch mean is exact, Zc = 0
        z = np.repeat(np.array([[0.5, -1.25, 2.0]], "float32"), 32, axis=0)
    elif case == "one-dim-collapsed":
        z[:, 1] = 0.7
    else:
        z = np.concatenate([z[:16], z[:16]])
    est = E.GaussianLogDet(jitter=1e-3)
    value = float(to_numpy(est(z)))
    (grad,) = gradients(est, [z])
    want, want_grad = _np_logdet(z, est.jitter)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, want, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-3,
                               atol=1e-4 * max(1.0, np.abs(want_grad).max()))
    if case == "collapsed":
        # ½ log det(jitter·1e-12·I) + d/2 log 2πe: the floor of the scale
        assert value == pytest.approx(1.5 * np.log(1e-3 * 1e-12)
                                      + 1.5 * np.log(2 * np.pi * np.e), rel=1e-5)


# ---------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------


def test_digits_pairs_dataset_and_job_settings():
    (x, y), (xt, yt) = load_image_dataset("digits-pairs")
    (x0, y0), (xt0, yt0) = load_image_dataset("digits")
    assert x.shape == (1257, 8, 8, 1) and xt.shape == (540, 8, 8, 1)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() == 1.0
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(yt, yt0)
    from ldm_keras import jobs

    d = jobs.DATASETS["digits-pairs"]
    assert d["pairs"] == 3 and d["preset"] is None  # same-class pairs, no augmentation


@pytest.mark.parametrize("preset,dim", [("nonlinear-2d", 2), ("nonlinear-4d", 4)])
def test_state_space_datasets_have_the_documented_shapes(preset, dim):
    (x, s), (xt, st), info = load_sequence_dataset(f"state-space-{preset}", sequences=3,
                                                   test_sequences=2)
    assert x.shape == (3, 200, 20) and s.shape == (3, 200, dim)
    assert xt.shape == (2, 200, 20) and st.shape == (2, 200, dim)
    assert info["ground_truth"] == "latents"
    # the observations are the preset's mixing of its latents, and the splits differ
    tr = state_space.load(preset, "train", num_sequences=3)
    np.testing.assert_array_equal(x, tr.observations)
    assert not np.allclose(x[:2, 0], xt[:, 0])
    (xw, sw), _, _ = load_sequence_dataset(f"state-space-{preset}", sequences=3,
                                           test_sequences=2, window=50)
    assert xw.shape == (12, 50, 20) and sw.shape == (12, 50, dim)
    np.testing.assert_array_equal(xw[1], x[0, 50:100])


# ---------------------------------------------------------------------------------------
# steps_per_execution
# ---------------------------------------------------------------------------------------


def _trained_weights(steps_per_execution):
    keras.utils.set_random_seed(11)
    encoder = mlp(6, (16,), 8, batch_norm=False, name="enc")
    model = recipes.build("plane-kde", encoder, projector=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  steps_per_execution=steps_per_execution)
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(64, 6)).astype("float32")
    x2 = (x1 + 0.1 * rng.normal(size=x1.shape)).astype("float32")
    history = model.fit((x1, x2), epochs=1, batch_size=16, shuffle=False, verbose=0)
    return [to_numpy(v) for v in model.trainable_variables], history.history["loss"][-1]


def test_steps_per_execution_trains_to_the_same_weights():
    if keras.backend.backend() == "torch":  # Keras' PyTorch trainer refuses it, clearly
        with pytest.raises(ValueError, match="steps_per_execution.*4"):
            _trained_weights(4)
        return
    w1, loss1 = _trained_weights(1)
    w4, loss4 = _trained_weights(4)
    keras.utils.set_random_seed(11)
    w0 = [to_numpy(v) for v in mlp(6, (16,), 8, batch_norm=False).trainable_variables]
    assert len(w1) == len(w4) == len(w0)
    for a, b in zip(w1, w4, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # it trained (4 steps at lr 1e-2; the biases barely move: the loss is shift-invariant)
    assert max(np.abs(a - c).max() for a, c in zip(w1, w0, strict=True)) > 1e-2
    assert loss1 == pytest.approx(loss4, rel=1e-5)
