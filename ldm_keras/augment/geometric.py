"""Geometric ops: random resized crop, random affine (rotation, shift, zoom), random flip."""

import math

from keras import ops

from .._serialization import register
from .._validation import (
    check_choice,
    check_int,
    check_interval,
    check_positive,
)
from .base import RandomOp, spatial
from .resample import affine


@register
class RandomResizedCrop(RandomOp):
    """Random resized crop: a random box of the image, resized back to ``(H, W)``.

    Per sample, draw an area fraction ``s ~ U(scale)`` and a log aspect ratio
    ``log r ~ U(log ratio)``; the box is ``w = sqrt(s·r·H·W)``, ``h = sqrt(s·H·W / r)``
    pixels, accepted when it fits in the image (``attempts`` vectorised tries, the
    first that fits is used; if none fits, the whole image). Its corner is uniform,
    ``x0 ~ U[0, W - w]``, ``y0 ~ U[0, H - h]``, and the output pixel ``(i, j)`` reads
    the input at (pixel centres aligned)

        x_in = x0 + (j + 1/2)·w/W - 1/2,   y_in = y0 + (i + 1/2)·h/H - 1/2

    by bilinear interpolation (a gather-based affine sampler). Differences from
    torchvision's ``RandomResizedCrop``: the box has real-valued size and corner (not
    rounded to pixels) and the resize is bilinear without antialiasing.

    Args:
        scale: range of the area fraction; ``(0.2, 1.0)`` or ``(0.08, 1.0)`` in docs/spec.md §5.
        ratio: range of the aspect ratio ``w/h``; default ``(3/4, 4/3)``.
        attempts: number of candidate boxes drawn per sample (default 10).
        p: probability of cropping each sample (default 1).
        seed: int or None, seed of the layer's ``SeedGenerator``.

    Example:
        >>> crop = RandomResizedCrop(scale=(0.2, 1.0), seed=0)
        >>> views = crop(images)                      # (B, H, W, C) -> (B, H, W, C)
    """

    def __init__(self, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), attempts=10, p=1.0,
                 seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.scale = check_interval(scale, "scale", 0.0, 1.0, positive=True)
        self.ratio = check_interval(ratio, "ratio", positive=True)
        self.attempts = check_int(attempts, "attempts", minimum=1)

    def transform(self, x):
        h_img, w_img, _ = spatial(x)
        hf, wf = ops.cast(h_img, "float32"), ops.cast(w_img, "float32")
        b = ops.shape(x)[0]
        area = self._uniform((b, self.attempts), *self.scale) * hf * wf
        log_r = self._uniform((b, self.attempts), math.log(self.ratio[0]),
                              math.log(self.ratio[1]))
        r = ops.exp(log_r)
        w = ops.sqrt(area * r)
        h = ops.sqrt(area / r)
        fits = ops.logical_and(w <= wf, h <= hf)
        first = ops.expand_dims(ops.argmax(ops.cast(fits, "int32"), axis=1), 1)
        any_fits = ops.any(fits, axis=1)
        w = ops.where(any_fits, ops.take_along_axis(w, first, axis=1)[:, 0], wf)
        h = ops.where(any_fits, ops.take_along_axis(h, first, axis=1)[:, 0], hf)
        x0 = self._uniform((b,)) * (wf - w)
        y0 = self._uniform((b,)) * (hf - h)
        sx, sy = w / wf, h / hf
        zero = ops.zeros_like(sx)
        rows = ops.stack([sx, zero, x0 + 0.5 * sx - 0.5,
                          zero, sy, y0 + 0.5 * sy - 0.5], axis=1)
        return affine(x, rows, "nearest")

    def get_config(self):
        return {**super().get_config(), "scale": list(self.scale), "ratio": list(self.ratio),
                "attempts": self.attempts}


@register
class RandomAffine(RandomOp):
    """Random rotation, shift and zoom about the image centre (for small images).

    Per sample, ``θ ~ U[-rotation, rotation]`` (degrees), ``t ~ U[-translation,
    translation]²`` (pixels) and ``s ~ U(scale)``; the forward map is
    ``p_out = s·R(θ)(p_in - c) + c + t`` with ``c`` the image centre, sampled backwards
    (``p_in = R(-θ)(p_out - c - t)/s + c``) with bilinear interpolation; points outside
    the image take ``fill_value`` (0: the background of the digits).

    Args:
        rotation: largest rotation in degrees (default 12).
        translation: largest shift in pixels along each axis (default 1).
        scale: range of the zoom factor (default ``(1, 1)``: no zoom).
        fill_value: value outside the image (default 0).
        p: probability of transforming each sample (default 1).
        seed: int or None.

    Example:
        >>> jitter = RandomAffine(rotation=12.0, translation=1.0, seed=0)
        >>> views = jitter(digits)                    # (B, 8, 8, 1)
    """

    def __init__(self, rotation=12.0, translation=1.0, scale=(1.0, 1.0), fill_value=0.0,
                 p=1.0, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.rotation = check_positive(rotation, "rotation", allow_zero=True)
        self.translation = check_positive(translation, "translation", allow_zero=True)
        self.scale = check_interval(scale, "scale", positive=True)
        self.fill_value = float(fill_value)

    def transform(self, x):
        h_img, w_img, _ = spatial(x)
        b = ops.shape(x)[0]
        theta = self._uniform((b,), -1.0, 1.0) * (self.rotation * math.pi / 180.0)
        tx = self._uniform((b,), -1.0, 1.0) * self.translation
        ty = self._uniform((b,), -1.0, 1.0) * self.translation
        s = self._uniform((b,), *self.scale)
        cx = (ops.cast(w_img, "float32") - 1.0) / 2.0
        cy = (ops.cast(h_img, "float32") - 1.0) / 2.0
        cos, sin = ops.cos(theta) / s, ops.sin(theta) / s
        # p_in = M (p_out - c - t) + c with M = R(-θ)/s = [[cos, sin], [-sin, cos]] / s
        ux, uy = cx + tx, cy + ty
        a2 = cx - (cos * ux + sin * uy)
        b2 = cy - (-sin * ux + cos * uy)
        rows = ops.stack([cos, sin, a2, -sin, cos, b2], axis=1)
        return affine(x, rows, "constant", self.fill_value)

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation,
                "translation": self.translation, "scale": list(self.scale),
                "fill_value": self.fill_value}


@register
class RandomFlip(RandomOp):
    """Random mirror image: ``out[:, i, j] = x[:, i, W-1-j]`` (horizontal) with prob. ``p``.

    Args:
        mode: ``"horizontal"`` (default) or ``"vertical"``.
        p: probability of flipping each sample (default 0.5).
        seed: int or None.

    Example:
        >>> flip = RandomFlip(p=0.5, seed=0)
        >>> views = flip(images)
    """

    def __init__(self, mode="horizontal", p=0.5, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.mode = check_choice(mode, "mode", {"horizontal", "vertical"})

    def transform(self, x):
        return ops.flip(x, axis=2 if self.mode == "horizontal" else 1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
