"""Nonlinear predictor of the next latent: an LSTM/GRU over the past (docs/spec.md §4)."""

import math

import keras
from keras import ops

from .._math import LOG_2PI
from .._serialization import register
from .._validation import check_choice, check_finite, check_int, check_positive

__all__ = ["RecurrentPredictor"]


@register
class RecurrentPredictor(keras.layers.Layer):
    """Predict each latent ``z_t`` from ``z_<t`` with a recurrent network and an MLP.

    For a sequence ``z_1..T`` (shape ``(B, T, L)``) the inputs are shifted by one step,
    ``u_1 = u₀`` (zeros, or a learned vector with ``initial_input="learned"``) and
    ``u_t = z_{t-1}``; then::

        r_t = RNN(u_1..t)                     (LSTM or GRU, ``units`` wide)
        ẑ_t = MLP(r_t)                        (hidden layers ``hidden_units``, then Dense(L))
        v_t = softplus(W r_t + c) + min_var   (``variance="softplus"``: state-dependent)
        v_tl = exp(ρ_l) + min_var             (``variance="diagonal"``: a learned constant
                                               per latent dimension, ρ = ``log_variance``)
        v_t = 1                               (``variance="constant"``)
        nll_t = ½ Σ_l [(z̃_tl - ẑ_tl)² / v_tl + log v_tl]  (+ L/2 · log 2π if include_constant)

    with ``z̃_t = stop_gradient(z_t)`` when ``stop_gradient_targets=True`` (the target is
    not differentiated; the encoder gets gradients through the past only), else
    ``z̃_t = z_t``. With ``variance="diagonal"`` the variance is homoscedastic (not a
    function of the past) but learned per dimension. With ``variance="constant"`` the NLL is ``½‖z_t - ẑ_t‖²``: a
    JEPA-style MSE predictor.

    The recurrent network and the MLP run under the layer's dtype policy (they may be
    ``mixed_float16``); the output heads and the NLL are float32, and every output is
    float32. Returns a dict ``{"prediction": (B, T, L), "variance": (B, T, L),
    "nll": (B, T)}``. The LDM alignment loss is ``sum_t mean_batch nll``.

    Args:
        units: width of the recurrent state.
        cell: ``"gru"`` or ``"lstm"``.
        hidden_units: widths of the MLP's hidden layers (``()`` for a linear read-out).
        activation: activation of the MLP's hidden layers.
        variance: ``"softplus"``, ``"diagonal"`` or ``"constant"``.
        init_log_variance: initial value of ``ρ`` with ``variance="diagonal"`` (default 0,
            unit variance).
        initial_input: ``"zeros"`` or ``"learned"``.
        min_variance: added to the softplus or diagonal variance (default 1e-4).
        stop_gradient_targets: see above.
        include_constant: add ``L/2 · log 2π`` to the NLL.
        check_finite: raise on NaN/inf inputs when they can be checked eagerly.

    Example:
        >>> pred = RecurrentPredictor(units=32, cell="gru", variance="softplus")
        >>> out = pred(z)                                  # z: (batch, time, L)
        >>> loss = keras.ops.sum(keras.ops.mean(out["nll"], axis=0))
    """

    def __init__(
        self,
        units=64,
        cell="gru",
        hidden_units=(64,),
        activation="gelu",
        variance="softplus",
        initial_input="zeros",
        min_variance=1e-4,
        stop_gradient_targets=True,
        include_constant=False,
        check_finite=True,
        init_log_variance=0.0,
        **kwargs,
    ):
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        self.units = check_int(units, "units", 1)
        self.cell = check_choice(cell, "cell", {"gru", "lstm"})
        self.hidden_units = tuple(check_int(u, "hidden_units", 1) for u in hidden_units)
        self.activation = activation
        self.variance = check_choice(variance, "variance",
                                     {"softplus", "diagonal", "constant"})
        self.init_log_variance = float(init_log_variance)
        if not math.isfinite(self.init_log_variance):
            raise ValueError("`init_log_variance` must be a finite number; received "
                             f"{init_log_variance!r}.")
        self.initial_input = check_choice(initial_input, "initial_input", {"zeros", "learned"})
        self.min_variance = check_positive(min_variance, "min_variance", allow_zero=True)
        self.stop_gradient_targets = bool(stop_gradient_targets)
        self.include_constant = bool(include_constant)
        self.check_finite = bool(check_finite)
        rnn_cls = keras.layers.GRU if self.cell == "gru" else keras.layers.LSTM
        self._rnn = rnn_cls(self.units, return_sequences=True, dtype=self.dtype_policy,
                            name="recurrent")
        self._mlp = [
            keras.layers.Dense(u, activation=activation, dtype=self.dtype_policy,
                               name=f"hidden_{i}")
            for i, u in enumerate(self.hidden_units)
        ]
        self.observation_dim = None

    def _check_inputs(self, shape):
        if len(shape) != 3:
            raise ValueError(
                "RecurrentPredictor expects a rank-3 input of shape (batch, time, features); "
                f"received shape {tuple(shape)} (rank {len(shape)})."
            )
        if shape[1] is not None and int(shape[1]) < 2:
            raise ValueError(
                "RecurrentPredictor needs sequences of at least 2 time steps; received "
                f"shape {tuple(shape)} (T={shape[1]})."
            )
        if shape[2] is None:
            raise ValueError(
                f"RecurrentPredictor needs a known feature size; received shape {tuple(shape)}."
            )
        if self.observation_dim is not None and int(shape[2]) != self.observation_dim:
            raise ValueError(
                f"RecurrentPredictor was built for {self.observation_dim} features; received "
                f"shape {tuple(shape)}."
            )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_inputs(input_shape)
        dim = int(input_shape[-1])
        self.observation_dim = dim
        self._out = keras.layers.Dense(dim, dtype="float32", name="prediction")
        if self.variance == "softplus":
            self._var = keras.layers.Dense(dim, dtype="float32", name="variance")
        if self.initial_input == "learned":
            self.initial = self.add_weight(shape=(dim,), name="initial_input",
                                           initializer="zeros", dtype="float32")
        self._rnn.build((input_shape[0], input_shape[1], dim))
        width = self.units
        for layer in self._mlp:
            layer.build((None, width))
            width = layer.units
        self._out.build((None, width))
        if self.variance == "softplus":
            self._var.build((None, self.units))
        if self.variance == "diagonal":
            self.log_variance = self.add_weight(
                shape=(dim,), name="log_variance", dtype="float32",
                initializer=keras.initializers.Constant(self.init_log_variance))

    def _output_shapes(self, shape):
        b, t, dim = shape
        return {"prediction": (b, t, dim), "variance": (b, t, dim), "nll": (b, t)}

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_inputs(input_shape)
        return self._output_shapes(input_shape)

    def compute_output_spec(self, inputs, training=None):
        shape = tuple(inputs.shape)
        self._check_inputs(shape)
        return {k: keras.KerasTensor(v, dtype="float32")
                for k, v in self._output_shapes(shape).items()}

    def call(self, inputs, training=None):
        z = ops.cast(inputs, "float32")
        self._check_inputs(tuple(z.shape))
        if self.check_finite:
            check_finite(z, "inputs")
        first = ops.zeros_like(z[:, :1, :])
        if self.initial_input == "learned":
            first = first + ops.cast(self.initial, "float32")
        shifted = ops.concatenate([first, z[:, :-1, :]], axis=1)
        hidden = self._rnn(ops.cast(shifted, self.compute_dtype), training=training)
        m = hidden
        for layer in self._mlp:
            m = layer(m)
        pred = ops.cast(self._out(ops.cast(m, "float32")), "float32")
        if self.variance == "softplus":
            raw = self._var(ops.cast(hidden, "float32"))
            var = ops.softplus(ops.cast(raw, "float32")) + self.min_variance
        elif self.variance == "diagonal":
            var = ops.ones_like(pred) * (ops.exp(ops.cast(self.log_variance, "float32"))
                                         + self.min_variance)
        else:
            var = ops.ones_like(pred)
        target = ops.stop_gradient(z) if self.stop_gradient_targets else z
        err = target - pred
        nll = 0.5 * ops.sum(ops.square(err) / var + ops.log(var), axis=-1)
        if self.include_constant:
            nll = nll + 0.5 * self.observation_dim * LOG_2PI
        return {"prediction": pred, "variance": var, "nll": nll}

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "cell": self.cell,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "variance": self.variance,
            "initial_input": self.initial_input,
            "min_variance": self.min_variance,
            "stop_gradient_targets": self.stop_gradient_targets,
            "include_constant": self.include_constant,
            "check_finite": self.check_finite,
            "init_log_variance": self.init_log_variance,
        })
        return config
