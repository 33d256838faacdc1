"""The sequence recipes (frames over time; a predictive, CPC or JEPA model).

The data are ``(batch, time, *frame)``; the encoder is applied to every frame.
"""

import math

from .. import priors
from .._validation import check_choice
from ..entropy import KNNEntropy
from ..models.encoders import mlp
from ..models.predictive import PredictiveLDM
from ..models.sequence import CPCLDM, JEPALDM
from ..predictors import KalmanCell, KalmanFilter, RecurrentPredictor
from . import components
from .base import add, feature_dim

add("cpc", "CPC: a GRU context c_t over past latents predicts z_{t+k} (k = 1..3) by W_k c_t; "
    "vMF latent model (cosine × κ = 10) and vMF-KDE entropy over the other sequences of the "
    "batch at the same time step — InfoNCE over time.", kind="sequence",
    model="cpc", context_units=64, context_cell="gru", prediction_steps=3, score="vmf",
    precision=10.0, entropy_weight=1.0, learning_rate=1e-3)
add("jepa", "JEPA over time: a GRU predictor of z_t from z_<t against stop-gradient targets "
    "of an EMA target encoder (m = 0.99); isotropic Gaussian latent model (MSE), implicit "
    "entropy.", kind="sequence",
    model="jepa", units=64, cell="gru", hidden_units=(64,), precision=1.0,
    ema_momentum=0.99, learning_rate=1e-3)
#: The kalman-ssl recipe's multipliers: the dynamics at 30× the encoder's rate, not the
#: reference's 100× (PredictiveLDM's default), which at 3× the recipe's lr makes 3 of 5
#: seeds on DotMotion circular lock on twice the true frequency
#: (benchmarks/robustness/results/kalman/README.md).
KALMAN_SSL_MULTIPLIERS = {"dynamics": 30.0, "noise_network": 10.0, "observation_noise": 0.03}

add("kalman-ssl", "KalmanSSL: PredictiveLDM + Kalman filter (state = latent size), "
    "innovation likelihood with stop-gradient targets (implicit entropy); the transition "
    "starts as rotations of the state pairs by spread angles up to π/8 per step; dynamics "
    "lr ×30, spectral radius ≤ 1.02; Adam 1e-4 with cosine decay.", kind="sequence",
    model="kalman", state_dim=None, observation_noise_init=0.1, process_noise_init=0.01,
    clamp_radius=1.02, entropy=None, learning_rate=1e-4, schedule="cosine",
    initial_rotation=math.pi / 8, lr_multipliers=KALMAN_SSL_MULTIPLIERS)
add("kalman-ssl-knn", "KalmanSSL with explicit entropy: the Kalman innovation likelihood with "
    "differentiated targets plus the k-NN entropy (k = 3) of the latents pooled over "
    "batch × time.", kind="sequence",
    model="kalman", state_dim=None, observation_noise_init=0.1, process_noise_init=0.01,
    clamp_radius=1.02, entropy="knn", k=3, entropy_weight=1.0, learning_rate=1e-4,
    schedule="cosine")
add("recurrent-ldm", "Recurrent LDM: PredictiveLDM + RecurrentPredictor (GRU 64 + MLP) with a "
    "learned per-dimension constant variance, Gaussian latent model with differentiated "
    "targets, the first step of each window left out of the NLL, one learning rate for "
    "encoder and predictor, and an explicit entropy taken per time step over the batch's "
    "windows: k-NN (k = 3) with the latents' two-NN intrinsic dimension as its dimension "
    "factor by default, 'gaussian-kde' or 'logdet' as options.", kind="sequence",
    model="recurrent", units=64, cell="gru", hidden_units=(64,), variance="diagonal",
    entropy="knn", k=3, entropy_weight=1.0, entropy_dimension="intrinsic",
    entropy_pooling="per-step", skip_first=1, lr_multipliers=None, learning_rate=1e-3)

#: Settings every sequence recipe accepts as overrides (besides its own defaults).
SETTINGS = {"entropy_weight", "learning_rate", "schedule", "precision",
            "entropy_precision", "k", "clip_quantile"}

#: Further settings of the predictive (Kalman, recurrent) recipes: ``lr_multipliers``
#: (``"default"``: PredictiveLDM's; ``None``: one learning rate), ``lr_warmup_steps``
#: (``{group: steps}``: a linear ramp of the group's rate from 0; ``None``, the default:
#: none. ``{"dynamics": 1000}`` helps DotMotion figure-eight, 5 of 10 runs at R² >= 0.99
#: against 0 of 10, but breaks noisy circular with jumps and runs of a few hundred
#: steps: benchmarks/robustness/results/kalman/README.md); for the recurrent
#: recipe ``variance`` (``"diagonal"``, ``"softplus"``, ``"constant"``: the
#: RecurrentPredictor's), ``skip_first``, ``entropy_pooling`` (``"per-step"`` or
#: ``"pooled"``: PredictiveLDM's) and ``entropy_dimension`` (``"intrinsic"`` or
#: ``"ambient"``: the k-NN estimator's dimension factor; other estimators ignore it);
#: and, for the Kalman
#: filter, ``noise_encoder`` (hidden widths of a per-frame network that infers the
#: observation noise, for vector frames; ``None``: a learned constant),
#: ``transition_seed`` (the seed of the Kalman cell's initialisers) and
#: ``initial_rotation`` (``KalmanCell``'s: ``None``, or the largest angle of a transition
#: started as spread rotations).
PREDICTIVE_SETTINGS = {"recurrent": {"lr_multipliers", "lr_warmup_steps", "variance",
                                     "skip_first", "entropy_pooling", "entropy_dimension"},
                       "kalman": {"lr_multipliers", "lr_warmup_steps", "noise_encoder",
                                  "transition_seed", "initial_rotation"}}

