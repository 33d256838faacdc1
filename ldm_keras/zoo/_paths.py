"""Confinement: every path the zoo reads, writes or returns stays inside its root.

A zoo directory (the packaged one or ``$LDM_KERAS_ZOO``) and its ``index.json`` may be
crafted by someone else, so nothing taken from them is used in a path before it is
checked:

* entry names and versions match :data:`NAME_PATTERN` (lower-case letters, digits,
  ``.``, ``_``, ``-``; 1–64 characters, starting with a letter or digit), file names
  :data:`FILE_PATTERN` (the same with upper case, up to 128 characters); none may
  contain ``..``, so no separator, no absolute path, no parent reference gets through;
* a joined path must resolve (``os.path.realpath``) inside the root it was joined to
  (:func:`safe_join`);
* nothing below the root is followed if it is a symbolic link: entry folders must be real
  directories and entry files regular files (:func:`check_regular_file`); the root
  itself may be a link (the packaged zoo is one) and is resolved first;
* download URLs must be ``https://`` or ``http://`` (:data:`URL_SCHEMES`): a ``file://``
  URL would read a file outside the zoo.

Each check raises :class:`~ldm_keras.zoo.ZooPathError` naming the field, the value and
what was expected.

Example:
    >>> check_name("digits-simclr", "entry name")
    'digits-simclr'
    >>> safe_join("/zoo", "digits-simclr", "config.json", field="file")   # /zoo/digits-...
"""

import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from ._errors import ZooPathError

#: Entry names and versions.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: File names inside an entry.
FILE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: URL schemes a zoo file may be fetched from.
URL_SCHEMES = ("https", "http")

_NAME_RULE = ("1-64 characters from a-z, 0-9, '.', '_', '-', starting with a letter or "
              "digit, without '..'")
_FILE_RULE = ("1-128 characters from A-Z, a-z, 0-9, '.', '_', '-', starting with a letter "
              "or digit, without '..' (a plain file name: no folder, no absolute path)")


def _check(value, field, pattern, rule):
    if not isinstance(value, str) or pattern.fullmatch(value) is None or ".." in value:
        raise ZooPathError(f"{field} {value!r} is not allowed: expected {rule}.")
    return value


def check_name(value, field="entry name"):
    """``value`` if it is a valid entry name, else :class:`ZooPathError` naming ``field``."""
    return _check(value, field, NAME_PATTERN, _NAME_RULE)


def check_version(value, field="version"):
    """``value`` if it is a valid version string (same rule as entry names)."""
    return _check(value, field, NAME_PATTERN, _NAME_RULE)


def check_file_name(value, field="file name"):
    """``value`` if it is a plain file name (no folder, no ``..``, no absolute path)."""
    return _check(value, field, FILE_PATTERN, _FILE_RULE)


def check_url(value, field="url"):
    """``value`` if it is an ``https://`` or ``http://`` URL with a host."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in URL_SCHEMES or not parts.hostname:
        raise ZooPathError(f"{field} {value!r} is not allowed: expected an URL starting "
                           f"with {' or '.join(s + '://' for s in URL_SCHEMES)} and naming "
                           "a host (a file:// URL would read outside the zoo).")
    return value


def real_root(root):
    """The root with every link resolved (the packaged zoo is reached through one)."""
    return Path(os.path.realpath(root))


def check_inside(root, path, field):
    """:class:`ZooPathError` unless ``path`` resolves inside ``root`` (both resolved)."""
    base = os.path.realpath(root)
    target = os.path.realpath(path)
    if os.path.commonpath([base, target]) != base:
        raise ZooPathError(f"{field}: {path} resolves to {target}, outside {base}; "
                           "expected a path inside it.")
    return Path(target)


def safe_join(root, *parts, field):
    """``root / part / ...`` after checking each part is one plain path component, that
    no existing step below ``root`` is a symbolic link, and that the result resolves
    inside ``root``. Nothing is created."""
    for part in parts:
        check_file_name(part, field)
    path = Path(root)
    for part in parts:
        path = path / part
        check_not_symlink(path, field)
    check_inside(root, path, field)
    return path


def check_not_symlink(path, field):
    """:class:`ZooPathError` if ``path`` is a symbolic link (the zoo never follows one)."""
    if os.path.islink(path):
        raise ZooPathError(f"{field}: {path} is a symbolic link (to {os.readlink(path)!r}); "
                           "the zoo never follows links: expected a regular file or folder.")
    return path


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def check_regular_file(path, field):
    """True for a regular file, False if nothing is there; :class:`ZooPathError` for a
    link, folder or anything else."""
    st = _lstat(path)
    if st is None:
        return False
    check_not_symlink(path, field)
    if not stat.S_ISREG(st.st_mode):
        raise ZooPathError(f"{field}: {path} is not a regular file.")
    return True


def check_directory(path, field):
    """True for a real directory, False if nothing is there; :class:`ZooPathError` for a
    link or anything else."""
    st = _lstat(path)
    if st is None:
        return False
    check_not_symlink(path, field)
    if not stat.S_ISDIR(st.st_mode):
        raise ZooPathError(f"{field}: {path} is not a folder.")
    return True


def open_regular(path, field, mode="rb"):
    """Open a regular file for reading without following a link (``O_NOFOLLOW``)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        check_not_symlink(path, field)  # O_NOFOLLOW fails on a link: say so
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ZooPathError(f"{field}: {path} is not a regular file.")
    return os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")
