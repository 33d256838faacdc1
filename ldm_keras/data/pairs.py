"""Pairs of samples as the two "views" of LDM (docs/spec.md §5, MNIST clustering).

The reference clustering experiment pairs each image with another image *of the same
class*; the pair, not the label, is what the model sees (weak supervision by
co-occurrence, like neighbouring frames of a video). Evaluation then matches the
learned clusters to the labels.
"""

import numpy as np

__all__ = ["same_class_pairs"]


def same_class_pairs(x, y, partners=1, seed=0):
    """Pair every sample with ``partners`` random other samples of the same class.

    Returns ``(x1, x2)`` with ``len(x) · partners`` rows each: ``x1`` repeats each
    sample ``partners`` times, ``x2`` holds a partner drawn uniformly (without the
    sample itself) from its class.

    Args:
        x: samples, first axis the batch.
        y: integer labels, shape ``(N,)``; every class needs at least two samples.
        partners: partners per sample (≥ 1).
        seed: seed of the draw.

    Example:
        >>> (x, y), _ = ldm_keras.data.digits.load_digits()
        >>> x1, x2 = same_class_pairs(x, y, partners=2)
        >>> model.fit((x1, x2), epochs=20)
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"`y` must be a vector of {len(x)} labels; received shape {y.shape}.")
    partners = int(partners)
    if partners < 1:
        raise ValueError(f"`partners` must be >= 1; received {partners}.")
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            raise ValueError(f"Class {c!r} has {len(idx)} sample; pairs need at least 2.")
        for _ in range(partners):
            # a random offset in 1..n-1 never maps a sample onto itself
            offset = rng.integers(1, len(idx), size=len(idx))
            first.append(idx)
            second.append(idx[(np.arange(len(idx)) + offset) % len(idx)])
    first = np.concatenate(first)
    second = np.concatenate(second)
    order = rng.permutation(len(first))
    return x[first[order]], x[second[order]]
