"""The base of the random image ops: :class:`RandomOp` applies an op per sample with probability ``p``.

Every op is a Keras layer that maps a batch of images ``(B, H, W, C)`` with values in
``[0, 1]`` to one augmented view of the same shape, in float32 whatever the dtype policy.
Randomness comes only from ``keras.random`` with the layer's own
``keras.random.SeedGenerator``, so the ops run inside a compiled ``train_step`` on every
backend (under ``jax.jit`` through ``stateless_call``, whose non-trainable variables
carry the seed states). ``out_b = op(x)_b if u_b < p else x_b`` with ``u_b ~ U[0, 1)``.
With ``training=False`` every op is the identity; called outside any training context,
``training`` defaults to ``True`` (the layers exist to make views).
"""

import keras
from keras import ops

from .. import backend
from .._validation import check_probability, check_rank, check_seed

#: ITU-R BT.601 luma weights (the ones torchvision and PIL use for grayscale).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def as_images(x):
    """Cast to float32 and check the (batch, height, width, channels) layout."""
    x = ops.cast(x, "float32")
    check_rank(x, 4, "images", "(batch, height, width, channels)")
    return x


def spatial(x):
    """Static (H, W, C) when known, else dynamic values."""
    shape = tuple(x.shape)
    dyn = ops.shape(x)
    return tuple(shape[i] if shape[i] is not None else dyn[i] for i in (1, 2, 3))


def grayscale(x):
    """Luma ``0.299 R + 0.587 G + 0.114 B`` keeping a channel axis of 1."""
    w = ops.convert_to_tensor(LUMA_WEIGHTS, dtype="float32")
    return ops.sum(x * w, axis=-1, keepdims=True)


class RandomOp(keras.layers.Layer):
    """Base of the random image ops: applies :meth:`transform` with probability ``p``.

    Subclasses implement ``transform(images)`` on a float32 batch (and may draw random
    numbers with ``self._uniform``/``self._normal``).

    Example (a new op; register it to make it serialisable):
        >>> @keras.saving.register_keras_serializable(package="my_project")
        ... class RandomInvert(RandomOp):
        ...     def transform(self, x):
        ...         return 1.0 - x
        >>> views = RandomInvert(p=0.5, seed=0)(images)
    """

    def __init__(self, p=1.0, seed=None, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.p = check_probability(p)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def _uniform(self, shape, low=0.0, high=1.0):
        return self._draw(lambda s: keras.random.uniform(
            s, minval=low, maxval=high, dtype="float32", seed=self.seed_generator), shape)

    def _normal(self, shape):
        return self._draw(lambda s: keras.random.normal(
            s, dtype="float32", seed=self.seed_generator), shape)

    @staticmethod
    def _draw(sample, shape):
        """``sample(shape)`` (shape batch-first) for this replica's rows of the global batch.

        In a data-parallel step that runs once per replica (PyTorch processes, TensorFlow
        replicas) every replica holds the same generator state: drawing ``shape`` would
        give every replica the same augmentations. So the draw is made for the global
        batch, ``(R · b, ...)``, and replica ``r`` keeps rows ``[r b, (r + 1) b)`` — on
        PyTorch, whose processes hold contiguous shares, exactly what one process draws
        for the whole batch. One replica (and JAX, one program over the global batch):
        ``sample(shape)`` itself.
        """
        count = backend.num_replicas()
        if count == 1:
            return sample(shape)
        shape = tuple(shape)
        full = sample((count * shape[0],) + shape[1:])
        full = ops.reshape(full, (count, shape[0]) + shape[1:])
        return ops.take(full, backend.replica_index(), axis=0)

    def _check_channels(self, x):
        return x

    def call(self, images, training=True):
        x = self._check_channels(as_images(images))
        if not training or self.p == 0.0:
            return x
        y = self.transform(x)
        if self.p == 1.0:
            return y
        apply = self._uniform((ops.shape(x)[0], 1, 1, 1)) < self.p
        return ops.where(apply, y, x)

    def transform(self, x):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, images, training=True):
        return keras.KerasTensor(self.compute_output_shape(images.shape), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "p": self.p, "seed": self.seed}
