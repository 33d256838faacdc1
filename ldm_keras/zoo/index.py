"""The zoo's bottom layer: where it lives, what its index says, and its files, checked.

An entry is a folder ``NAME/`` of a zoo directory holding

* ``config.json`` — what the entry is (kind, data, recipe, seed, backend it was built on)
  and the Keras configs of its parts (``components``), enough to rebuild every part;
* ``*.weights.h5`` — the weights of each part (Keras' ``save_weights`` format);
* ``reference.h5`` — fixed inputs and the encoder's outputs on them, computed when the
  entry was built (the cross-backend loading check);
* ``metrics.json`` — the evaluation, with the headline metric that ``verify --eval``
  recomputes;
* ``README.md`` — the card.

``index.json`` lists every entry with its version and, for every file, its size and
SHA-256. :func:`entry_files` checks the size and SHA-256 of every file of an entry before
anything reads it; a file that is not on disk but has a ``url`` in the index is
downloaded into the cache (``$LDM_KERAS_CACHE`` or ``~/.cache/ldm_keras``) and checked
the same way. :func:`write_index_entry` is the one writer of the index.

The zoo directory is passed as ``root=`` to every function; without it, it is
``$LDM_KERAS_ZOO`` when set, else the one installed with the package
(``ldm_keras/_zoo_data``, in a source checkout a link to the top-level ``zoo/``):
:func:`configured_root` is the only place that reads the environment variable.

A zoo directory and its index may come from someone else, so the zoo is confined: entry
names, versions and file names are checked against a strict pattern before any path is
built from them, every path resolves inside the zoo or the cache, no symbolic link below
the zoo's root is followed, downloads are ``https://``/``http://`` only and stop at the
declared size, HDF5 files must be self-contained, and a size cap (2 GiB unless
``max_bytes=`` or ``$LDM_KERAS_ZOO_MAX_BYTES`` says otherwise) bounds the files
(:mod:`._paths`, :mod:`._schema`, :mod:`._limits`).

Layers above: :mod:`.loader` (Keras objects from the checked files), :mod:`.verifier`,
:mod:`.builder`.
"""

import difflib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from . import _limits, _paths, _schema
from ._errors import ZooError, ZooFormatError, ZooIntegrityError
from ._paths import check_name

INDEX = "index.json"
#: The environment variable naming another zoo directory.
ZOO_ENV = "LDM_KERAS_ZOO"
FORMAT_VERSION = _schema.FORMAT_VERSION
#: Seconds a download may wait for the server.
FETCH_TIMEOUT = 60


def zoo_dir(root=None):
    """The zoo directory: ``root`` when given, else :func:`configured_root`; it must hold
    an ``index.json``.

    Example:
        >>> ldm_keras.zoo.zoo_dir()          # PosixPath('.../ldm_keras/_zoo_data')
    """
    if root is not None:
        path = Path(root).expanduser()
        if not (path / INDEX).is_file():
            raise ZooError(f"{str(root)!r} is not a zoo directory: it has no {INDEX}.")
        return path
    env = os.environ.get(ZOO_ENV)
    path = configured_root()
    if (path / INDEX).is_file():
        return path
    if env:
        raise ZooError(f"${ZOO_ENV}={env!r} is not a zoo directory: it has no {INDEX}.")
    raise ZooError("No zoo found: the package has no `_zoo_data` (was it installed without "
                   f"its data?) and ${ZOO_ENV} is not set.")


