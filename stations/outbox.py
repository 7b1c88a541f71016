"""The station's outbox and its `sent/` archive, as the sync agent sees them.

Packages are only read here until their delivery is verified; then one rename moves
them to `sent/`, which is pruned oldest first after `retention_days` or when the
disk runs low. Unfinished packages (no MANIFEST and flag yet) are never touched.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from moviepkg.atomic import fsync_dir, fsync_file
from moviepkg.ids import split_package_id
from moviepkg.manifest import FLAGS, MANIFEST_NAME

log = logging.getLogger("stopmo.station")
DAY = 86400.0
NEWEST_SENT_LOOKED_AT = 3  # the last capture is in the newest packages


def free_bytes(path: Path) -> int:
    """Free space for an unprivileged writer on path's file system."""
    return shutil.disk_usage(path).free


def _created(path: Path) -> float:
    parts = split_package_id(path.name)
    return parts[1].timestamp() if parts else path.stat().st_mtime


def _finished(path: Path) -> bool:
    return (path / MANIFEST_NAME).is_file() and any((path / f).is_file() for f in FLAGS)


class Outbox:
    """The outbox and sent folders of one station."""

    def __init__(self, outbox: Path, sent: Path, clock: Callable[[], float] = time.time,
                 disk_free: Callable[[Path], int] = free_bytes) -> None:
        self.outbox = outbox
        self.sent = sent
        self.clock = clock
        self.disk_free = disk_free

    def _packages(self, folder: Path) -> list[Path]:
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        found = [Path(entry.path) for entry in entries if not entry.name.startswith(".")
                 and entry.is_dir(follow_symlinks=False)]
        return sorted(found, key=lambda path: (_created(path), path.name))

    def finished(self) -> list[Path]:
        """Package folders with MANIFEST and a flag, oldest first (not yet validated)."""
        return [path for path in self._packages(self.outbox) if _finished(path)]

    def unfinished(self) -> list[Path]:
        """Package folders still being shot (or abandoned): the agent leaves them alone."""
        return [path for path in self._packages(self.outbox) if not _finished(path)]

    def archive(self, package: Path) -> Path:
        """Move a delivered package into sent/ (same file system: one rename)."""
        self.sent.mkdir(parents=True, exist_ok=True)
        target = self.sent / package.name
        if target.exists():  # delivered before, and kept: the same package
            shutil.rmtree(target)
        try:
            os.rename(package, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self._copy_across(package, target)
        now = self.clock()
        os.utime(target, (now, now))  # its days in sent/ count from now
        fsync_dir(self.sent)
        fsync_dir(self.outbox)
        return target

    def _copy_across(self, package: Path, target: Path) -> None:
        """sent/ is on another file system: copy durably, rename, and only then delete."""
        temp = target.with_name(f".{target.name}.copy")
        shutil.rmtree(temp, ignore_errors=True)
        shutil.copytree(package, temp)
        for name in os.listdir(temp):
            fsync_file(temp / name)
        fsync_dir(temp)
        os.rename(temp, target)
        fsync_dir(target.parent)
        shutil.rmtree(package)

    def prune(self, retention_days: float, min_free_bytes: int) -> list[str]:
        """Delete sent packages: older than retention_days, then oldest first while low."""
        removed: list[str] = []
        if not self.sent.is_dir():
            return removed
        for entry in self.sent.iterdir():  # a copy cut short by a power cut
            if entry.name.startswith(".") and entry.name.endswith(".copy"):
                shutil.rmtree(entry, ignore_errors=True)
        kept = sorted(self._packages(self.sent), key=lambda path: path.stat().st_mtime)
        limit = self.clock() - retention_days * DAY
        while kept and kept[0].stat().st_mtime < limit:
            removed.append(self._remove(kept.pop(0), f"older than {retention_days:g} days"))
        while kept and self.disk_free(self.sent) < min_free_bytes:
            removed.append(self._remove(kept.pop(0), "disk low"))
        free = self.disk_free(self.sent)
        if free < min_free_bytes:
            log.warning("disk low: %d MB free and nothing left to prune in sent/",
                        free // 2**20)
        return removed

    def _remove(self, package: Path, why: str) -> str:
        shutil.rmtree(package)
        log.info("pruned from sent/ (%s)", why, extra={"package_id": package.name})
        return package.name

    def last_capture(self) -> datetime | None:
        """The newest frame's time, in the outbox or the newest sent packages."""
        folders = self._packages(self.outbox) + self._packages(self.sent)[-NEWEST_SENT_LOOKED_AT:]
        newest = 0.0
        for folder in folders:
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.name.endswith(".jpg") and not entry.name.startswith("."):
                            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
            except FileNotFoundError:  # delivered or pruned meanwhile
                continue
        return datetime.fromtimestamp(newest, UTC) if newest else None
