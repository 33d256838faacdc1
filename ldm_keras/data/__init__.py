"""Datasets: bundled (digits), generated (dot motion, state-space systems, pendulum),
downloaded for users with a network (CIFAR), loaders for arrays and HDF5 files, and the
datasets by name that the training jobs read (:mod:`.datasets`)."""

from . import (  # noqa: F401
    arrays,
    cifar,
    datasets,
    digits,
    dot_motion,
    pairs,
    pendulum,
    render,
    state_space,
)
from .datasets import load_image_dataset, load_sequence_dataset  # noqa: F401
from .windows import iter_windows, window_index, windows  # noqa: F401
