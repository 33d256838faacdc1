"""A registry of named components: ``@registry.register("name")`` and ``registry.get("name", **kw)``.

Priors (``ldm_keras.priors.get("vmf")``), entropy estimators
(``ldm_keras.entropy.get("knn", k=3)``), augmentation ops and recipes are looked up by
name through one of these instead of chains of ``if`` over strings. An unknown name is a
``ValueError`` that lists the known ones (and the closest matches).
"""

import difflib


class Registry:
    """Names → factories (a class or a function returning the component).

    Example:
        >>> PRIORS = Registry("prior")
        >>> @PRIORS.register("vmf")
        ... class VonMisesFisher(Prior): ...
        >>> PRIORS.get("vmf", precision=5.0)       # VonMisesFisher(precision=5.0)
        >>> PRIORS.names()                         # ['vmf', ...]
    """

    def __init__(self, kind):
        self.kind = kind
        self._factories = {}

    def register(self, name, factory=None):
        """Register ``factory`` under ``name``; without ``factory``, a decorator."""
        def add(obj):
            if name in self._factories and self._factories[name] is not obj:
                raise ValueError(f"A {self.kind} named {name!r} is already registered.")
            self._factories[name] = obj
            return obj

        return add if factory is None else add(factory)

    def lookup(self, name):
        """The factory registered under ``name`` (a ``ValueError`` naming the known ones)."""
        if name not in self._factories:
            close = difflib.get_close_matches(str(name), list(self._factories), n=3)
            hint = f" Did you mean {close}?" if close else ""
            raise ValueError(
                f"Unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {self.names()}.")
        return self._factories[name]

    def get(self, name, **kwargs):
        """A new component: ``lookup(name)(**kwargs)``."""
        return self.lookup(name)(**kwargs)

    def names(self):
        """The registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name):
        return name in self._factories
