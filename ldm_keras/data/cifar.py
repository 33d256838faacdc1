"""CIFAR-10 and CIFAR-100 through ``keras.datasets`` (downloads on first use).

The images come from Keras' own loaders (``keras.datasets.cifar10/cifar100.load_data``,
which download the official archive into ``$KERAS_HOME/datasets`` once, check its
SHA-256 and read the official batches); this module only converts them: float32 in
[0, 1] (``uint8 / 255``), NHWC ``(n, 32, 32, 3)`` whatever
``keras.config.image_data_format()``, and int32 labels of shape ``(n,)``. It needs a
network connection the first time. docs/spec.md §5 trains ResNet-18 on these with
``ldm_keras.augment.image_views("cifar")``.
"""

import numpy as np

__all__ = ["load_cifar", "NUM_CLASSES"]

#: Number of classes of each dataset (CIFAR-100 per label mode).
NUM_CLASSES = {"cifar10": 10, "cifar100": {"fine": 100, "coarse": 20}}


def _to_float_nhwc(x, name):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected images of rank 4 from keras.datasets; "
                         f"received shape {x.shape}.")
    if x.shape[-1] != 3 and x.shape[1] == 3:  # channels_first from keras.datasets
        x = np.transpose(x, (0, 2, 3, 1))
    return np.ascontiguousarray(x, dtype="float32") / np.float32(255.0)


def load_cifar(name="cifar10", label_mode="fine", split=None):
    """Load CIFAR-10 or CIFAR-100 as float32 NHWC images in [0, 1].

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        label_mode: for CIFAR-100, ``"fine"`` (100 classes, default) or ``"coarse"``
            (20 super-classes); ignored for CIFAR-10.
        split: None for ``((x_train, y_train), (x_test, y_test))``; ``"train"`` or
            ``"test"`` for one ``(x, y)``.

    Returns:
        Images ``(n, 32, 32, 3)`` float32 (``uint8 / 255``) and int32 labels ``(n,)``;
        50 000 train and 10 000 test images.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_cifar("cifar10")
        >>> x_train.shape, x_train.dtype
        ((50000, 32, 32, 3), dtype('float32'))
    """
    import keras

    if name not in ("cifar10", "cifar100"):
        raise ValueError(f"`name` must be 'cifar10' or 'cifar100'; received {name!r}.")
    if split not in (None, "train", "test"):
        raise ValueError(f"`split` must be None, 'train' or 'test'; received {split!r}.")
    if name == "cifar10":
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    else:
        if label_mode not in ("fine", "coarse"):
            raise ValueError(f"`label_mode` must be 'fine' or 'coarse'; "
                             f"received {label_mode!r}.")
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar100.load_data(
            label_mode=label_mode)

    def convert(x, y):
        return _to_float_nhwc(x, name), np.asarray(y).reshape(-1).astype("int32")

    if split == "train":
        return convert(x_train, y_train)
    if split == "test":
        return convert(x_test, y_test)
    return convert(x_train, y_train), convert(x_test, y_test)
