"""Where the zoo lives, what its index says, and loading with integrity checks.

An entry is a folder ``zoo/NAME/`` holding

* ``config.json`` — what the entry is (kind, data, recipe, seed, backend it was built on)
  and the Keras configs of its parts (``components``), enough to rebuild every part;
* ``*.weights.h5`` — the weights of each part (Keras' ``save_weights`` format);
* ``reference.h5`` — fixed inputs and the encoder's outputs on them, computed when the
  entry was built (the cross-backend loading check);
* ``metrics.json`` — the evaluation, with the headline metric that ``verify --eval``
  recomputes;
* ``README.md`` — the card.

``zoo/index.json`` lists every entry with its version and, for every file, its size
and SHA-256. :func:`load` checks the size and SHA-256 of every file of an entry before
it reads any of them; a file that is not on disk but has a ``url`` in the index is
downloaded into the cache (``$LDM_KERAS_CACHE`` or ``~/.cache/ldm_keras``) and checked
the same way.

The zoo directory is ``$LDM_KERAS_ZOO`` when set, else the one installed with the
package (``ldm_keras/_zoo_data``, which in a source checkout is a link to the top-level
``zoo/``).

A zoo directory and its index may come from someone else, so the zoo is confined: entry
names, versions and file names are checked against a strict pattern before any path is
built from them, every path resolves inside the zoo or the cache, no symbolic link below
the zoo's root is followed, downloads are ``https://``/``http://`` only and stop at the
declared size, HDF5 files must be self-contained, Keras configs may ask only for Keras
and ldm_keras objects, and a size cap (2 GiB unless ``max_bytes=`` or
``$LDM_KERAS_ZOO_MAX_BYTES`` says otherwise) bounds the files and the weights a config
would allocate, measured before anything is allocated (:mod:`._paths`,
:mod:`._schema`, :mod:`._limits`).
"""

import builtins
import copy
import difflib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

from . import _limits, _paths, _schema
from ._errors import (
    ZooError,
    ZooFormatError,
    ZooIntegrityError,
    ZooPathError,
    ZooSizeError,
    ZooUnsafeConfigError,
)
from ._limits import DEFAULT_MAX_BYTES, MAX_BYTES_ENV
from ._paths import check_name

INDEX = "index.json"
FORMAT_VERSION = _schema.FORMAT_VERSION
#: Largest allowed difference between the reference outputs stored in an entry and the
#: outputs of the loaded encoder, on any backend.
REFERENCE_ATOL = 1e-5
#: Largest allowed difference between a recomputed headline metric and the card's.
EVAL_TOLERANCE = 0.01
#: Seconds a download may wait for the server.
FETCH_TIMEOUT = 60
CITATION = (
    "Mikulasch, F. A. & Zenke, F. Understanding Self-Supervised Learning via Latent "
    "Distribution Matching. In Proceedings of the International Conference on Machine "
    "Learning (ICML), 2026. arXiv:2605.03517."
)
BIBTEX = """@inproceedings{mikulasch2026ldm,
  title     = {Understanding Self-Supervised Learning via Latent Distribution Matching},
  author    = {Mikulasch, Fabian A. and Zenke, Friedemann},
  booktitle = {Proceedings of the International Conference on Machine Learning (ICML)},
  year      = {2026},
  note      = {arXiv:2605.03517}
}"""

# Re-exported here (defined in ._errors, ._limits, ._paths).
__all__ = ["DEFAULT_MAX_BYTES", "MAX_BYTES_ENV", "ZooError", "ZooFormatError",
           "ZooIntegrityError", "ZooPathError", "ZooSizeError", "ZooUnsafeConfigError",
           "check_name"]


def zoo_dir():
    """The zoo directory in use: ``$LDM_KERAS_ZOO`` or the packaged zoo.

    Example:
        >>> ldm_keras.zoo.zoo_dir()          # PosixPath('.../ldm_keras/_zoo_data')
    """
    env = os.environ.get("LDM_KERAS_ZOO")
    if env:
        path = Path(env).expanduser()
        if not (path / INDEX).is_file():
            raise ZooError(f"$LDM_KERAS_ZOO={env!r} is not a zoo directory: it has no {INDEX}.")
        return path
    package = Path(__file__).resolve().parent.parent
    for path in (package / "_zoo_data", package.parent / "zoo"):
        if (path / INDEX).is_file():
            return path
    raise ZooError("No zoo found: the package has no `_zoo_data` (was it installed without "
                   "its data?) and $LDM_KERAS_ZOO is not set.")


