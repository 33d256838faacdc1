"""The zoo's loading layer: Keras objects from an entry's checked files.

Every file is checked by :mod:`.index` (size, SHA-256, confinement) before anything here
parses it; configs are checked for the objects they ask for (:mod:`._schema`) and then
rebuilt under Keras' ``safe_mode=True``; the bytes of the weights a config would create
are measured, without allocating them, before it is built (:mod:`._limits`).
"""

import copy

import keras

from .. import recipes
from ..augment import image_views
from . import _limits, _schema, index
from ._errors import ZooError, ZooFormatError, ZooUnsafeConfigError


def check_has_weights(name, entry):
    """Refuse an entry published without weights, saying how to build them."""
    if not entry.get("weights", True):
        raise ZooError(
            f"Zoo entry {name!r} is a recipe without published weights. "
            f"{entry.get('how_to_build', f'Build it with `ldm-keras zoo build {name}`.')}")


def first_line(e, limit=300):
    """The gist of an exception in one line: for Keras' nested deserialisation errors the
    innermost cause (its last ``Exception encountered:``), else the first line."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    marker = "Exception encountered:"
    inner = [ln.split(marker, 1)[1].strip() for ln in lines if marker in ln]
    text = (inner[-1] if inner and inner[-1] else lines[0]) if lines else type(e).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def deserialize(config, where="a zoo config"):
    """Rebuild a Keras object from a zoo config: its objects checked first
    (:func:`._schema.check_keras_objects`), then Keras' ``safe_mode=True``."""
    # The training compile settings (optimizer, per-group learning rates) are not part of
    # a published model; loading returns it uncompiled.
    if isinstance(config, dict) and config.get("compile_config") is not None:
        config = {**config, "compile_config": None}
    _schema.check_keras_objects(config, where)
    try:  # Keras consumes the config it is given: give it a copy
        return keras.saving.deserialize_keras_object(copy.deepcopy(config), safe_mode=True)
    except Exception as e:  # Keras raises ValueError, TypeError, KeyError, ...
        if "safe_mode" in str(e) or "unsafe" in str(e):
            raise ZooUnsafeConfigError(f"{where}: refused by Keras' safe mode: "
                                       f"{first_line(e)}") from e
        raise ZooFormatError(f"{where}: Keras could not rebuild it from its config: "
                             f"{first_line(e)}") from e


def component(files, config, part, name="?", budget=None):
    """Part ``part`` with its weights; the bytes its weights take are measured first,
    without allocating them, and must fit in ``budget`` (default: the size cap)."""
    comp = config["components"][part]
    where = f"config.json of zoo entry {name!r}: component {part!r}"
    budget = _limits.max_bytes() if budget is None else budget

    def make():
        obj = deserialize(comp["config"], where)
        if comp.get("build_shape") is not None and not obj.built:
            obj.build(tuple(comp["build_shape"]))
        return obj

    _limits.check_weight_bytes(make, budget, where)
    obj = make()
    obj.load_weights(str(files[comp["weights"]]))
    return obj


def open_entry(name, max_bytes=None, root=None):
    """``(files, config)`` of an entry with weights, every file checked first."""
    root = index.real_root(root)
    entry = index.find_entry(name, index.read_index(root))
    check_has_weights(name, entry)
    files = index.files_of(root, name, entry, max_bytes=max_bytes)  # all checked first
    if "config.json" not in files:
        raise ZooFormatError(f"index.json: zoo entry {name!r} lists no config.json: "
                             "expected the entry's config among its files.")
    config = index.read_json(files["config.json"], f"config.json of zoo entry {name!r}")
    return files, _schema.check_config(config, name, files)


def _part(config, name, part):
    if part not in config["components"]:
        raise ZooFormatError(f"config.json of zoo entry {name!r} has no component {part!r}: "
                             f"it has {sorted(config['components'])}.")
    return part


