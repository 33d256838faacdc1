"""Filter and noise ops: random Gaussian blur, additive Gaussian noise, pixel dropout."""

from keras import ops

from .._serialization import register
from .._validation import (
    check_interval,
    check_positive,
    check_probability,
)
from .base import RandomOp


def _reflect_pad(x, r, axis):
    """Pad by ``r`` on both sides of ``axis`` mirroring about the edge pixels (d c b | a b c d)."""
    if r == 0:
        return x
    n = x.shape[axis]
    sl = [slice(None)] * 4
    sl[axis] = slice(1, r + 1)
    left = ops.flip(x[tuple(sl)], axis=axis)
    sl[axis] = slice(n - r - 1, n - 1)
    right = ops.flip(x[tuple(sl)], axis=axis)
    return ops.concatenate([left, x, right], axis=axis)


@register
class RandomGaussianBlur(RandomOp):
    """Random Gaussian blur with a per-sample width ``σ ~ U(sigma)``.

    Separable filtering with the normalised kernel
    ``k_σ(d) = exp(-d² / 2σ²) / Σ_{|e|<=r} exp(-e² / 2σ²)`` for ``|d| <= r``,
    ``r = kernel_size // 2``, along the width and then the height; the borders are
    reflected (``d c b | a b c d | c b a``).

    Args:
        sigma: range of σ in pixels (default ``(0.1, 2.0)``, as SimCLR).
        kernel_size: odd int, or None for 10 % of the image's smaller side rounded to
            an odd number, at least 3 (SimCLR's rule).
        p: probability of blurring each sample (default 0.5).
        seed: int or None.

    Example:
        >>> views = RandomGaussianBlur(sigma=(0.1, 2.0), p=0.5, seed=0)(images)
    """

    def __init__(self, sigma=(0.1, 2.0), kernel_size=None, p=0.5, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.sigma = check_interval(sigma, "sigma", positive=True)
        if kernel_size is not None and (
            isinstance(kernel_size, bool) or not isinstance(kernel_size, int)
            or kernel_size < 1 or kernel_size % 2 == 0
        ):
            raise ValueError(f"`kernel_size` must be an odd int >= 1 or None; "
                             f"received {kernel_size!r}.")
        self.kernel_size = kernel_size

    def _radius(self, h, w):
        if self.kernel_size is None:
            k = max(3, int(round(0.1 * min(h, w))) // 2 * 2 + 1)
        else:
            k = self.kernel_size
        return max(0, min(k // 2, h - 1, w - 1))

    def transform(self, x):
        h_img, w_img = x.shape[1], x.shape[2]
        if h_img is None or w_img is None:
            raise ValueError("RandomGaussianBlur needs a static image height and width; "
                             f"received shape {tuple(x.shape)}.")
        r = self._radius(h_img, w_img)
        if r == 0:
            return x
        b = ops.shape(x)[0]
        sigma = self._uniform((b, 1), *self.sigma)
        d = ops.expand_dims(ops.arange(-r, r + 1, dtype="float32"), 0)
        k = ops.exp(-0.5 * ops.square(d / sigma))
        k = k / ops.sum(k, axis=1, keepdims=True)  # (B, 2r+1)
        for axis, n in ((2, w_img), (1, h_img)):
            xp = _reflect_pad(x, r, axis)
            acc = 0.0
            for j in range(2 * r + 1):
                sl = [slice(None)] * 4
                sl[axis] = slice(j, j + n)
                acc = acc + ops.reshape(k[:, j], (-1, 1, 1, 1)) * xp[tuple(sl)]
            x = acc
        return x

    def get_config(self):
        return {**super().get_config(), "sigma": list(self.sigma),
                "kernel_size": self.kernel_size}


@register
class RandomGaussianNoise(RandomOp):
    """Additive Gaussian noise, ``x ← clip(x + σ·ε, clip)``, ``ε ~ N(0, I)``.

    Args:
        stddev: σ (default 0.1).
        clip: ``(low, high)`` to clip the result to, or None (default ``(0, 1)``).
        p: probability of adding noise to each sample (default 0.5).
        seed: int or None.

    Example:
        >>> views = RandomGaussianNoise(stddev=0.1, p=0.5, seed=0)(digits)
    """

    def __init__(self, stddev=0.1, clip=(0.0, 1.0), p=0.5, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.stddev = check_positive(stddev, "stddev", allow_zero=True)
        self.clip = None if clip is None else check_interval(clip, "clip")

    def transform(self, x):
        y = x + self.stddev * self._normal(ops.shape(x))
        return y if self.clip is None else ops.clip(y, *self.clip)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev,
                "clip": None if self.clip is None else list(self.clip)}


@register
class RandomPixelDropout(RandomOp):
    """Random pixel dropout: each pixel (all its channels) is set to ``fill_value``
    with probability ``rate``; no rescaling (unlike ``keras.layers.Dropout``).

    Args:
        rate: per-pixel drop probability (default 0.1).
        fill_value: value of dropped pixels (default 0).
        p: probability of applying dropout to each sample (default 0.5).
        seed: int or None.

    Example:
        >>> views = RandomPixelDropout(rate=0.1, p=0.5, seed=0)(digits)
    """

    def __init__(self, rate=0.1, fill_value=0.0, p=0.5, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.rate = check_probability(rate, "rate")
        self.fill_value = float(fill_value)

    def transform(self, x):
        shape = ops.shape(x)
        drop = self._uniform((shape[0], shape[1], shape[2], 1)) < self.rate
        return ops.where(drop, self.fill_value, x)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "fill_value": self.fill_value}