def _root():
    """The zoo directory with its links resolved: everything read lies below it."""
    return _paths.real_root(zoo_dir())


def cache_dir():
    """Where fetched zoo files go: ``$LDM_KERAS_CACHE`` or ``~/.cache/ldm_keras``."""
    return Path(os.environ.get("LDM_KERAS_CACHE") or Path.home() / ".cache" / "ldm_keras")


def sha256(path, chunk=1 << 20):
    """SHA-256 hex digest of a file, read in chunks (a symbolic link is refused).

    Example:
        >>> sha256("zoo/digits-simclr/encoder.weights.h5")
    """
    h = hashlib.sha256()
    with _paths.open_regular(path, "file") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _read_text(path, field):
    with _paths.open_regular(path, field, "r") as f:
        return f.read()


def _read_json(path, field=None):
    """The JSON object in ``path`` (a regular file; a link is refused)."""
    field = field or str(path)
    try:
        data = json.loads(_read_text(path, field))
    except json.JSONDecodeError as e:
        raise ZooFormatError(f"{field}: {path} is not valid JSON ({e.msg} at line "
                             f"{e.lineno}, column {e.colno}): expected a JSON object.") from e
    except UnicodeDecodeError as e:
        raise ZooFormatError(f"{field}: {path} is not UTF-8 text ({e.reason}): expected a "
                             "JSON object.") from e
    if not isinstance(data, dict):
        raise ZooFormatError(f"{field}: {path} holds a JSON {type(data).__name__}: expected "
                             "a JSON object.")
    return data


def read_index(root=None):
    """The parsed and checked ``index.json`` of a zoo directory (default :func:`zoo_dir`).

    Raises :class:`ZooFormatError` for bad JSON, a missing key or a wrong type, and
    :class:`ZooPathError` for an entry name, version, file name or URL that is not allowed
    (see :mod:`._paths`).
    """
    root = Path(root) if root is not None else zoo_dir()
    path = _paths.real_root(root) / INDEX
    if not _paths.check_regular_file(path, INDEX):
        raise ZooError(f"{root} is not a zoo directory: it has no {INDEX}.")
    return _schema.check_index(_read_json(path, INDEX), str(path))


def list():  # noqa: A001 - the zoo's public name
    """Names of the zoo entries, sorted.

    Example:
        >>> ldm_keras.zoo.list()       # ['digits-byol', 'digits-categorical', ...]
    """
    return sorted(read_index()["entries"])


def _entry(name, index=None):
    index = index or read_index()
    entries = index["entries"]
    if not isinstance(name, str) or name not in entries:
        close = difflib.get_close_matches(str(name), builtins.list(entries), n=3, cutoff=0.5)
        hint = f" Did you mean {close}?" if close else ""
        raise ZooError(f"Unknown zoo entry {name!r}.{hint} Known entries: {sorted(entries)}.")
    return entries[name]


# -- fetching ------------------------------------------------------------------------------
def _cache_target(name, version, fname):
    """The cache path of a file, every part validated before anything is created; the
    folders are then created one by one, each checked to be a real folder (no link)."""
    field = f"cache path of {fname!r} of zoo entry {name!r}"
    check_name(name, f"{field}: entry name")
    _paths.check_version(version, f"{field}: version")
    _paths.check_file_name(fname, f"{field}: file name")
    cache = _paths.real_root(cache_dir())
    target = _paths.safe_join(cache, "zoo", name, version, fname, field=field)
    cache.mkdir(parents=True, exist_ok=True)
    folder = cache
    for part in ("zoo", name, version):
        folder = folder / part
        if not _paths.check_directory(folder, field):
            folder.mkdir()
            _paths.check_directory(folder, field)
    _paths.check_inside(cache, target, field)
    return target


def _download(url, target, size, digest, field):
    """Stream ``url`` into a temporary file next to ``target``, at most ``size`` bytes,
    check its size and SHA-256, then rename it into place."""
    import urllib.request

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        h, n = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:
            _paths.check_url(response.geturl(), f"{field}: redirected url")
            while block := response.read(min(1 << 20, size - n + 1)):
                n += len(block)
                if n > size:
                    raise ZooIntegrityError(f"Could not fetch {field} from {url}: the server "
                                            f"sent more than the {size} bytes the index "
                                            "declares.")
                h.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if n != size:
            raise ZooIntegrityError(f"Could not fetch {field} from {url}: {n} bytes "
                                    f"received, the index says {size}.")
        if h.hexdigest() != digest:
            raise ZooIntegrityError(f"Could not fetch {field} from {url}: SHA-256 "
                                    f"{h.hexdigest()}, the index says {digest}.")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except ZooError:
        raise
    except (OSError, ValueError) as e:  # urllib's errors are OSErrors
        raise ZooIntegrityError(f"Could not fetch {field} from {url}: {e}") from e
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return target


