"""What ``index.json`` and an entry's ``config.json`` must look like, checked before use.

* :func:`check_index` — the index's format, and for every entry a valid name and version,
  and for every file a valid name, an integer size, a SHA-256 of 64 hex digits and, if
  given, an ``https://`` / ``http://`` URL (:mod:`._paths`);
* :func:`check_config` — an entry's ``config.json``: its ``components``, each with a Keras
  config and a weights file the index lists;
* :func:`check_keras_objects` — every object a Keras config asks for comes from Keras'
  modelling modules or from ``ldm_keras``; no Python lambda, ``Lambda`` layer,
  ``TorchModuleWrapper`` (pickled code), ``builtins`` function or non-modelling Keras API
  (``keras.utils``, ``keras.config``, ``keras.saving``, ...). Keras' ``safe_mode`` refuses
  most of these too (how much depends on the Keras version); this check does not depend
  on it.

Each raises a :class:`~ldm_keras.zoo.ZooError` subclass whose message names the file, the
field, what was found and what was expected.

Example:
    >>> check_index(json.load(open("zoo/index.json")), "zoo/index.json")
"""

import re

from . import _paths
from ._errors import ZooFormatError, ZooUnsafeConfigError

FORMAT_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")

#: Keras modules a published model's config may take objects from (and their
#: ``keras.src`` counterparts); ``ldm_keras`` and its sub-modules are allowed too.
KERAS_MODULES = ("layers", "initializers", "regularizers", "constraints", "activations",
                 "optimizers", "losses", "metrics", "models", "ops", "dtype_policies",
                 "random")
#: Class names refused wherever they appear: they carry code.
REFUSED_CLASSES = ("__lambda__", "Lambda", "TorchModuleWrapper")
#: Special Keras config records that hold plain values, not objects.
VALUE_RECORDS = ("__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__",
                 "__slice__")


def _type_name(value):
    return type(value).__name__


def _require(mapping, key, kind, where, expected):
    if key not in mapping:
        raise ZooFormatError(f"{where} has no {key!r}: expected {expected}.")
    value = mapping[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ZooFormatError(f"{where}[{key!r}] is a {_type_name(value)} ({value!r:.80}): "
                             f"expected {expected}.")
    return value


def check_index(index, where):
    """Raise a :class:`ZooError` unless ``index`` is a well-formed zoo index; returns it."""
    if not isinstance(index, dict):
        raise ZooFormatError(f"{where} holds a {_type_name(index)}: expected a JSON object "
                             f"with 'format': {FORMAT_VERSION} and 'entries'.")
    fmt = index.get("format")
    if fmt != FORMAT_VERSION or isinstance(fmt, bool):
        raise ZooFormatError(f"{where} has format {fmt!r}: expected a zoo "
                             f"index of format {FORMAT_VERSION}.")
    entries = _require(index, "entries", dict, where, "an object of entries")
    for name, entry in entries.items():
        _paths.check_name(name, f"{where}: entry name")
        at = f"{where}: entry {name!r}"
        if not isinstance(entry, dict):
            raise ZooFormatError(f"{at} is a {_type_name(entry)}: expected an object.")
        _paths.check_version(_require(entry, "version", str, at, "a version string"),
                             f"{at}: version")
        if not isinstance(entry.get("weights", True), bool):
            raise ZooFormatError(f"{at}['weights'] is {entry['weights']!r}: expected true "
                                 "or false.")
        files = _require(entry, "files", dict, at, "an object {file name: {size, sha256}}")
        for fname, meta in files.items():
            _paths.check_file_name(fname, f"{at}: file name")
            fat = f"{at}: file {fname!r}"
            if not isinstance(meta, dict):
                raise ZooFormatError(f"{fat} is a {_type_name(meta)}: expected an object "
                                     "with 'size' and 'sha256'.")
            size = _require(meta, "size", int, fat, "its size in bytes (an integer)")
            if size < 0:
                raise ZooFormatError(f"{fat}['size'] is {size}: expected a size >= 0.")
            digest = _require(meta, "sha256", str, fat, "its SHA-256 (64 hex digits)")
            if _SHA256.fullmatch(digest) is None:
                raise ZooFormatError(f"{fat}['sha256'] is {digest!r:.80}: expected 64 "
                                     "lower-case hex digits.")
            if meta.get("url") is not None:
                _paths.check_url(meta["url"], f"{fat}: url")
    return index


def check_config(config, name, files):
    """Raise a :class:`ZooError` unless ``config`` (an entry's ``config.json``) has
    ``components`` whose Keras configs are objects and whose weights files are in
    ``files`` (the entry's verified files); returns it."""
    where = f"config.json of zoo entry {name!r}"
    if not isinstance(config, dict):
        raise ZooFormatError(f"{where} holds a {_type_name(config)}: expected a JSON object.")
    comps = _require(config, "components", dict, where, "an object {part: {config, weights}}")
    for part, comp in comps.items():
        at = f"{where}: component {part!r}"
        if not isinstance(comp, dict):
            raise ZooFormatError(f"{at} is a {_type_name(comp)}: expected an object.")
        _require(comp, "config", dict, at, "its Keras config (an object)")
        weights = _require(comp, "weights", str, at, "the name of its weights file")
        _paths.check_file_name(weights, f"{at}: weights")
        if weights not in files:
            raise ZooFormatError(f"{at} names the weights file {weights!r}, which the index "
                                 f"does not list for this entry: expected one of "
                                 f"{sorted(files)}.")
        shape = comp.get("build_shape")
        if shape is not None and not (
                isinstance(shape, list) and 1 <= len(shape) <= 8
                and all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                        for d in shape)):
            raise ZooFormatError(f"{at}['build_shape'] is {shape!r:.80}: expected null or a "
                                 "list of 1-8 positive integers or nulls.")
    return config


