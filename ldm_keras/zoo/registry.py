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
fetched with ``keras.utils.get_file`` into the cache (``$LDM_KERAS_CACHE`` or
``~/.cache/ldm_keras``) and checked the same way.

The zoo directory is ``$LDM_KERAS_ZOO`` when set, else the one installed with the
package (``ldm_keras/_zoo_data``, which in a source checkout is a link to the top-level
``zoo/``).
"""

import builtins
import difflib
import hashlib
import json
import os
from pathlib import Path

import keras
import numpy as np

INDEX = "index.json"
FORMAT_VERSION = 1
#: Largest allowed difference between the reference outputs stored in an entry and the
#: outputs of the loaded encoder, on any backend.
REFERENCE_ATOL = 1e-5
#: Largest allowed difference between a recomputed headline metric and the card's.
EVAL_TOLERANCE = 0.01
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


class ZooError(ValueError):
    """A zoo entry is unknown, incomplete or cannot be loaded (a ``ValueError``)."""


class ZooIntegrityError(ZooError):
    """A zoo file's size or SHA-256 differs from the index: it is corrupted or tampered."""


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


def cache_dir():
    """Where fetched zoo files go: ``$LDM_KERAS_CACHE`` or ``~/.cache/ldm_keras``."""
    return Path(os.environ.get("LDM_KERAS_CACHE") or Path.home() / ".cache" / "ldm_keras")


