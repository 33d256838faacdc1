"""What a recipe is, and the registry of every recipe."""

from dataclasses import dataclass, field

from .._registry import Registry

#: The kinds of recipe: what data they train on and what ``build`` returns.
KINDS = ("multiview", "sequence")


@dataclass(frozen=True)
class Recipe:
    """A named method: how to build it and what LDM choice it makes.

    ``kind`` is ``"multiview"`` (pairs of views of images; builds a
    :class:`~ldm_keras.models.MultiViewLDM`) or ``"sequence"`` (sequences of frames; builds
    a :class:`~ldm_keras.models.PredictiveLDM`, :class:`~ldm_keras.models.CPCLDM` or
    :class:`~ldm_keras.models.JEPALDM`).
    """

    name: str
    summary: str
    defaults: dict = field(default_factory=dict)
    kind: str = "multiview"


#: Every recipe by name.
RECIPES = Registry("recipe")


def add(name, summary, kind="multiview", **defaults):
    """Register the recipe ``name`` with its default settings."""
    return RECIPES.register(name, Recipe(name, summary, defaults, kind=kind))


def feature_dim(encoder):
    """The encoder's output size (a clear error when it is not known)."""
    shape = getattr(encoder, "output_shape", None)
    if shape is None or not isinstance(shape, tuple) or shape[-1] is None:
        raise ValueError(
            "Cannot infer the encoder's output size; pass an encoder with a known "
            "output shape (a functional or sequential keras.Model)."
        )
    return int(shape[-1])