def _fetch(name, version, fname, meta):
    field = f"file {fname!r} of zoo entry {name!r}"
    url = _paths.check_url(meta["url"], f"{field}: url")
    target = _cache_target(name, version, fname)
    if _paths.check_regular_file(target, field) and target.stat().st_size == meta["size"] \
            and sha256(target) == meta["sha256"]:
        return target  # fetched before
    return _download(url, target, meta["size"], meta["sha256"], field)


# -- entry files ------------------------------------------------------------------------------
def _check_file(path, meta, name, field, cap):
    size = path.stat().st_size
    if size != meta["size"]:
        raise ZooIntegrityError(
            f"Integrity check failed for {path}: {size} bytes, the index says "
            f"{meta['size']}. The file is corrupted or was modified; rebuild it with "
            f"`ldm-keras zoo build {name}` or reinstall ldm-keras.")
    digest = sha256(path)
    if digest != meta["sha256"]:
        raise ZooIntegrityError(
            f"Integrity check failed for {path}: SHA-256 {digest}, the index says "
            f"{meta['sha256']}. The file is corrupted or was modified; rebuild it "
            f"with `ldm-keras zoo build {name}` or reinstall ldm-keras.")
    if path.name.endswith(".h5"):
        _limits.check_h5(path, cap, field)


def _entry_files(root, name, entry, check=True, fetch=True, only=None, max_bytes=None):
    cap = _limits.max_bytes(max_bytes)
    _limits.check_declared_sizes(name, entry["files"], cap)
    check_name(name, "entry name")
    folder = _paths.safe_join(root, name, field=f"folder of zoo entry {name!r}")
    has_folder = _paths.check_directory(folder, f"folder of zoo entry {name!r}")
    out = {}
    for fname, meta in sorted(entry["files"].items()):
        if only is not None and fname not in only:
            continue
        field = f"file {fname!r} of zoo entry {name!r}"
        path = _paths.safe_join(root, name, fname, field=field)
        if not (has_folder and _paths.check_regular_file(path, field)):
            if fetch and meta.get("url"):
                path = _fetch(name, entry["version"], fname, meta)
            else:
                where = " and the index gives no URL for it" if not meta.get("url") else ""
                raise ZooError(f"Zoo entry {name!r} is missing the file {fname!r} "
                               f"(expected at {path}){where}.")
        if check:
            _check_file(path, meta, name, field, cap)
        out[fname] = path
    return out


def entry_files(name, check=True, fetch=True, only=None, max_bytes=None):
    """``{file name: path}`` of an entry, each checked against the index's size and SHA-256.

    A file missing on disk is fetched from its ``url`` when the index gives one;
    otherwise a :class:`ZooError` names it. A size or hash mismatch raises
    :class:`ZooIntegrityError` — before any file is parsed. Every path is confined to the
    zoo or the cache (:class:`ZooPathError` otherwise); ``only`` limits the result to
    those file names; ``max_bytes`` is the size cap (see :mod:`._limits`).

    Example:
        >>> entry_files("digits-simclr")["encoder.weights.h5"]
    """
    root = _root()
    entry = _entry(name, read_index(root))
    return _entry_files(root, name, entry, check, fetch, only, max_bytes)


def info(name, max_bytes=None):
    """What an entry is: the index record, its config (without the layer configs),
    metrics and card path. Reads no weights; the files it reads (``config.json``,
    ``metrics.json``, ``README.md``) are checked against the index first, as
    :func:`load` does.

    Example:
        >>> ldm_keras.zoo.info("digits-simclr")["metrics"]["probe_10"]
    """
    root = _root()
    entry = _entry(name, read_index(root))
    wanted = [f for f in ("config.json", "metrics.json", "README.md") if f in entry["files"]]
    files = _entry_files(root, name, entry, only=wanted, max_bytes=max_bytes)
    config = _read_json(files["config.json"], f"config.json of zoo entry {name!r}") \
        if "config.json" in files else {}
    metrics = _read_json(files["metrics.json"], f"metrics.json of zoo entry {name!r}") \
        if "metrics.json" in files else {}
    summary = {k: v for k, v in config.items() if k != "components"}
    return {"name": name, **{k: v for k, v in entry.items() if k != "files"},
            "files": {f: {k: m[k] for k in ("size", "sha256") if k in m}
                      for f, m in entry["files"].items()},
            "config": summary, "metrics": metrics,
            "card": str(files["README.md"]) if "README.md" in files else None,
            "has_weights": bool(entry.get("weights", True))}


