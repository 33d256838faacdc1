"""Shared test helpers: every layer test calls :func:`run_layer_test`.

In the spirit of KerasHub's ``TestCase.run_layer_test``: one helper checks every layer
the same way — output shape and ``compute_output_shape``, the config round trip,
saving to ``.keras`` and reloading under ``safe_mode=True`` with identical outputs,
finite gradients on the active backend, and a run under ``mixed_float16``.
"""

import os
import tempfile

import keras
import numpy as np

BACKEND = keras.backend.backend()


def to_numpy(x):
    """Convert a backend tensor (or nested structure) to NumPy."""
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_numpy(v) for v in x)
    return keras.ops.convert_to_numpy(x)


def _flatten(x):
    if isinstance(x, dict):
        return [v for k in sorted(x) for v in _flatten(x[k])]
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _flatten(item)]
    return [x]


def _as_tuple(inputs):
    return tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)


def gradients(fn, inputs, variables=()):
    """Gradients of ``sum(fn(*inputs))`` w.r.t. the float inputs and ``variables``.

    Written once per backend (tests only); returns NumPy arrays, ``None`` where an
    input has no gradient path.
    """
    inputs = [np.asarray(x) for x in inputs]
    float_idx = [i for i, x in enumerate(inputs) if np.issubdtype(x.dtype, np.floating)]
    variables = list(variables)

    def total(outs):
        return sum(keras.ops.sum(keras.ops.cast(o, "float32")) for o in _flatten(outs))

    if BACKEND == "tensorflow":
        import tensorflow as tf

        xs = [tf.convert_to_tensor(x, dtype="float32") if i in float_idx
              else tf.convert_to_tensor(x) for i, x in enumerate(inputs)]
        with tf.GradientTape() as tape:
            tape.watch([xs[i] for i in float_idx])
            loss = total(fn(*xs))
        grads = tape.gradient(loss, [xs[i] for i in float_idx] + [v.value for v in variables])
        return [None if g is None else np.asarray(g) for g in grads]

    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        xs = [jnp.asarray(x, dtype="float32") if i in float_idx else jnp.asarray(x)
              for i, x in enumerate(inputs)]

        def f(float_xs, var_values):
            args = list(xs)
            for j, i in enumerate(float_idx):
                args[i] = float_xs[j]
            mapping = list(zip(variables, var_values))
            with keras.StatelessScope(state_mapping=mapping):
                return total(fn(*args))

        gx, gv = jax.grad(f, argnums=(0, 1))(
            [xs[i] for i in float_idx], [v.value for v in variables]
        )
        return [np.asarray(g) for g in list(gx) + list(gv)]

    if BACKEND == "torch":
        import torch

        xs = [torch.tensor(x, dtype=torch.float32, requires_grad=True) if i in float_idx
              else torch.tensor(x) for i, x in enumerate(inputs)]
        for v in variables:
            v.value.grad = None
        loss = total(fn(*xs))
        wrt = [xs[i] for i in float_idx] + [v.value for v in variables]
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        return [None if g is None else g.detach().cpu().numpy() for g in grads]

    raise NotImplementedError(BACKEND)


