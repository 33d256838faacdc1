"""Evaluation of learned representations.

* classification read-outs (:mod:`.classification`): linear probe, k-NN accuracy,
  clustering accuracy with Hungarian matching;
* dynamics read-outs (:mod:`.dynamics`): R² of an affine read-out, eigen-angles,
  calibration of predictive uncertainty;
* source separation (:mod:`.ica`): Amari index, matched source correlation;
* trained encoders on data (:mod:`.encoders`): what the training jobs and the zoo report.
"""

from .classification import *  # noqa: F401,F403
from .dynamics import *  # noqa: F401,F403
from .encoders import *  # noqa: F401,F403
from .ica import *  # noqa: F401,F403
