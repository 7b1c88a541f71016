"""Crash-safe file writes: temp file, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a create, rename or unlink in it) to disk."""
    _fsync(path, os.O_DIRECTORY)


def fsync_file(path: Path) -> None:
    """Flush a file's content to disk (opened without following a link)."""
    _fsync(path, os.O_NOFOLLOW)


def temp_name(final: Path) -> Path:
    """Return a hidden temporary name beside final (recognisable by its prefix)."""
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")


def is_temp_name(name: str) -> bool:
    """Tell whether a file name is one of our temporary files."""
    return name.startswith(".") and name.endswith(".tmp")


def write_atomic(final: Path, data: bytes) -> None:
    """Write data to final so that after a power cut it is either old or whole."""
    tmp = temp_name(final)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):  # keep the first error, not the clean-up's
            tmp.unlink()
        raise
    fsync_dir(final.parent)


def unlink_durable(path: Path) -> None:
    """Remove a file and make the removal survive a power cut."""
    path.unlink()
    fsync_dir(path.parent)
