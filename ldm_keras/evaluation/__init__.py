"""Evaluation of learned representations.

* classification read-outs (:mod:`.classification`): linear probe, k-NN accuracy,
  clustering accuracy with Hungarian matching;
* dynamics read-outs (:mod:`.dynamics`): R² of an affine read-out, eigen-angles,
  calibration of predictive uncertainty;
* source separation (:mod:`.ica`): Amari index, matched source correlation;
* label-free quality (:mod:`.representation`): effective rank (RankMe), per-dimension
  standard deviation, alignment and uniformity (Wang & Isola);
* consistency across runs (:mod:`.consistency`): R² of the best affine map between two
  embeddings of the same inputs, both ways;
* trained encoders on data (:mod:`.encoders`): what the training jobs and the zoo report.
"""

from .classification import *  # noqa: F401,F403
from .consistency import Consistency, consistency  # noqa: F401
from .dynamics import *  # noqa: F401,F403
from .encoders import *  # noqa: F401,F403
from .ica import *  # noqa: F401,F403
from .representation import (  # noqa: F401
    alignment,
    dimension_std,
    effective_rank,
    normalize_rows,
    uniformity,
)
