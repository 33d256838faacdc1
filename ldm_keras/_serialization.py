"""Registration helper: every ldm_keras object is serialisable under ``ldm_keras>``."""

import keras


def register(cls):
    """Register ``cls`` with Keras so saved files reload without ``custom_objects``."""
    return keras.saving.register_keras_serializable(package="ldm_keras")(cls)
