"""Small, standard encoder and head architectures used by the recipes and the zoo.

All are functional Keras models (so they clone, save and load on every backend).
"""

import keras
from keras import layers

from .._serialization import register
from .._validation import check_int


@register
class L2Normalize(layers.UnitNormalization):
    """Keras' ``UnitNormalization`` under the name files saved by earlier versions use.

    ``x · min(1/‖x‖, 1/ε)`` along the last axis (``keras.ops.normalize``). New models use
    ``keras.layers.UnitNormalization`` (what :func:`mlp` builds with ``normalize=True``);
    this registered name keeps configs that name ``ldm_keras>L2Normalize`` (with their
    ``epsilon``) loading.

    Example:
        >>> head = keras.Sequential([keras.layers.Dense(64), L2Normalize()])
    """

    def __init__(self, epsilon=1e-12, axis=-1, **kwargs):
        super().__init__(axis=axis, **kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        return keras.ops.normalize(x, axis=self.axis, order=2, epsilon=self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def mlp(input_dim, widths, output_dim=None, *, activation="relu", batch_norm=True,
        normalize=False, output_activation=None, name="mlp"):
    """A multilayer perceptron ``input_dim → widths… → output_dim`` (a projector/predictor).

    Hidden layers are ``Dense → BatchNorm (optional) → activation``; the last layer is
    linear (or ``output_activation``), optionally followed by
    ``keras.layers.UnitNormalization`` (``normalize=True``, latents on the sphere).

    Example:
        >>> projector = mlp(64, [128], 32, normalize=True)
    """
    input_dim = check_int(input_dim, "input_dim", minimum=1)
    widths = [check_int(w, f"widths[{i}]", minimum=1) for i, w in enumerate(widths)]
    if output_dim is not None:
        output_dim = check_int(output_dim, "output_dim", minimum=1)
    inputs = keras.Input((input_dim,))
    h = inputs
    for w in widths:
        h = layers.Dense(int(w), use_bias=not batch_norm)(h)
        if batch_norm:
            h = layers.BatchNormalization()(h)
        h = layers.Activation(activation)(h)
    if output_dim is not None:
        h = layers.Dense(int(output_dim), activation=output_activation)(h)
    if normalize:
        h = layers.UnitNormalization()(h)
    return keras.Model(inputs, h, name=name)


def conv_encoder(input_shape=(8, 8, 1), filters=(32, 64), dim=64, name="conv_encoder"):
    """A small CNN for little images (8×8 digits, 10×10 frames): conv blocks → GAP → Dense.

    One ``Conv3×3 → BatchNorm → ReLU`` block per entry of ``filters``,
    with a 2×2 max-pool between blocks; global average pooling and a Dense layer give a
    ``dim``-dimensional representation.

    Example:
        >>> encoder = conv_encoder((8, 8, 1), dim=64)
    """
    inputs = keras.Input(tuple(input_shape))
    h = inputs
    for i, f in enumerate(filters):
        if i:
            h = layers.MaxPooling2D(2, padding="same")(h)
        h = layers.Conv2D(int(f), 3, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
    h = layers.Flatten()(h)
    h = layers.Dense(int(dim))(h)
    return keras.Model(inputs, h, name=name)


def resnet18(input_shape=(32, 32, 3), width=64, name="resnet18_cifar"):
    """ResNet-18 with the CIFAR stem (3×3 conv, stride 1, no max-pool), output 8·width.

    Four stages of two basic blocks each (widths ``w, 2w, 4w, 8w``), global average
    pooling at the end — the backbone of the reference image experiments (docs/spec.md §5).

    Example:
        >>> backbone = resnet18((32, 32, 3))          # 512-d features
    """
    def block(x, filters, stride):
        shortcut = x
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        y = layers.BatchNormalization()(y)
        y = layers.Activation("relu")(y)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
            shortcut = layers.BatchNormalization()(shortcut)
        return layers.Activation("relu")(layers.Add()([y, shortcut]))

    inputs = keras.Input(tuple(input_shape))
    h = layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    h = layers.BatchNormalization()(h)
    h = layers.Activation("relu")(h)
    for stage, mult in enumerate((1, 2, 4, 8)):
        for i in range(2):
            h = block(h, width * mult, 2 if (i == 0 and stage > 0) else 1)
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, h, name=name)
