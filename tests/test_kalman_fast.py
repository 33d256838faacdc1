"""The fast paths of KalmanFilter equal the plain per-sequence recursion.

The plain recursion is ``covariance="batched"`` (one Kalman step per time step with a
covariance per sequence, what the cell does in a Keras RNN; itself checked against
statsmodels in test_kalman.py). Every fast path — the shared (batch-free) covariance
recursion, its steady-state shortcut (eager and traced), the doubling scan of the means,
the standard update — must give the same outputs and gradients to 1e-5 relative
(float32), on every backend. The parallel associative-scan covariances are an option with
a stated looser tolerance.
"""

import keras
import numpy as np
from helpers import BACKEND, gradients, to_numpy

from ldm_keras.predictors import KalmanFilter, _recursion

REL = 1e-5


def _rel_err(a, b):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))


def _model(s, l_, rng, radius, **kwargs):
    """A filter with random stable dynamics and a learned D (weights set explicitly)."""
    cell = {"state_dim": s, "observation_dim": l_, "observation_matrix": "learned", "seed": 1}
    cell.update(kwargs.pop("cell", {}))
    kf = KalmanFilter(cell, **kwargs)
    kf.build((None, None, l_))
    a = rng.normal(size=(s, s))
    kf.cell.transition.assign((radius * a / np.max(np.abs(np.linalg.eigvals(a))))
                              .astype("float32"))
    kf.cell.offset.assign(rng.normal(size=s).astype("float32") * 0.3)
    kf.cell.observation.assign((np.eye(l_, s) + 0.2 * rng.normal(size=(l_, s)))
                               .astype("float32"))
    return kf


def _pair(rng, s, l_, radius, fast_kwargs, cell=None):
    state = rng.bit_generator.state
    plain = _model(s, l_, rng, radius, covariance="batched", cell=dict(cell or {}))
    rng.bit_generator.state = state
    fast = _model(s, l_, rng, radius, cell=dict(cell or {}), **fast_kwargs)
    return plain, fast


def _outputs_and_gradients(kf, z):
    """Outputs and the gradients of ``sum(nll)`` w.r.t. ``z`` and the weights; on JAX in
    one ``jax.jit`` (op-by-op JAX would compile every small primitive separately)."""
    if BACKEND != "jax":
        return to_numpy(kf(z)), gradients(lambda x: kf(x)["nll"], (z,), kf.trainable_variables)
    import jax

    ntv = [v.value for v in kf.non_trainable_variables]

    def f(tv, x):
        out, _ = kf.stateless_call(tv, ntv, x)
        return keras.ops.sum(out["nll"]), out

    (_, out), (g_tv, g_z) = jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))(
        [v.value for v in kf.trainable_variables], z)
    return to_numpy(out), [np.asarray(g_z)] + [np.asarray(g) for g in g_tv]


def _compare(plain, fast, z, rel=REL, grad_rel=REL):
    want, g_plain = _outputs_and_gradients(plain, z)
    got, g_fast = _outputs_and_gradients(fast, z)
    assert set(want) == set(got)
    for key in want:
        assert _rel_err(want[key], got[key]) < rel, (key, _rel_err(want[key], got[key]))
    names = ["z"] + [v.name for v in plain.trainable_variables]
    for name, a, b in zip(names, g_plain, g_fast):
        assert _rel_err(a, b) < grad_rel, (name, _rel_err(a, b))


# The sequential and the doubling scan of the means: "auto" picks one per backend, the
# other is checked explicitly.
OTHER_SCAN = {"time_parallel": BACKEND != "torch"}


def _check_all(rng, s, l_, radius, configs, steps=40):
    """One plain recursion, several fast configurations: ``(kwargs, rel, grad_rel)``."""
    state = rng.bit_generator.state
    plain = _model(s, l_, rng, radius, covariance="batched")
    z = rng.normal(size=(3, steps, l_)).astype("float32")  # T > 2 chunks of the traced path
    want, g_want = _outputs_and_gradients(plain, z)
    for kwargs, rel, grad_rel in configs:
        rng.bit_generator.state = state
        fast = _model(s, l_, rng, radius, **kwargs)
        got, g_got = _outputs_and_gradients(fast, z)
        assert set(want) == set(got)
        for key in want:
            assert _rel_err(want[key], got[key]) < rel, (kwargs, key, _rel_err(want[key],
                                                                              got[key]))
        names = ["z"] + [v.name for v in plain.trainable_variables]
        for name, a, b in zip(names, g_want, g_got):
            assert _rel_err(a, b) < grad_rel, (kwargs, name, _rel_err(a, b))