def sha256(path, chunk=1 << 20):
    """SHA-256 hex digest of a file, read in chunks.

    Example:
        >>> sha256("zoo/digits-simclr/encoder.weights.h5")
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_index(root=None):
    """The parsed ``index.json`` of a zoo directory (default :func:`zoo_dir`)."""
    root = Path(root) if root is not None else zoo_dir()
    with open(root / INDEX) as f:
        index = json.load(f)
    if index.get("format") != FORMAT_VERSION or "entries" not in index:
        raise ZooError(f"{root / INDEX} is not a zoo index of format {FORMAT_VERSION}.")
    return index


def list():  # noqa: A001 - the zoo's public name
    """Names of the zoo entries, sorted.

    Example:
        >>> ldm_keras.zoo.list()       # ['digits-byol', 'digits-categorical', ...]
    """
    return sorted(read_index()["entries"])


def _entry(name, index=None):
    index = index or read_index()
    entries = index["entries"]
    if name not in entries:
        close = difflib.get_close_matches(str(name), builtins.list(entries), n=3, cutoff=0.5)
        hint = f" Did you mean {close}?" if close else ""
        raise ZooError(f"Unknown zoo entry {name!r}.{hint} Known entries: {sorted(entries)}.")
    return entries[name]


def _fetch(name, fname, meta):
    url = meta["url"]
    target = cache_dir() / "zoo" / name / str(meta.get("version", "")) / fname
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(fname=fname, origin=url, file_hash=meta["sha256"],
                                    hash_algorithm="sha256", cache_dir=str(target.parent),
                                    cache_subdir="")
    except Exception as e:  # keras raises ValueError (hash) or Exception (network)
        raise ZooIntegrityError(
            f"Could not fetch {fname!r} of zoo entry {name!r} from {url}: {e}") from e
    return Path(path)


def entry_files(name, check=True, fetch=True):
    """``{file name: path}`` of an entry, each checked against the index's size and SHA-256.

    A file missing on disk is fetched from its ``url`` when the index gives one;
    otherwise a :class:`ZooError` names it. A size or hash mismatch raises
    :class:`ZooIntegrityError` — before any file is parsed.

    Example:
        >>> entry_files("digits-simclr")["encoder.weights.h5"]
    """
    root = zoo_dir()
    entry = _entry(name, read_index(root))
    folder = root / name
    out = {}
    for fname, meta in sorted(entry["files"].items()):
        path = folder / fname
        if not path.is_file():
            if fetch and meta.get("url"):
                path = _fetch(name, fname, {**meta, "version": entry.get("version")})
            else:
                where = " and the index gives no URL for it" if not meta.get("url") else ""
                raise ZooError(f"Zoo entry {name!r} is missing the file {fname!r} "
                               f"(expected at {path}){where}.")
        if check:
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
        out[fname] = path
    return out


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def info(name):
    """What an entry is: the index record, its config (without the layer configs),
    metrics and card path. Needs no weights and checks no hashes.

    Example:
        >>> ldm_keras.zoo.info("digits-simclr")["metrics"]["probe_10"]
    """
    root = zoo_dir()
    entry = _entry(name, read_index(root))
    folder = root / name
    config = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    metrics = _read_json(folder / "metrics.json") if (folder / "metrics.json").is_file() else {}
    summary = {k: v for k, v in config.items() if k != "components"}
    return {"name": name, **{k: v for k, v in entry.items() if k != "files"},
            "files": {f: {k: m[k] for k in ("size", "sha256") if k in m}
                      for f, m in entry["files"].items()},
            "config": summary, "metrics": metrics,
            "card": str(folder / "README.md"), "has_weights": bool(entry.get("weights", True))}


def _check_weights(name, entry):
    if not entry.get("weights", True):
        raise ZooError(
            f"Zoo entry {name!r} is a recipe without published weights. "
            f"{entry.get('how_to_build', f'Build it with `ldm-keras zoo build {name}`.')}")


def _deserialize(config):
    # The training compile settings (optimizer, per-group learning rates) are not part of
    # a published model; loading returns it uncompiled.
    if isinstance(config, dict) and config.get("compile_config") is not None:
        config = {**config, "compile_config": None}
    return keras.saving.deserialize_keras_object(config, safe_mode=True)


def _component(files, config, part):
    comp = config["components"][part]
    obj = _deserialize(comp["config"])
    if comp.get("build_shape") is not None and not obj.built:
        obj.build(tuple(comp["build_shape"]))
    obj.load_weights(str(files[comp["weights"]]))
    return obj


def _open(name):
    entry = _entry(name)
    _check_weights(name, entry)
    files = entry_files(name)  # checks every file before anything is parsed
    return files, _read_json(files["config.json"])


def load(name, trainable=False):
    """The entry's encoder as a Keras model, ready for ``predict`` or fine-tuning.

    Every file is checked against the index (size and SHA-256) first; the encoder is
    rebuilt from its Keras config under ``safe_mode=True`` and its weights loaded. With
    ``trainable=False`` (default) the encoder is frozen.

    Example:
        >>> encoder = ldm_keras.zoo.load("digits-simclr")
        >>> z = encoder.predict(images)                 # images: (n, 8, 8, 1) in [0, 1]
    """
    files, config = _open(name)
    if "encoder" in config["components"]:
        encoder = _component(files, config, "encoder")
    else:
        encoder = _component(files, config, "model").encoder
    encoder.trainable = bool(trainable)
    return encoder


def load_component(name, part):
    """One named part of an entry (``"encoder"``, ``"head"``, ``"model"``, ...)."""
    files, config = _open(name)
    if part not in config["components"]:
        raise ZooError(f"Zoo entry {name!r} has no part {part!r}; it has "
                       f"{sorted(config['components'])}.")
    return _component(files, config, part)


def load_model(name):
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
    files, config = _open(name)
    comps = config["components"]
    if "model" in comps:
        return _component(files, config, "model")
    from .. import recipes
    from ..augment import image_views

    encoder = _component(files, config, "encoder")
    views = image_views(config["views"], seed=config["seed"]) if config.get("views") else None
    model = recipes.build(config["recipe"], encoder, views=views, **config.get("settings", {}))
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


def check_reference(name, encoder=None, files=None):
    """Max |Δ| between the loaded encoder's outputs and those stored at build time.

    Returns ``{"max_abs_diff": float, "ok": bool, "atol": REFERENCE_ATOL}``.
    """
    files = files or entry_files(name)
    encoder = encoder or load(name)
    inputs, outputs = reference_outputs(files["reference.h5"])
    z = np.asarray(keras.ops.convert_to_numpy(encoder(inputs, training=False)))
    diff = float(np.max(np.abs(z.astype("float64") - outputs["encoder"].astype("float64"))))
    return {"max_abs_diff": diff, "ok": bool(diff <= REFERENCE_ATOL), "atol": REFERENCE_ATOL}


def verify(name, eval=False):  # noqa: A002 - mirrors `ldm-keras zoo verify --eval`
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
    files = entry_files(name)
    report = {"name": name, "version": entry.get("version"), "backend": keras.backend.backend(),
              "integrity": "ok", "files": len(files)}
    encoder = load(name)
    report["reference"] = check_reference(name, encoder, files)
    ok = report["reference"]["ok"]
    if eval:
        from . import builders

        config = _read_json(files["config.json"])
        stored = _read_json(files["metrics.json"])
        headline = stored["headline"]
        metrics = builders.evaluate_entry(name, config)
        value = float(metrics[headline])
        diff = abs(value - float(stored[headline]))
        report["eval"] = {"metric": headline, "stored": float(stored[headline]),
                          "recomputed": value, "abs_diff": diff, "tolerance": EVAL_TOLERANCE,
                          "ok": bool(diff <= EVAL_TOLERANCE), "all": metrics}
        ok = ok and report["eval"]["ok"]
    report["ok"] = bool(ok)
    return report
