"""Run folders: checked and locked before any work, every file written atomically.

:func:`output_folder` checks and creates ``out`` and holds a lock for the run;
:func:`write_atomic` writes through a temporary file, ``fsync`` and a rename, so a reader
sees the old file or the whole new one; :func:`save_model` and :func:`save_json` use it.

Example:
    >>> with output_folder("runs/simclr") as out:
    ...     save_json({"loss": 0.1}, os.path.join(out, "metrics.json"))
"""

import contextlib
import json
import os
import tempfile

#: The file that marks a folder as holding a run in progress.
LOCK_FILE = ".lock"


@contextlib.contextmanager
def output_folder(out):
    """Check and create ``out`` before any work; hold ``out/.lock`` for the run.

    Refused with a ``ValueError`` naming ``out``: an existing file, a folder that already
    holds ``run.json`` (a finished run) or ``.lock`` (a run in progress, or one that was
    killed: remove the file), a place that cannot be created or written. Yields the
    absolute path; the lock is removed when the run ends, also on an error.
    """
    path = os.path.abspath(os.path.expanduser(str(out)))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"`out` must be a folder; {path!r} is an existing file.")
    for name, what in (("run.json", "already holds a finished run"),
                       (LOCK_FILE, "is in use by another run (or one that was killed: "
                                   f"remove {LOCK_FILE} if none is running)")):
        if os.path.exists(os.path.join(path, name)):
            raise ValueError(f"`out` {path!r} {what}; expected a new or empty folder "
                             "(choose another --out, or remove the old run).")
    lock = os.path.join(path, LOCK_FILE)
    try:
        os.makedirs(path, exist_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise ValueError(f"`out` {path!r} is in use by another run; expected a folder "
                         "no other run writes to.") from None
    except OSError as e:
        raise ValueError(f"`out` {path!r} cannot be created or written ({e.strerror}); "
                         "expected a writable folder.") from None
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock)


def _fsync_dir(folder):
    with contextlib.suppress(OSError):  # not every file system syncs a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path, write, suffix=""):
    """Write ``path`` through ``write(tmp_path)`` to a temporary file in the same folder,
    flush it to disk and rename it over ``path``: readers see the old file or the whole
    new one, never a part. ``suffix`` is the temporary name's ending (``.keras``)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix,
                               dir=folder)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(folder)


def save_model(model, path):
    write_atomic(path, lambda tmp: model.save(tmp, overwrite=True), suffix=".keras")


def save_json(obj, path, **kwargs):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, **kwargs)

    write_atomic(path, write)