def read_card(name, max_bytes=None):
    """The text of an entry's card (``README.md``), checked against the index first."""
    root = _root()
    entry = _entry(name, read_index(root))
    if "README.md" not in entry["files"]:
        raise ZooError(f"Zoo entry {name!r} has no card: the index lists no README.md.")
    path = _entry_files(root, name, entry, only=["README.md"], max_bytes=max_bytes)["README.md"]
    return _read_text(path, f"README.md of zoo entry {name!r}")


# -- loading --------------------------------------------------------------------------------
def _check_weights(name, entry):
    if not entry.get("weights", True):
        raise ZooError(
            f"Zoo entry {name!r} is a recipe without published weights. "
            f"{entry.get('how_to_build', f'Build it with `ldm-keras zoo build {name}`.')}")


def _first_line(e, limit=300):
    """The gist of an exception in one line: for Keras' nested deserialisation errors the
    innermost cause (its last ``Exception encountered:``), else the first line."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    marker = "Exception encountered:"
    inner = [ln.split(marker, 1)[1].strip() for ln in lines if marker in ln]
    text = (inner[-1] if inner and inner[-1] else lines[0]) if lines else type(e).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def _deserialize(config, where="a zoo config"):
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
                                       f"{_first_line(e)}") from e
        raise ZooFormatError(f"{where}: Keras could not rebuild it from its config: "
                             f"{_first_line(e)}") from e


def _component(files, config, part, name="?", budget=None):
    """Part ``part`` with its weights; the bytes its weights take are measured first,
    without allocating them, and must fit in ``budget`` (default: the size cap)."""
    comp = config["components"][part]
    where = f"config.json of zoo entry {name!r}: component {part!r}"
    budget = _limits.max_bytes() if budget is None else budget

    def make():
        obj = _deserialize(comp["config"], where)
        if comp.get("build_shape") is not None and not obj.built:
            obj.build(tuple(comp["build_shape"]))
        return obj

    _limits.check_weight_bytes(make, budget, where)
    obj = make()
    obj.load_weights(str(files[comp["weights"]]))
    return obj


def _open(name, max_bytes=None):
    root = _root()
    entry = _entry(name, read_index(root))
    _check_weights(name, entry)
    files = _entry_files(root, name, entry, max_bytes=max_bytes)  # all checked first
    if "config.json" not in files:
        raise ZooFormatError(f"index.json: zoo entry {name!r} lists no config.json: "
                             "expected the entry's config among its files.")
    config = _read_json(files["config.json"], f"config.json of zoo entry {name!r}")
    return files, _schema.check_config(config, name, files)


def _part(config, name, part):
    if part not in config["components"]:
        raise ZooFormatError(f"config.json of zoo entry {name!r} has no component {part!r}: "
                             f"it has {sorted(config['components'])}.")
    return part


def load(name, trainable=False, max_bytes=None):
    """The entry's encoder as a Keras model, ready for ``predict`` or fine-tuning.

    Every file is checked against the index (size and SHA-256) first; the encoder is
    rebuilt from its Keras config under ``safe_mode=True`` and its weights loaded. With
    ``trainable=False`` (default) the encoder is frozen. ``max_bytes`` caps the files and
    the weights (default 2 GiB or ``$LDM_KERAS_ZOO_MAX_BYTES``; see :mod:`._limits`).

    Example:
        >>> encoder = ldm_keras.zoo.load("digits-simclr")
        >>> z = encoder.predict(images)                 # images: (n, 8, 8, 1) in [0, 1]
    """
    files, config = _open(name, max_bytes)
    cap = _limits.max_bytes(max_bytes)
    if "encoder" in config["components"]:
        encoder = _component(files, config, "encoder", name, cap)
    else:
        encoder = _component(files, config, _part(config, name, "model"), name, cap).encoder
    encoder.trainable = bool(trainable)
    return encoder


def load_component(name, part, max_bytes=None):
    """One named part of an entry (``"encoder"``, ``"head"``, ``"model"``, ...)."""
    files, config = _open(name, max_bytes)
    if part not in config["components"]:
        raise ZooError(f"Zoo entry {name!r} has no part {part!r}; it has "
                       f"{sorted(config['components'])}.")
    return _component(files, config, part, name, _limits.max_bytes(max_bytes))


def _recipe_model(config, name, encoder, budget):
    """The recipe's MultiViewLDM around ``encoder``, its new weights measured first."""
    from .. import recipes
    from ..augment import image_views

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
                                 f"{settings!r:.200} was refused: {_first_line(e)}") from e

    _limits.check_weight_bytes(make, budget, f"{where}: recipe {recipe!r}")
    return make()


