"""Evaluation of learned representations.

* classification read-outs (:mod:`.classification`): linear probe, k-NN accuracy,
  clustering accuracy with Hungarian matching;
* dynamics read-outs (:mod:`.dynamics`): R² of an affine read-out, rotation per step,
  calibration of predictive uncertainty;
* source separation (:mod:`.ica`): Amari index, matched source correlation.
"""

from .classification import *  # noqa: F401,F403
from .dynamics import *  # noqa: F401,F403
from .ica import *  # noqa: F401,F403
