"""The receiver's staging area: what an upload may cost on disk, watched while rsync runs.

A station's rsync may compress (`-z`), so a few kB on the wire can become gigabytes on
disk (zeros compress to nothing and rsync writes them out, sparse or not). The limits of a
package (moviepkg's `Limits`) are therefore enforced while the bytes land: rsync's own
`--max-size` skips any file larger than a frame may be, and a watcher measures the
station's staging folders and stops rsync once they exceed one package's budget or the
inbox's free space falls under its floor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from moviepkg.manifest import MAX_FRAMES
from moviepkg.reader import Limits

_BLOCK = 4096  # what one more file or folder costs at least (a block, an inode)
_POLL_SECONDS = 0.05  # how often the watcher measures (about one poll of writing may slip)
_TERM_GRACE_SECONDS = 3.0  # after SIGTERM, before SIGKILL


@dataclass(frozen=True, slots=True)
class Budget:
    """What one station's staging may hold at most, and the free space kept in the inbox."""

    max_bytes: int
    max_entries: int
    min_free_bytes: int

    @classmethod
    def for_limits(cls, limits: Limits, min_free_bytes: int,
                   max_bytes: int | None = None) -> Budget:
        """The budget of the largest valid package (frames, MANIFEST, a flag, rsync's temps)."""
        # While a frame is resumed, its partial copy and the new temp file exist together.
        largest = (limits.max_total_bytes + limits.max_manifest_bytes
                   + 2 * limits.max_frame_bytes + (limits.max_frames + 8) * _BLOCK)
        return cls(max_bytes=largest if max_bytes is None else max_bytes,
                   max_entries=min(limits.max_frames, MAX_FRAMES) + 8,
                   min_free_bytes=min_free_bytes)


def max_file_bytes(limits: Limits) -> int:
    """The largest file a valid package holds (rsync's `--max-size` on the receiving side)."""
    return max(limits.max_frame_bytes, limits.max_manifest_bytes)


@dataclass(frozen=True, slots=True)
class Usage:
    """What staged folders cost: bytes (apparent size, at least a block each) and entries."""

    bytes: int
    entries: int


def usage(folders: Iterable[Path]) -> Usage:
    """Measure folders without following links; a file that vanishes meanwhile is skipped."""
    total = entries = 0
    pending = list(folders)
    while pending:  # a stack, not recursion: a station can send folders nested deeply
        folder = pending.pop()
        with contextlib.suppress(FileNotFoundError, NotADirectoryError), \
                os.scandir(folder) as found:
            for entry in found:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                entries += 1
                # A sparse file costs its apparent size: rsync fills the holes on commit.
                total += max(info.st_size, info.st_blocks * 512, _BLOCK)
                if stat.S_ISDIR(info.st_mode):
                    pending.append(Path(entry.path))
    return Usage(total, entries)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a watched rsync ended: its status, and why it was stopped if it was."""

    returncode: int
    stopped: str | None = None  # "limit" (over budget) or "full" (free space under the floor)
    detail: str = ""


def run_watched(argv: list[str], measure: Callable[[], Usage], free: Callable[[], int],
                budget: Budget, poll: float = _POLL_SECONDS) -> Outcome:
    """Run argv (stdin and stdout stay the station's channel); stop it when over budget."""
    # Its own process group: rsync's receiving side is two processes, both must stop.
    proc = subprocess.Popen(argv, process_group=0)
    try:
        while True:
            started = time.monotonic()
            verdict = _over(measure(), free(), budget)
            if verdict is not None:
                _stop(proc)
                return Outcome(proc.returncode, *verdict)
            # Measuring a large package takes a while: poll less often, not less accurately.
            wait = max(poll, 4 * (time.monotonic() - started))
            with contextlib.suppress(subprocess.TimeoutExpired):
                return Outcome(proc.wait(wait))
    finally:
        if proc.poll() is None:  # an exception in the watcher: never leave rsync writing
            _stop(proc)


def _over(used: Usage, free: int, budget: Budget) -> tuple[str, str] | None:
    if used.bytes > budget.max_bytes:
        return "limit", (f"{used.bytes // 2**20} MB staged, more than the "
                         f"{budget.max_bytes // 2**20} MB a package may take")
    if used.entries > budget.max_entries:
        return "limit", f"more than {budget.max_entries} files (a package has at most that)"
    if free < budget.min_free_bytes:
        return "full", (f"{free // 2**20} MB free in the inbox, at least "
                        f"{budget.min_free_bytes // 2**20} MB kept free")
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group (rsync keeps a partial frame for the resume), then SIGKILL it."""
    for sig, grace in ((signal.SIGTERM, _TERM_GRACE_SECONDS), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue


def remove(folder: Path) -> None:
    """Delete a staged folder however deeply it nests (shutil.rmtree recurses per level)."""
    pending = [str(folder)]
    while pending:
        top = pending[-1]
        deeper = []
        try:
            with os.scandir(top) as found:
                for entry in found:
                    if entry.is_dir(follow_symlinks=False):
                        deeper.append(entry.path)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)
        except FileNotFoundError:
            pending.pop()
            continue
        if deeper:  # empty those first; this folder is looked at again afterwards
            pending.extend(deeper)
            continue
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(top)
        pending.pop()