def test_fast_paths_equal_plain_recursion_converging_model(rng):
    """A model whose covariances reach their steady state within T (the shortcut is
    taken): the default path, the other scan of the means, no shortcut, and the
    parallel associative-scan covariances (to their documented tolerance)."""
    _check_all(rng, 2, 2, 0.95, [({}, REL, REL), (OTHER_SCAN, REL, REL),
                                 ({"steady_state": False}, REL, REL),
                                 ({"covariance": "parallel"}, 1e-5, 5e-5)])


def test_fast_paths_equal_plain_recursion_slow_model(rng):
    """An unobserved, slowly decaying mode (S > L): the covariances do not converge."""
    _check_all(rng, 4, 2, 0.999, [({}, REL, REL), (OTHER_SCAN, REL, REL)])


def test_fast_path_larger_state(rng):
    """S = L = 12 (three levels of the block Cholesky on JAX, odd block sizes)."""
    _check_all(rng, 12, 12, 0.9, [({}, REL, 2e-5)], steps=36)


def test_standard_update_equals_plain_standard_and_joseph(rng):
    cell = {"covariance_update": "standard"}
    plain, fast = _pair(rng, 3, 2, 0.9, {}, cell=cell)
    z = rng.normal(size=(2, 40, 2)).astype("float32")
    _compare(plain, fast, z)
    # and the standard form agrees with Joseph's (exact arithmetic: the same update)
    joseph = _model(3, 2, np.random.default_rng(5), 0.9)
    standard = _model(3, 2, np.random.default_rng(5), 0.9, cell=cell)
    a, b = _outputs_and_gradients(joseph, z)[0], _outputs_and_gradients(standard, z)[0]
    for key in a:
        assert _rel_err(a[key], b[key]) < REL, key


def test_compiled_paths_equal_plain_recursion(rng):
    """Inside the compiled predict function (jax.jit: the steady-state chunks with a
    ``cond``; tf.function: the while loop that stops at the steady state) the outputs
    equal the plain recursion."""
    plain, fast = _pair(rng, 2, 2, 0.95, {"return_covariances": True})
    z = rng.normal(size=(4, 70, 2)).astype("float32")
    inp = keras.Input((70, 2))
    want = keras.Model(inp, plain(inp)).predict(z, verbose=0, batch_size=4)
    inp = keras.Input((70, 2))
    got = keras.Model(inp, fast(inp)).predict(z, verbose=0, batch_size=4)
    for key in want:
        assert _rel_err(want[key], got[key]) < REL, key


def test_steady_state_is_the_fixed_point(rng):
    """Eagerly, the shared recursion stops once it has reached its float32 limit (an
    exact fixed point or rounding cycle, or a drift bounded below 1e-7) and repeats it:
    the outputs equal the full recursion's to 1e-5 (float32, relative; the issue's bound)."""
    for s in (2, 24):
        kf = _model(s, s, rng, 0.9)
        c = kf.cell
        args = (c.transition_value(), c.process_cov(), c.observation_matrix_value(),
                c._observation_var(), keras.ops.eye(s))
        short, fixed_at = _recursion.shared_covariances(*args, 200, steady_state=True)
        full, none = _recursion.shared_covariances(*args, 200, steady_state=False)
        assert none is None and fixed_at is not None and fixed_at < 100, (s, fixed_at)
        for key in full:
            assert _rel_err(to_numpy(full[key]), to_numpy(short[key])) < 1e-5, key


def _xla_pair_run(monkeypatch, jit, masked):
    """Two training steps of a small Kalman PredictiveLDM compiled with ``jit``
    (``"auto"``: the default); returns (jit_compile resolved, losses, weights)."""
    from ldm_keras.models.encoders import mlp
    from ldm_keras.models.predictive import PredictiveLDM

    monkeypatch.delenv("LDM_KERAS_KALMAN_XLA", raising=False)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 12, 5)).astype("float32")
    keras.utils.set_random_seed(0)
    enc = mlp(5, [8], 3, batch_norm=False, name="encoder")
    kf = KalmanFilter({"state_dim": 3, "observation_dim": 3, "seed": 0},
                      return_covariances=False)
    model = PredictiveLDM(enc, kf, clamp_radius=1.02)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit)
    data = x
    if masked:
        mask = np.ones((6, 12), bool)
        mask[1, 4:7] = False
        mask[4, 9:] = False  # a padded tail
        data = {"frames": x, "mask": mask}
    losses = [float(model.train_on_batch(data, return_dict=True)["loss"]) for _ in range(2)]
    return bool(model.jit_compile), losses, [to_numpy(w) for w in model.weights]


