"""Advisory file locks (flock) between processes and threads of one machine.

One helper for every program: the processor's daemon, per-package and index locks,
the receiver's per-upload lock, the sync agent's outbox lock. The kernel releases a
flock when its holder dies, even by kill -9, so no lock outlives a crash. A fresh
open per call excludes threads of one process too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


@contextlib.contextmanager
def try_lock(path: Path, *, note_holder: bool = False) -> Iterator[bool]:
    """Hold an exclusive lock on path if it is free; yield whether it was taken.

    With note_holder, the file then holds this process's id (see `lock_holder`).
    """
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        if note_holder:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield True
    finally:
        os.close(fd)  # releases the lock


def lock_holder(path: Path) -> str:
    """The process id a `note_holder` lock's holder wrote, or "?"."""
    try:
        return path.read_text(errors="replace")[:32].strip() or "?"
    except OSError:
        return "?"


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on path, waiting for it as long as it takes."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
