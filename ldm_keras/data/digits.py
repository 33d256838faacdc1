"""The scikit-learn handwritten digits (bundled with scikit-learn: no download).

1797 grayscale images of 8×8 pixels, 10 classes (0–9), raw values 0–16. The small
image set for SSL on a CPU: train an encoder with ``ldm_keras.augment.image_views(
"digits")`` and score it with :func:`ldm_keras.evaluation.evaluate_embeddings`.

Its raw-pixel baselines (linear probe with all labels and with 10 per class, k-NN,
k-means clustering: the numbers a learned representation has to beat) are in RESULTS.md,
"Digits"; ``tests/test_image_data.py`` checks them.
"""

import numpy as np

__all__ = ["load_digits"]

_SPLITS = (None, "train", "test", "all")


def load_digits(split=None, test_size=0.3, seed=0, image_shape=(8, 8, 1)):
    """Load the scikit-learn digits as float32 images in [0, 1] (raw values / 16).

    The train/test split is ``sklearn.model_selection.train_test_split`` stratified by
    label, with ``random_state=seed``.

    Args:
        split: None for ``((x_train, y_train), (x_test, y_test))``; ``"train"``,
            ``"test"`` or ``"all"`` (all 1797 images, in scikit-learn's order) for one
            ``(x, y)``.
        test_size: fraction of the images in the test split (default 0.3).
        seed: seed of the split (default 0).
        image_shape: shape of one image: ``(8, 8, 1)`` (default, NHWC for image
            encoders and ``image_views("digits")``), ``(8, 8)`` or ``(64,)``.

    Returns:
        float32 images ``(n, *image_shape)`` and int32 labels ``(n,)``.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_digits()
        >>> x_train.shape, x_test.shape
        ((1257, 8, 8, 1), (540, 8, 8, 1))
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    if split not in _SPLITS:
        raise ValueError(f"`split` must be one of {list(_SPLITS)}; received {split!r}.")
    image_shape = tuple(int(d) for d in image_shape)
    if int(np.prod(image_shape)) != 64:
        raise ValueError(f"`image_shape` must hold 64 values, e.g. (8, 8, 1), (8, 8) or "
                         f"(64,); received {image_shape}.")
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"`test_size` must be a fraction in (0, 1); received {test_size!r}.")
    data = _sk_load_digits()
    x = (data.data.astype("float32") / 16.0).reshape((-1, *image_shape))
    y = data.target.astype("int32")
    if split == "all":
        return x, y
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    if split == "train":
        return x_train, y_train
    if split == "test":
        return x_test, y_test
    return (x_train, y_train), (x_test, y_test)