def test_tensorflow_kalman_model_defaults_to_xla_and_equals_the_plain_graph(monkeypatch):
    """On TensorFlow a Kalman PredictiveLDM with a small state resolves ``jit_compile="auto"`` to XLA (Keras
    would not on a CPU); its training steps equal the plain ``tf.function`` graph's
    (``jit_compile=False``) to 1e-5, with the shared (unmasked) and the per-sequence
    (masked) recursion. Larger states, and ``LDM_KERAS_KALMAN_XLA=0``, keep Keras'
    choice."""
    if BACKEND != "tensorflow":
        import pytest

        pytest.skip("XLA default for Kalman models is TensorFlow's")
    for masked in (False, True):
        jit_on, losses_xla, weights_xla = _xla_pair_run(monkeypatch, "auto", masked)
        jit_off, losses_graph, weights_graph = _xla_pair_run(monkeypatch, False, masked)
        assert jit_on and not jit_off
        assert losses_xla[1] != losses_xla[0]  # the first step changed the weights
        np.testing.assert_allclose(losses_xla, losses_graph, rtol=REL)
        for a, b in zip(weights_xla, weights_graph):
            assert _rel_err(a, b) <= REL
    from ldm_keras.models.encoders import mlp
    from ldm_keras.models.predictive import PredictiveLDM

    def resolved(state_dim):
        model = PredictiveLDM(mlp(5, [8], state_dim, batch_norm=False),
                              KalmanFilter({"state_dim": state_dim,
                                            "observation_dim": state_dim}))
        model.compile(optimizer="adam")
        return model.jit_compile

    # larger states keep the plain graph (XLA measured slower on long sequences there)
    assert resolved(PredictiveLDM.TF_XLA_MAX_STATE) is True
    assert resolved(PredictiveLDM.TF_XLA_MAX_STATE + 1) is False
    monkeypatch.setenv("LDM_KERAS_KALMAN_XLA", "0")
    assert resolved(3) is False


def _tf_traced_outputs_and_gradients(kf, z, jit):
    """Outputs and gradients of ``sum(nll)`` w.r.t. ``z`` and the weights, computed inside
    one ``tf.function`` (the traced recursion, not the eager one)."""
    import tensorflow as tf

    @tf.function(jit_compile=jit)
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = kf(x)
            total = tf.reduce_sum(out["nll"])
        return out, tape.gradient(total, [x] + kf.trainable_variables)

    out, grads = run(tf.constant(z))
    return to_numpy(out), [g.numpy() for g in grads]


def test_tensorflow_traced_paths_equal_plain_recursion(rng):
    """Inside ``tf.function``, plain graph and XLA: the steady-state while loop (it stops
    after the first chunk at the steady state and repeats that chunk's last step) and
    the hand-written gradient of the means recursion give the plain recursion's outputs
    and gradients to 1e-5. Models that converge (T not a multiple of the chunk) and that
    do not (the loop runs to the end)."""
    if BACKEND != "tensorflow":
        import pytest

        pytest.skip("TensorFlow's traced steady state and means gradient")
    # (the loop logic is the same with and without XLA: the model that never stops
    # early is compiled once, to keep the test's compilations few)
    for s, l_, radius, steps, modes in [(2, 2, 0.95, 70, (False, True)),
                                        (4, 2, 0.999, 44, (True,))]:
        plain, fast = _pair(rng, s, l_, radius, {"return_covariances": True})
        z = rng.normal(size=(3, steps, l_)).astype("float32")
        for jit in modes:
            want, g_want = _tf_traced_outputs_and_gradients(plain, z, jit)
            got, g_got = _tf_traced_outputs_and_gradients(fast, z, jit)
            for key in want:
                assert _rel_err(want[key], got[key]) < REL, (s, jit, key)
            names = ["z"] + [v.name for v in plain.trainable_variables]
            for name, a, b in zip(names, g_want, g_got):
                assert _rel_err(a, b) < REL, (s, jit, name, _rel_err(a, b))