def structure(x):
    """The nesting of ``x`` with every leaf replaced by ``"*"``: dict keys, list lengths."""
    if isinstance(x, dict):
        return {k: structure(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [structure(v) for v in x]
    return "*"


def assert_allclose(a, b, rtol=1e-5, atol=1e-6, msg=""):
    """Every leaf of ``a`` close to the same leaf of ``b``; the two must have the same
    structure (the same dict keys, list lengths): a missing or extra output fails."""
    a, b = to_numpy(a), to_numpy(b)
    assert structure(a) == structure(b), (
        f"{msg}: the outputs differ in structure: {structure(a)} vs {structure(b)}")
    for x, y in zip(_flatten(a), _flatten(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64"),
                                   rtol=rtol, atol=atol, err_msg=msg)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape=None,
    *,
    call_kwargs=None,
    deterministic=True,
    check_saving=True,
    check_gradients=True,
    check_mixed_precision=True,
    mixed_precision_output_dtype="float32",
    rtol=1e-5,
    atol=1e-6,
):
    """Check a layer the same way as every other layer of ldm_keras.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        input_data: one NumPy array, or a tuple of arrays passed positionally.
        expected_output_shape: a shape tuple (or a structure of them, matching the
            output); ``()`` for a scalar. ``None`` skips the shape check.
        call_kwargs: keyword arguments for the call (not Keras tensors).
        deterministic: ``False`` for random layers (outputs are then compared on
            shape only after reloading).
        mixed_precision_output_dtype: the dtype every output must have under
            ``mixed_float16`` (``"float32"`` for losses, densities, filters), or
            ``None`` to only check that the outputs are finite.

    Returns:
        The layer built in the first check, and its output on ``input_data``.
    """
    call_kwargs = dict(call_kwargs or {})
    inputs = _as_tuple(input_data)

    # 1. Output shape and compute_output_shape.
    layer = layer_cls(**init_kwargs)
    out = layer(*inputs, **call_kwargs)
    if expected_output_shape is not None:
        got = [tuple(o.shape) for o in _flatten(out)]
        want = _flatten_shapes(expected_output_shape)
        assert got == want, f"{layer_cls.__name__}: output shapes {got}, expected {want}"
        if isinstance(expected_output_shape, dict):
            assert isinstance(out, dict) and set(out) == set(expected_output_shape), (
                f"{layer_cls.__name__}: outputs {sorted(out) if isinstance(out, dict) else out}"
                f", expected the keys {sorted(expected_output_shape)}")
    try:
        computed = layer.compute_output_shape(*[x.shape for x in inputs])
    except NotImplementedError:
        computed = None
    if computed is not None:
        assert _flatten_shapes(computed) == [tuple(o.shape) for o in _flatten(out)], (
            f"{layer_cls.__name__}.compute_output_shape gave {computed}; "
            f"the call gave {[tuple(o.shape) for o in _flatten(out)]}"
        )
    for o in _flatten(out):
        assert np.all(np.isfinite(to_numpy(o))), f"{layer_cls.__name__}: non-finite output"

    # 2. Config round trip.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config, f"{layer_cls.__name__}: config changed in round trip"
    clone_out = clone(*inputs, **call_kwargs)
    if layer.weights:
        clone.set_weights(layer.get_weights())
        clone_out = clone(*inputs, **call_kwargs)
    if deterministic:
        assert_allclose(out, clone_out, rtol, atol, "config round trip changed outputs")

    # 3. Save to .keras and reload with safe_mode=True, no custom_objects.
    if check_saving:
        ins = [keras.Input(shape=x.shape[1:], batch_size=x.shape[0],
                           dtype=str(np.asarray(x).dtype).replace("float64", "float32"))
               for x in inputs]
        model = keras.Model(ins if len(ins) > 1 else ins[0], layer(*ins, **call_kwargs))
        ref = model(list(inputs) if len(inputs) > 1 else inputs[0])
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "layer.keras")
            model.save(path)
            reloaded = keras.saving.load_model(path, safe_mode=True)
        again = reloaded(list(inputs) if len(inputs) > 1 else inputs[0])
        if deterministic:
            assert_allclose(ref, again, rtol, atol, "outputs changed after save/load")

    # 4. Finite gradients w.r.t. float inputs and trainable weights.
    if check_gradients:
        grads = gradients(lambda *xs: layer(*xs, **call_kwargs), inputs, layer.trainable_variables)
        assert any(g is not None for g in grads), f"{layer_cls.__name__}: no gradient at all"
        for g in grads:
            if g is not None:
                assert np.all(np.isfinite(g)), f"{layer_cls.__name__}: non-finite gradient"

    # 5. Mixed precision: outputs stay float32 (losses, densities) and finite.
    if check_mixed_precision:
        mp_layer = layer_cls(**{**init_kwargs, "dtype": "mixed_float16"})
        half = tuple(np.asarray(x, "float16") if np.issubdtype(np.asarray(x).dtype, np.floating)
                     else x for x in inputs)
        mp_out = mp_layer(*half, **call_kwargs)
        for o in _flatten(mp_out):
            if mixed_precision_output_dtype is not None:
                assert keras.backend.standardize_dtype(o.dtype) == mixed_precision_output_dtype, (
                    f"{layer_cls.__name__} under mixed_float16 returned {o.dtype}, "
                    f"expected {mixed_precision_output_dtype}"
                )
            assert np.all(np.isfinite(to_numpy(o).astype("float32"))), "non-finite (mixed)"
    return layer, out


def _flatten_shapes(shapes):
    if isinstance(shapes, dict):
        return [s for k in sorted(shapes) for s in _flatten_shapes(shapes[k])]
    if isinstance(shapes, (list, tuple)) and (len(shapes) == 0 or all(
            isinstance(s, (int, type(None))) for s in shapes)):
        return [tuple(shapes)]
    return [s for item in shapes for s in _flatten_shapes(item)]


def statsmodels_lgssm(cls, y, a, b, d, q, r, m0=None, c0=None):
    """A statsmodels state-space model ``cls`` (its ``KalmanFilter`` or ``KalmanSmoother``)
    bound to one sequence ``y`` (T, L; NaN = missing) with the Kalman cell's parametrisation:
    transition ``a`` around the offset ``b``, design ``d``, diagonal process variances ``q``,
    observation variances ``r`` ((L,) or (T, L)), prior N(m0, c0) before the first step."""
    steps, l_ = y.shape
    s = a.shape[0]
    m0 = np.zeros(s) if m0 is None else np.asarray(m0, "float64")
    c0 = np.eye(s) if c0 is None else np.asarray(c0, "float64")
    mod = cls(k_endog=l_, k_states=s)
    mod.bind(np.asarray(y, "float64"))
    mod["design"] = d
    mod["transition"] = a
    mod["selection"] = np.eye(s)
    mod["state_cov"] = np.diag(q)
    mod["state_intercept"] = (np.eye(s) - a) @ b
    r = np.asarray(r, "float64")
    mod["obs_cov"] = np.diag(r) if r.ndim == 1 else np.stack([np.diag(v) for v in r], -1)
    mod.initialize_known(a @ (m0 - b) + b, a @ c0 @ a.T + np.diag(q))
    return mod