def _keras_module_allowed(module):
    if module == "ldm_keras" or module.startswith("ldm_keras."):
        return True
    if module == "keras":
        return True
    for prefix in ("keras.src.", "keras."):
        if module.startswith(prefix):
            head = module[len(prefix):].split(".", 1)[0]
            return head in KERAS_MODULES
    return False


def check_keras_objects(config, where):
    """Raise :class:`ZooUnsafeConfigError` if a Keras config asks for an object outside
    Keras' modelling modules and ``ldm_keras``, or for code (see the module doc)."""
    stack = [(config, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        cls = node.get("class_name")
        if isinstance(cls, str):
            at = f"{where}: {path or 'the top-level object'}"
            module = node.get("module")
            registered = node.get("registered_name")
            if cls in REFUSED_CLASSES or registered in REFUSED_CLASSES:
                raise ZooUnsafeConfigError(
                    f"{at} asks for {cls!r}, which carries Python code; a zoo entry may hold "
                    "only Keras and ldm_keras layers with their weights.")
            if module is not None and not (isinstance(module, str)
                                           and _keras_module_allowed(module)):
                raise ZooUnsafeConfigError(
                    f"{at} asks for {cls!r} from module {module!r}: expected an object from "
                    f"Keras' modelling modules (keras.{{{', '.join(KERAS_MODULES)}}}) or "
                    "from ldm_keras.")
            if cls == "function":
                fn = node.get("config")
                if not (isinstance(fn, str) and fn.isidentifier()):
                    raise ZooUnsafeConfigError(
                        f"{at} asks for the function {fn!r:.80}: expected the plain name of "
                        "a Keras or ldm_keras function.")
            if isinstance(registered, str) and ">" in registered \
                    and not registered.startswith("ldm_keras>"):
                raise ZooUnsafeConfigError(
                    f"{at} asks for the registered object {registered!r}: expected a Keras "
                    "object or one registered by ldm_keras ('ldm_keras>...').")
            if cls.startswith("__") and cls not in VALUE_RECORDS:
                raise ZooUnsafeConfigError(
                    f"{at} asks for the special record {cls!r}: expected one of "
                    f"{list(VALUE_RECORDS)}.")
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                stack.append((value, f"{path}.{key}" if path else str(key)))
    return config