def configured_root():
    """``$LDM_KERAS_ZOO`` when set, else the zoo installed with the package (which need not
    hold an index yet: a build may be about to write the first entry). The one place
    that reads the environment; every function of the zoo takes ``root=`` instead."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env).expanduser()
    package = Path(__file__).resolve().parent.parent
    for path in (package / "_zoo_data", package.parent / "zoo"):
        if (path / INDEX).is_file():
            return path
    return package / "_zoo_data"


def real_root(root=None):
    """The zoo directory (:func:`zoo_dir`) with its links resolved: everything read lies
    below it."""
    return _paths.real_root(zoo_dir(root))


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


def read_text(path, field):
    """The text of a regular file (a link is refused)."""
    with _paths.open_regular(path, field, "r") as f:
        return f.read()


def read_json(path, field=None):
    """The JSON object in ``path`` (a regular file; a link is refused)."""
    field = field or str(path)
    try:
        data = json.loads(read_text(path, field))
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
    """The parsed and checked ``index.json`` of a zoo directory (:func:`zoo_dir`).

    Raises :class:`ZooFormatError` for bad JSON, a missing key or a wrong type, and
    :class:`ZooPathError` for an entry name, version, file name or URL that is not allowed
    (see :mod:`._paths`).
    """
    root = zoo_dir(root) if root is None else Path(root)
    path = _paths.real_root(root) / INDEX
    if not _paths.check_regular_file(path, INDEX):
        raise ZooError(f"{root} is not a zoo directory: it has no {INDEX}.")
    return _schema.check_index(read_json(path, INDEX), str(path))


def entry_names(root=None):
    """Names of the zoo entries, sorted (``ldm_keras.zoo.list()``).

    Example:
        >>> ldm_keras.zoo.list()       # ['digits-byol', 'digits-categorical', ...]
    """
    return sorted(read_index(root)["entries"])


def find_entry(name, index):
    """The record of entry ``name`` in ``index`` (a :class:`ZooError` with close matches)."""
    entries = index["entries"]
    if not isinstance(name, str) or name not in entries:
        close = difflib.get_close_matches(str(name), list(entries), n=3, cutoff=0.5)
        hint = f" Did you mean {close}?" if close else ""
        raise ZooError(f"Unknown zoo entry {name!r}.{hint} Known entries: {sorted(entries)}.")
    return entries[name]


# -- fetching -------------------------------------------------------------------------------
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


# -- the files of an entry ----------------------------------------------------------------
def check_file(path, meta, name, field, cap):
    """Size, SHA-256 (and for HDF5 the self-containment and declared sizes) of one file."""
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


def files_of(root, name, entry, check=True, fetch=True, only=None, max_bytes=None):
    """``{file name: path}`` of ``entry`` below the resolved ``root`` (see :func:`entry_files`)."""
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
            check_file(path, meta, name, field, cap)
        out[fname] = path
    return out


def entry_files(name, check=True, fetch=True, only=None, max_bytes=None, root=None):
    """``{file name: path}`` of an entry, each checked against the index's size and SHA-256.

    A file missing on disk is fetched from its ``url`` when the index gives one;
    otherwise a :class:`ZooError` names it. A size or hash mismatch raises
    :class:`ZooIntegrityError` — before any file is parsed. Every path is confined to the
    zoo or the cache (:class:`ZooPathError` otherwise); ``only`` limits the result to
    those file names; ``max_bytes`` is the size cap (see :mod:`._limits`); ``root`` the
    zoo directory (:func:`zoo_dir`).

    Example:
        >>> entry_files("digits-simclr")["encoder.weights.h5"]
    """
    root = real_root(root)
    entry = find_entry(name, read_index(root))
    return files_of(root, name, entry, check, fetch, only, max_bytes)


def info(name, max_bytes=None, root=None):
    """What an entry is: the index record, its config (without the layer configs),
    metrics and card path. Reads no weights; the files it reads (``config.json``,
    ``metrics.json``, ``README.md``) are checked against the index first, as
    :func:`load` does.

    Example:
        >>> ldm_keras.zoo.info("digits-simclr")["metrics"]["probe_10"]
    """
    root = real_root(root)
    entry = find_entry(name, read_index(root))
    wanted = [f for f in ("config.json", "metrics.json", "README.md") if f in entry["files"]]
    files = files_of(root, name, entry, only=wanted, max_bytes=max_bytes)
    config = read_json(files["config.json"], f"config.json of zoo entry {name!r}") \
        if "config.json" in files else {}
    metrics = read_json(files["metrics.json"], f"metrics.json of zoo entry {name!r}") \
        if "metrics.json" in files else {}
    summary = {k: v for k, v in config.items() if k != "components"}
    return {"name": name, **{k: v for k, v in entry.items() if k != "files"},
            "files": {f: {k: m[k] for k in ("size", "sha256") if k in m}
                      for f, m in entry["files"].items()},
            "config": summary, "metrics": metrics,
            "card": str(files["README.md"]) if "README.md" in files else None,
            "has_weights": bool(entry.get("weights", True))}


def read_card(name, max_bytes=None, root=None):
    """The text of an entry's card (``README.md``), checked against the index first."""
    root = real_root(root)
    entry = find_entry(name, read_index(root))
    if "README.md" not in entry["files"]:
        raise ZooError(f"Zoo entry {name!r} has no card: the index lists no README.md.")
    path = files_of(root, name, entry, only=["README.md"], max_bytes=max_bytes)["README.md"]
    return read_text(path, f"README.md of zoo entry {name!r}")


def file_table(folder):
    """``{file name: {"size", "sha256"}}`` of the regular files in ``folder``."""
    return {p.name: {"size": p.stat().st_size, "sha256": sha256(p)}
            for p in sorted(Path(folder).iterdir()) if p.is_file()}


def write_index_entry(root, name, record):
    """Set ``index.json[entries][name]`` atomically (write a temporary file, replace)."""
    root = Path(root)
    _paths.check_name(name, "entry name")
    path = root / INDEX
    index = read_index(root) if _paths.check_regular_file(path, INDEX) else {
        "format": FORMAT_VERSION, "entries": {}}
    index["entries"][name] = record
    index["entries"] = dict(sorted(index["entries"].items()))
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".tmp", dir=root)
    with os.fdopen(fd, "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
