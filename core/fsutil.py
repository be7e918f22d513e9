"""Crash-safe file writes: write a temporary file, fsync it, then rename it into place."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_private_dir(folder: Path) -> Path:
    """Create ``folder`` if needed and make it readable by its owner only (0700): it holds
    the database, with subscribers' addresses and the signing key."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix" and folder.stat().st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def make_private_file(path: Path) -> None:
    """Create ``path`` with mode 0600 (owner only) if it is missing, else narrow its mode.

    An existing file is never opened here: closing any descriptor of a SQLite database
    drops every POSIX lock this process holds on it, including those of open connections.
    """
    if not path.exists():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:  # created meanwhile by another process: narrow it below
            pass
    if os.name == "posix" and path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)``, fsync the result and rename it to ``path``.

    A crash at any point leaves either the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1), encoding="utf-8"))


_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
# How SQLite (its EFBIG/ENOSPC surfaces as an I/O error) and PostgreSQL say it.
_FULL_WORDS = ("database or disk is full", "disk i/o error", "no space left", "could not extend")


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc``, or an error that caused it, is a full disk, a quota or a file-size
    limit, as the OS, SQLite or PostgreSQL report it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return True
        name = type(current).__name__
        if name == "DiskFull" or (
            name == "OperationalError" and str(current).lower().startswith(_FULL_WORDS)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False
