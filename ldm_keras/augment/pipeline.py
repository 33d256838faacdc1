"""The view pipeline, the augmentation ops by name, and the presets.

:class:`ViewPipeline` chains ops into one view; :func:`image_views` builds a preset
(``"cifar"``, ``"cifar-strong"``, ``"digits"``) with per-op overrides; :data:`OPS` names
every op and :data:`ORDER` fixes the order in which they run.
"""

import keras
from keras import ops

from .._registry import Registry
from .._serialization import register
from .._validation import check_choice, check_probability, check_seed
from .base import as_images
from .colour import ColorJitter, RandomGrayscale, RandomSolarize
from .geometric import RandomAffine, RandomFlip, RandomResizedCrop
from .noise import RandomGaussianBlur, RandomGaussianNoise, RandomPixelDropout


@register
class ViewPipeline(keras.layers.Layer):
    """A chain of random ops that turns a batch of images into one view.

    ``view = op_n(... op_2(op_1(x)))``, each op applied per sample with its own
    probability ``p``. Calling the pipeline twice gives two independent views. Runs in
    float32 whatever the dtype policy; ``training=False`` gives the images back
    (cast to float32) unchanged.

    Args:
        ops: list of augmentation layers (or their serialised configs).

    Example:
        >>> views = ViewPipeline([RandomResizedCrop(scale=(0.2, 1.0)), RandomFlip()])
        >>> v1, v2 = views(images), views(images)
    """

    def __init__(self, ops=(), **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        layers = []
        for i, op in enumerate(ops):
            if isinstance(op, dict):
                op = keras.saving.deserialize_keras_object(op)
            if not isinstance(op, keras.layers.Layer):
                raise ValueError(
                    f"`ops` must be a list of Keras layers; item {i} is {type(op).__name__}."
                )
            layers.append(op)
        self.ops = layers
        self.built = True

    def call(self, images, training=True):
        x = as_images(images)
        for op in self.ops:
            x = op(x, training=training)
        return ops.cast(x, "float32")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, images, training=True):
        return keras.KerasTensor(tuple(images.shape), dtype="float32")

    def get_config(self):
        return {**super().get_config(),
                "ops": [keras.saving.serialize_keras_object(op) for op in self.ops]}


Augment = ViewPipeline


def flip(mode="horizontal", p=0.5, seed=None, **kwargs):
    """The flip op of the presets: Keras' ``RandomFlip`` where it is the same op.

    At ``p = 0.5`` Keras' ``keras.layers.RandomFlip`` (kept in float32) gives, with the
    same seed, exactly the flips of :class:`~.geometric.RandomFlip` (measured
    bit-identical on the three backends, docs/dependencies.md); Keras' layer has no
    probability argument, so any other ``p`` uses ours.
    """
    if check_probability(p) == 0.5 and mode in ("horizontal", "vertical"):
        kwargs.setdefault("dtype", "float32")
        return keras.layers.RandomFlip(mode, seed=check_seed(seed), **kwargs)
    return RandomFlip(mode=mode, p=p, seed=seed, **kwargs)


#: The augmentation ops by name (what :func:`image_views` overrides refer to).
OPS = Registry("augmentation op")
for _name, _factory in (("crop", RandomResizedCrop), ("affine", RandomAffine), ("flip", flip),
                        ("color_jitter", ColorJitter), ("grayscale", RandomGrayscale),
                        ("blur", RandomGaussianBlur), ("solarize", RandomSolarize),
                        ("noise", RandomGaussianNoise), ("dropout", RandomPixelDropout)):
    OPS.register(_name, _factory)
del _name, _factory

#: The order in which ops run (SimCLR's order for the image ops).
ORDER = ("crop", "affine", "flip", "color_jitter", "grayscale", "blur", "solarize",
         "noise", "dropout")

