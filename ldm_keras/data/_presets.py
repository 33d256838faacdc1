"""What the generated datasets share: named train/test presets, and dict-style access."""

import dataclasses

from .._validation import check_choice

SPLITS = ("train", "test")


def load_preset(generate, presets, name, split, num_sequences, overrides, fixed=("seed",)):
    """Call ``generate`` with preset ``name``'s arguments and its ``split``'s seed.

    ``presets[name]`` is ``(kwargs, n_train, n_test, seed_train, seed_test)``; the keys in
    ``fixed`` belong to the preset and may not be overridden.
    """
    check_choice(name, "name", tuple(presets))
    check_choice(split, "split", SPLITS)
    for key in fixed:
        if key in overrides:
            raise ValueError(
                f"`{key}` is fixed by the preset and the split (train/test); call "
                f"generate() for custom seeds. Received {key}={overrides[key]!r}."
            )
    kwargs, n_train, n_test, seed_train, seed_test = presets[name]
    args = {**kwargs, **overrides}
    if num_sequences is None:
        num_sequences = n_train if split == "train" else n_test
    seed = seed_train if split == "train" else seed_test
    return generate(num_sequences=num_sequences, seed=seed, **args)


class FieldAccess:
    """``data["frames"]`` as well as ``data.frames`` for the fields of a dataclass
    (a ``KeyError`` for anything else)."""

    def __getitem__(self, key):
        if key not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(key)
        return getattr(self, key)
