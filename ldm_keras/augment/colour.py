"""Colour ops: colour jitter, random grayscale, random solarisation."""

from keras import ops

from .._serialization import register
from .._validation import (
    check_positive,
    check_probability,
)
from .base import RandomOp, grayscale


class ColourOp(RandomOp):
    """Ops that need 1 (grayscale) or 3 (RGB) channels."""

    def _check_channels(self, x):
        c = x.shape[-1]
        if c is not None and c not in (1, 3):
            raise ValueError(
                f"{type(self).__name__} needs images with 1 (grayscale) or 3 (RGB) "
                f"channels; received {c} channels (shape {tuple(x.shape)})."
            )
        return x


@register
class ColorJitter(ColourOp):
    """Random brightness, contrast, saturation and hue, in this fixed order.

    Per sample (values clipped to [0, 1] after each step), with ``g(x)`` the luma
    ``0.299 R + 0.587 G + 0.114 B``:

        brightness  x ← b·x,                          b ~ U[max(0, 1-β), 1+β]
        contrast    x ← c·x + (1-c)·mean_{HW} g(x),   c ~ U[max(0, 1-κ), 1+κ]
        saturation  x ← s·x + (1-s)·g(x),             s ~ U[max(0, 1-σ), 1+σ]
        hue         h ← (h + δ) mod 1 in HSV,         δ ~ U[-η, η]

    This is torchvision's ``ColorJitter`` except that torchvision draws a random order
    of the four steps for each call; here the order is fixed. The hue shift is exact
    (RGB → HSV → RGB with ``keras.ops.image``; on TensorFlow it passes no gradient
    back to the images, which augmentation does not need). On 1-channel images only
    brightness and contrast apply.

    Args:
        brightness, contrast, saturation: jitter strengths (docs/spec.md §5: 0.4, 0.4, 0.2).
        hue: hue jitter in [0, 0.5] (docs/spec.md §5: 0.1).
        p: probability of jittering each sample (default 0.8).
        seed: int or None.

    Example:
        >>> jitter = ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8, seed=0)
        >>> views = jitter(images)
    """

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8,
                 seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.brightness = check_positive(brightness, "brightness", allow_zero=True)
        self.contrast = check_positive(contrast, "contrast", allow_zero=True)
        self.saturation = check_positive(saturation, "saturation", allow_zero=True)
        self.hue = check_positive(hue, "hue", allow_zero=True)
        if self.hue > 0.5:
            raise ValueError(f"`hue` must be in [0, 0.5]; received {hue!r}.")

    def _factor(self, b, strength):
        return self._uniform((b, 1, 1, 1), max(0.0, 1.0 - strength), 1.0 + strength)

    def transform(self, x):
        b = ops.shape(x)[0]
        rgb = x.shape[-1] == 3
        gray = grayscale if rgb else (lambda t: t)
        if self.brightness > 0:
            x = ops.clip(x * self._factor(b, self.brightness), 0.0, 1.0)
        if self.contrast > 0:
            c = self._factor(b, self.contrast)
            m = ops.mean(gray(x), axis=(1, 2, 3), keepdims=True)
            x = ops.clip(c * x + (1.0 - c) * m, 0.0, 1.0)
        if rgb and self.saturation > 0:
            s = self._factor(b, self.saturation)
            x = ops.clip(s * x + (1.0 - s) * gray(x), 0.0, 1.0)
        if rgb and self.hue > 0:
            delta = self._uniform((b, 1, 1), -self.hue, self.hue)
            hsv = ops.image.rgb_to_hsv(x, data_format="channels_last")
            h = hsv[..., 0] + delta
            h = h - ops.floor(h)
            hsv = ops.concatenate([ops.expand_dims(h, -1), hsv[..., 1:]], axis=-1)
            x = ops.clip(ops.image.hsv_to_rgb(hsv, data_format="channels_last"), 0.0, 1.0)
        return x

    def get_config(self):
        return {**super().get_config(), "brightness": self.brightness,
                "contrast": self.contrast, "saturation": self.saturation, "hue": self.hue}


@register
class RandomGrayscale(ColourOp):
    """Random conversion to grayscale: every channel becomes ``0.299 R + 0.587 G + 0.114 B``.

    One-channel images are returned unchanged.

    Args:
        p: probability of converting each sample (default 0.2).
        seed: int or None.

    Example:
        >>> views = RandomGrayscale(p=0.2, seed=0)(images)
    """

    def __init__(self, p=0.2, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)

    def transform(self, x):
        if x.shape[-1] != 3:
            return x
        return ops.repeat(grayscale(x), 3, axis=-1)


@register
class RandomSolarize(RandomOp):
    """Random solarisation: ``x ← 1 - x`` where ``x >= threshold`` (pixel-wise).

    Args:
        threshold: in [0, 1] (default 0.5, i.e. 128/255 on 8-bit images).
        p: probability of solarising each sample (default 0.1).
        seed: int or None.

    Example:
        >>> views = RandomSolarize(threshold=0.5, p=0.1, seed=0)(images)
    """

    def __init__(self, threshold=0.5, p=0.1, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.threshold = check_probability(threshold, "threshold")

    def transform(self, x):
        return ops.where(x >= self.threshold, 1.0 - x, x)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}