#: The explicit entropies the recurrent recipe offers.
RECURRENT_ENTROPIES = ("knn", "gaussian-kde", "logdet")


def settings(recipe):
    """The settings ``recipe`` accepts."""
    model = recipe.defaults["model"]
    allowed = set(recipe.defaults) | SETTINGS | PREDICTIVE_SETTINGS.get(model, set())
    if model == "recurrent":
        allowed.add("entropy")
    return allowed


def check(recipe, o):
    """Check the settings ``o`` that have a fixed set of values."""
    if recipe.defaults["model"] == "recurrent":
        o["entropy"] = components.entropy_name(o["entropy"])
        check_choice(o["entropy"], "entropy", RECURRENT_ENTROPIES)
        check_choice(o["variance"], "variance", ("diagonal", "softplus", "constant"))
        check_choice(o["entropy_pooling"], "entropy_pooling", ("per-step", "pooled"))
        check_choice(o["entropy_dimension"], "entropy_dimension", ("intrinsic", "ambient"))
    return o


def _cpc(name, encoder, o):
    return CPCLDM(encoder, context_units=o["context_units"], context_cell=o["context_cell"],
                  prediction_steps=o["prediction_steps"], score=o["score"],
                  precision=o["precision"], entropy_weight=o["entropy_weight"], name=name)


def _jepa(name, encoder, o):
    predictor = RecurrentPredictor(units=o["units"], cell=o["cell"],
                                   hidden_units=tuple(o["hidden_units"]), variance="constant")
    return JEPALDM(encoder, predictor=predictor,
                   prior=priors.get("gaussian", precision=o["precision"]),
                   ema_momentum=o["ema_momentum"], name=name)


def _kalman(name, encoder, o):
    dim = feature_dim(encoder)
    entropy = components.entropy(o)
    noise_encoder = None
    if o.get("noise_encoder") is not None:
        frame = encoder.input_shape[1:]
        if len(frame) != 1:
            raise ValueError(f"`noise_encoder` needs vector frames (features,); the encoder "
                             f"takes frames of shape {tuple(frame)}.")
        noise_encoder = mlp(frame[0], tuple(o["noise_encoder"]), dim, batch_norm=False,
                            name="noise_encoder")
    cell = KalmanCell(state_dim=o["state_dim"] or dim, observation_dim=dim,
                      observation_noise="learned" if noise_encoder is None else "input",
                      observation_noise_init=o["observation_noise_init"],
                      process_noise_init=o["process_noise_init"],
                      stop_gradient_targets=entropy is None, seed=o.get("transition_seed"),
                      initial_rotation=o.get("initial_rotation"))
    return PredictiveLDM(encoder, KalmanFilter(cell, return_covariances=False),
                         entropy=entropy, entropy_weight=o.get("entropy_weight", 1.0),
                         noise_encoder=noise_encoder, clamp_radius=o["clamp_radius"],
                         lr_multipliers=o.get("lr_multipliers", "default"),
                         lr_warmup_steps=o.get("lr_warmup_steps"), name=name)


def _recurrent(name, encoder, o):
    entropy = components.entropy(o)
    if isinstance(entropy, KNNEntropy) and o["entropy_dimension"] != "ambient":
        entropy = KNNEntropy(k=o.get("k", 3), clip_quantile=o.get("clip_quantile"),
                             dimension=o["entropy_dimension"])
    predictor = RecurrentPredictor(units=o["units"], cell=o["cell"],
                                   hidden_units=tuple(o["hidden_units"]),
                                   variance=o["variance"], stop_gradient_targets=entropy is None)
    return PredictiveLDM(encoder, predictor, entropy=entropy,
                         entropy_weight=o.get("entropy_weight", 1.0),
                         entropy_pooling=o["entropy_pooling"] if entropy is not None
                         else "pooled",
                         skip_first=o["skip_first"],
                         lr_multipliers=o.get("lr_multipliers", "default"),
                         lr_warmup_steps=o.get("lr_warmup_steps"), name=name)


#: model kind -> builder.
MODELS = {"cpc": _cpc, "jepa": _jepa, "kalman": _kalman, "recurrent": _recurrent}


def build(recipe, encoder, views, o):
    """The uncompiled sequence model of settings ``o``."""
    if views is not None:
        raise ValueError(f"Recipe {recipe.name!r} is a sequence recipe: it takes no `views` "
                         "(the data are sequences of frames).")
    feature_dim(encoder)
    return MODELS[o["model"]](recipe.name.replace("-", "_"), encoder, o)
