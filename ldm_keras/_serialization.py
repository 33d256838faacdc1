"""Serialisation helpers: every ldm_keras object is serialisable under ``ldm_keras>``.

* :func:`register` — register a class with Keras so that saved files reload without
  ``custom_objects`` (and under ``safe_mode=True``);
* :func:`serialize` / :func:`deserialize` — the config of an optional sub-object
  (``None`` passes through; an object that is already built passes through).
"""

import keras


def register(cls):
    """Register ``cls`` with Keras so saved files reload without ``custom_objects``."""
    return keras.saving.register_keras_serializable(package="ldm_keras")(cls)


def serialize(obj):
    """``keras.saving.serialize_keras_object(obj)``, or ``None`` for ``None``."""
    return None if obj is None else keras.saving.serialize_keras_object(obj)


def deserialize(obj):
    """The object of a serialised config (a dict); anything else is returned as it is."""
    return keras.saving.deserialize_keras_object(obj) if isinstance(obj, dict) else obj
