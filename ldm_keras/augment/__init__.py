"""View generation for images: random augmentations as Keras layers.

Every augmentation is a Keras layer that maps a batch of images ``(B, H, W, C)`` with
values in ``[0, 1]`` to one augmented view of the same shape, in float32 whatever the
dtype policy, drawing its randomness from its own ``keras.random.SeedGenerator`` (so it
runs inside a compiled training step on every backend). Each op is applied to each
sample independently with probability ``p``; ``training=False`` is the identity.

* :mod:`.base` — :class:`RandomOp`, the base of every op;
* :mod:`.geometric` — :class:`RandomResizedCrop`, :class:`RandomAffine`,
  :class:`RandomFlip` (over the gather-based bilinear sampler of :mod:`.resample`);
* :mod:`.colour` — :class:`ColorJitter`, :class:`RandomGrayscale`, :class:`RandomSolarize`;
* :mod:`.noise` — :class:`RandomGaussianBlur`, :class:`RandomGaussianNoise`,
  :class:`RandomPixelDropout`;
* :mod:`.pipeline` — :class:`ViewPipeline`, the ops by name (:data:`OPS`) and the presets
  (:data:`PRESETS`, :func:`image_views`: the reference settings of docs/spec.md §5, and a
  small-image preset for the 8×8 scikit-learn digits). The model calls the pipeline once
  per view.

keras-cv is not needed (docs/dependencies.md says why each op is written here).

Example:
    >>> views = image_views("cifar", seed=0)
    >>> v1, v2 = views(images), views(images)     # two different random views
"""

from .base import LUMA_WEIGHTS, RandomOp
from .colour import ColorJitter, RandomGrayscale, RandomSolarize
from .geometric import RandomAffine, RandomFlip, RandomResizedCrop
from .noise import RandomGaussianBlur, RandomGaussianNoise, RandomPixelDropout
from .pipeline import OPS, ORDER, PRESETS, Augment, ViewPipeline, image_views

__all__ = [
    "Augment",
    "ColorJitter",
    "RandomAffine",
    "RandomFlip",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomGrayscale",
    "RandomOp",
    "RandomPixelDropout",
    "RandomResizedCrop",
    "RandomSolarize",
    "ViewPipeline",
    "image_views",
    "PRESETS",
    "OPS",
    "ORDER",
    "LUMA_WEIGHTS",
]
