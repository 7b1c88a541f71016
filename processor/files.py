"""Moving packages between the inbox, the work dir and the quarantine, durably.

A rename where it can (the same file system: atomic), else a durable copy; links stay
links and special files (FIFOs, devices) are never read. `move_in` makes an entry appear
whole or not at all where a watcher looks (the daemon's inbox).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from moviepkg.atomic import fsync_dir, fsync_file

Stamp = frozenset[tuple[str, int, int, int]]


def folder_stamp(folder: Path) -> Stamp | None:
    """What tells a changed folder apart: each entry's name, inode, size and mtime (None if
    it cannot be listed). A rename keeps it; writing, adding or removing a file does not."""
    try:
        with os.scandir(folder) as entries:
            return frozenset((entry.name, entry.inode(), info.st_size, info.st_mtime_ns)
                             for entry in entries
                             for info in (entry.stat(follow_symlinks=False),))
    except OSError:
        return None


def free_name(path: Path) -> Path:
    """path, or path-2, path-3, ... whichever does not exist yet."""
    candidate, n = path, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def copy_entry(source: Path, target: Path) -> None:
    """Copy a folder or a single entry, durably (links stay links, special files are skipped)."""
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, ignore_dangling_symlinks=True,
                        copy_function=_copy_regular)
        for folder, _, files in os.walk(target):
            for name in files:
                _fsync_file(Path(folder, name))
            fsync_dir(Path(folder))
    elif source.is_symlink():
        os.symlink(os.readlink(source), target)
    else:
        _copy_regular(str(source), str(target))
        _fsync_file(target)


def _copy_regular(source: str, target: str) -> None:
    if not os.path.islink(source) and not os.path.isfile(source):
        return  # a FIFO or device: never read it (it could block forever)
    shutil.copy2(source, target, follow_symlinks=False)


def _fsync_file(path: Path) -> None:
    if not path.is_symlink() and path.is_file():
        fsync_file(path)


def remove_entry(path: Path) -> None:
    """Remove a folder (with everything in it) or a single entry."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def move_or_copy(source: Path, target: Path, keep: bool) -> None:
    """Rename source to target; across file systems (or with keep), copy durably."""
    if keep:
        copy_entry(source, target)
    else:
        try:
            os.rename(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            copy_entry(source, target)
            remove_entry(source)
    fsync_dir(target.parent)


def move_in(source: Path, target: Path) -> None:
    """Move source to target so that target appears whole or not at all.

    Across file systems the copy is made under a hidden name beside target (a watcher
    ignores names starting with '.') and renamed into place once complete.
    """
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        hidden = free_name(target.with_name(f".{target.name}.moving"))
        copy_entry(source, hidden)
        os.rename(hidden, target)
        remove_entry(source)
        fsync_dir(source.parent)
    fsync_dir(target.parent)