def load_model(name, max_bytes=None):
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
    files, config = _open(name, max_bytes)
    cap = _limits.max_bytes(max_bytes)
    comps = config["components"]
    if "model" in comps:
        return _component(files, config, "model", name, cap)
    encoder = _component(files, config, _part(config, name, "encoder"), name, cap)
    model = _recipe_model(config, name, encoder,
                          cap - _limits.variable_bytes(encoder.variables))
    for part, attr in (("head", "projector"), ("projector", "projector"),
                       ("predictor", "predictor")):
        if part in comps:
            getattr(model, attr).load_weights(str(files[comps[part]["weights"]]))
    return model


def reference_outputs(path):
    """``(inputs, outputs)`` stored in an entry's ``reference.h5``."""
    import h5py

    with h5py.File(path, "r") as f:
        return np.asarray(f["inputs"]), {k: np.asarray(v) for k, v in f["outputs"].items()}


def check_reference(name, encoder=None, files=None, max_bytes=None):
    """Max |Δ| between the loaded encoder's outputs and those stored at build time.

    Returns ``{"max_abs_diff": float, "ok": bool, "atol": REFERENCE_ATOL}``.
    """
    files = files or entry_files(name, max_bytes=max_bytes)
    encoder = encoder or load(name, max_bytes=max_bytes)
    if "reference.h5" not in files:
        raise ZooFormatError(f"index.json: zoo entry {name!r} lists no reference.h5: "
                             "expected the reference outputs among its files.")
    inputs, outputs = reference_outputs(files["reference.h5"])
    z = np.asarray(keras.ops.convert_to_numpy(encoder(inputs, training=False)))
    diff = float(np.max(np.abs(z.astype("float64") - outputs["encoder"].astype("float64"))))
    return {"max_abs_diff": diff, "ok": bool(diff <= REFERENCE_ATOL), "atol": REFERENCE_ATOL}


def verify(name, eval=False, max_bytes=None):  # noqa: A002 - mirrors `zoo verify --eval`
    """Check an entry: hashes, loading (safe mode), reference outputs, and optionally
    recompute the headline metric from the stored weights and the data.

    Returns a dict with ``ok`` (bool) and the details; raises :class:`ZooIntegrityError`
    for a corrupted file and :class:`ZooError` for an entry without weights.

    Example:
        >>> ldm_keras.zoo.verify("digits-simclr", eval=True)["ok"]
        True
    """
    entry = _entry(name)
    _check_weights(name, entry)
    files = entry_files(name, max_bytes=max_bytes)
    report = {"name": name, "version": entry.get("version"), "backend": keras.backend.backend(),
              "integrity": "ok", "files": len(files)}
    encoder = load(name, max_bytes=max_bytes)
    report["reference"] = check_reference(name, encoder, files)
    ok = report["reference"]["ok"]
    if eval:
        from . import builders

        config = _read_json(files["config.json"], f"config.json of zoo entry {name!r}")
        stored = _read_json(files["metrics.json"], f"metrics.json of zoo entry {name!r}")
        headline = stored.get("headline")
        if not isinstance(headline, str) or not isinstance(stored.get(headline), (int, float)):
            raise ZooFormatError(f"metrics.json of zoo entry {name!r}: 'headline' is "
                                 f"{headline!r:.80}: expected the name of a metric it holds.")
        metrics = builders.evaluate_entry(name, config)
        value = float(metrics[headline])
        diff = abs(value - float(stored[headline]))
        report["eval"] = {"metric": headline, "stored": float(stored[headline]),
                          "recomputed": value, "abs_diff": diff, "tolerance": EVAL_TOLERANCE,
                          "ok": bool(diff <= EVAL_TOLERANCE), "all": metrics}
        ok = ok and report["eval"]["ok"]
    report["ok"] = bool(ok)
    return report