def load(name, trainable=False, max_bytes=None, root=None):
    """The entry's encoder as a Keras model, ready for ``predict`` or fine-tuning.

    Every file is checked against the index (size and SHA-256) first; the encoder is
    rebuilt from its Keras config under ``safe_mode=True`` and its weights loaded. With
    ``trainable=False`` (default) the encoder is frozen. ``max_bytes`` caps the files and
    the weights (default 2 GiB or ``$LDM_KERAS_ZOO_MAX_BYTES``; see :mod:`._limits`);
    ``root`` is the zoo directory (:func:`~.index.zoo_dir`).

    Example:
        >>> encoder = ldm_keras.zoo.load("digits-simclr")
        >>> z = encoder.predict(images)                 # images: (n, 8, 8, 1) in [0, 1]
    """
    files, config = open_entry(name, max_bytes, root)
    cap = _limits.max_bytes(max_bytes)
    if "encoder" in config["components"]:
        encoder = component(files, config, "encoder", name, cap)
    else:
        encoder = component(files, config, _part(config, name, "model"), name, cap).encoder
    encoder.trainable = bool(trainable)
    return encoder


def load_component(name, part, max_bytes=None, root=None):
    """One named part of an entry (``"encoder"``, ``"head"``, ``"model"``, ...)."""
    files, config = open_entry(name, max_bytes, root)
    if part not in config["components"]:
        raise ZooError(f"Zoo entry {name!r} has no part {part!r}; it has "
                       f"{sorted(config['components'])}.")
    return component(files, config, part, name, _limits.max_bytes(max_bytes))


def recipe_model(config, name, encoder, budget):
    """The recipe's MultiViewLDM around ``encoder``, its new weights measured first."""
    where = f"config.json of zoo entry {name!r}"
    recipe, settings = config.get("recipe"), config.get("settings", {})
    if not isinstance(recipe, str) or not isinstance(settings, dict):
        raise ZooFormatError(f"{where}: 'recipe' is {recipe!r:.80} and 'settings' is "
                             f"{settings!r:.80}: expected a recipe name and an object of its "
                             "settings.")

    def make():
        try:
            views = image_views(config["views"], seed=config["seed"]) \
                if config.get("views") else None
            return recipes.build(recipe, encoder, views=views, **settings)
        except (ValueError, TypeError, KeyError) as e:
            raise ZooFormatError(f"{where}: the recipe {recipe!r} with settings "
                                 f"{settings!r:.200} was refused: {first_line(e)}") from e

    _limits.check_weight_bytes(make, budget, f"{where}: recipe {recipe!r}")
    return make()


def load_model(name, max_bytes=None, root=None):
    """The full LDM model of an entry, weights loaded.

    * predictive entries: the :class:`~ldm_keras.models.PredictiveLDM` (encoder and
      Kalman filter or recurrent predictor), ready for ``predict`` on sequences;
    * multi-view entries: the recipe's :class:`~ldm_keras.models.MultiViewLDM` around
      the trained encoder, with the trained projector / head / predictor (BYOL's EMA
      target starts as a copy of the online network), uncompiled.

    Example:
        >>> model = ldm_keras.zoo.load_model("dotmotion-circular-noisy-kalman")
        >>> out = model.predict(frames)     # latents, prediction, prediction_cov, ...
    """
    files, config = open_entry(name, max_bytes, root)
    cap = _limits.max_bytes(max_bytes)
    comps = config["components"]
    if "model" in comps:
        return component(files, config, "model", name, cap)
    encoder = component(files, config, _part(config, name, "encoder"), name, cap)
    model = recipe_model(config, name, encoder,
                          cap - _limits.variable_bytes(encoder.variables))
    for part, attr in (("head", "projector"), ("projector", "projector"),
                       ("predictor", "predictor")):
        if part in comps:
            getattr(model, attr).load_weights(str(files[comps[part]["weights"]]))
    return model