#: Presets: op name -> constructor arguments (docs/spec.md §5 for the CIFAR presets).
_CIFAR_COLOUR = {
    "flip": {"p": 0.5},
    "color_jitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.2, "hue": 0.1,
                     "p": 0.8},
    "grayscale": {"p": 0.2},
}
PRESETS = {
    "cifar": {
        "crop": {"scale": (0.2, 1.0), "ratio": (3 / 4, 4 / 3)},
        **_CIFAR_COLOUR,
        "solarize": {"threshold": 0.5, "p": 0.1},
    },
    "cifar-strong": {
        "crop": {"scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3)},
        **_CIFAR_COLOUR,
        "blur": {"sigma": (0.1, 2.0), "p": 0.5},
    },
    # Geometric only: Gaussian noise and pixel dropout lowered the digits probe
    # (RESULTS.md, "Digits augmentations"); add them back with noise={"p": 0.5},
    # dropout={"p": 0.5}.
    "digits": {
        "crop": {"scale": (0.6, 1.0), "ratio": (3 / 4, 4 / 3), "p": 0.8},
        "affine": {"rotation": 15.0, "translation": 1.0, "scale": (0.85, 1.15)},
    },
}


def image_views(preset="cifar", seed=None, **overrides):
    """Build the view pipeline of a preset.

    Presets (ops run in this order; ``p`` is the per-sample probability):

    * ``"cifar"`` (docs/spec.md §5): random resized crop, scale (0.2, 1), ratio (3/4, 4/3);
      horizontal flip p 0.5; colour jitter (0.4, 0.4, 0.2, 0.1) p 0.8; grayscale p 0.2;
      solarisation p 0.1.
    * ``"cifar-strong"``: crop scale (0.08, 1); flip 0.5; colour jitter p 0.8;
      grayscale 0.2; Gaussian blur σ ∈ (0.1, 2) p 0.5 (the spec's "blur 0.5" variant).
    * ``"digits"`` (8×8 scikit-learn digits, ``(B, 8, 8, 1)``): resized crop scale
      (0.6, 1) p 0.8; rotation ±15°, shift ±1 px, zoom (0.85, 1.15). Noise and pixel
      dropout are available as overrides (they lowered the digits probe, RESULTS.md).

    Args:
        preset: ``"cifar"``, ``"cifar-strong"`` or ``"digits"``.
        seed: int or None. With an int the ops get seeds ``(1000·seed + k) mod 2³¹``
            (``k`` the op's place in the fixed order), so the same seed gives the same
            views and pipelines with different seeds share no op seed; with None they
            are drawn from the global seed (``keras.utils.set_random_seed``).
        **overrides: per op (``crop``, ``affine``, ``flip``, ``color_jitter``,
            ``grayscale``, ``blur``, ``solarize``, ``noise``, ``dropout``): a dict of
            constructor arguments to change (adds the op if the preset lacks it),
            ``None`` to drop the op, or a layer to use instead.

    Returns:
        A :class:`ViewPipeline` mapping ``(B, H, W, C)`` in [0, 1] to one view.

    Example:
        >>> views = image_views("cifar", seed=0, solarize=None, flip={"p": 0.0})
        >>> v1, v2 = views(images), views(images)
    """
    check_choice(preset, "preset", set(PRESETS))
    check_seed(seed)
    unknown = {name for name in overrides if name not in OPS}
    if unknown:
        raise ValueError(f"Unknown augmentation op(s) {sorted(unknown)}; "
                         f"expected some of {list(ORDER)}.")
    spec = {name: dict(kwargs) for name, kwargs in PRESETS[preset].items()}
    for name, value in overrides.items():
        if value is None:
            spec.pop(name, None)
        elif isinstance(value, keras.layers.Layer):
            spec[name] = value
        elif isinstance(value, dict):
            spec[name] = {**spec.get(name, {}), **value}
        else:
            raise ValueError(f"Override `{name}` must be a dict of arguments, a layer or "
                             f"None; received {type(value).__name__}.")
    layers = []
    for k, name in enumerate(ORDER):
        if name not in spec:
            continue
        value = spec[name]
        if isinstance(value, keras.layers.Layer):
            layers.append(value)
            continue
        kwargs = dict(value)
        kwargs.setdefault("seed", None if seed is None else (1000 * seed + k) % 2**31)
        layers.append(OPS.get(name, **kwargs))
    return ViewPipeline(layers, name=f"views_{preset.replace('-', '_')}")
