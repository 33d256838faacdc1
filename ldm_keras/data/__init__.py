"""Datasets: bundled (digits), generated (dot motion, state-space systems, pendulum),
downloaded for users with a network (CIFAR), and loaders for arrays and HDF5 files."""

from . import arrays, cifar, digits, dot_motion, pairs, pendulum, state_space  # noqa: F401
from .windows import iter_windows, window_index, windows  # noqa: F401
