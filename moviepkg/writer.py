"""Write a movie package at a station, crash-safe from the first frame to the flag.

Order: frames, then MANIFEST, then the flag. Each write is atomic (temp file,
fsync, rename, fsync the folder), so after a power cut every frame that
`add_frame` acknowledged is whole on disk and `PackageWriter.reopen` carries on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import unicodedata
from datetime import datetime
from pathlib import Path

from .atomic import fsync_dir, is_temp_name, unlink_durable, write_atomic
from .errors import WriterError
from .ids import new_package_id, split_package_id
from .jpeg import NotJpeg, jpeg_info
from .manifest import (
    DEFAULT_FPS,
    FLAGS,
    FPS_RANGE,
    MANIFEST_NAME,
    MAX_FRAMES,
    MAX_TITLE_CHARS,
    NOPUBLISH,
    PUBLISH,
    FrameEntry,
    Manifest,
    frame_name,
)
from .owner import is_key_hash
from .times import utc_now

_FRAME_RE = re.compile(r"^(\d{4})\.jpg$")


def clean_title(text: str | None) -> str | None:
    """Make any typed text a valid title: no control characters, single spaces, 80 chars."""
    if text is None:
        return None
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    text = " ".join(text.split())[:MAX_TITLE_CHARS].strip()
    return text or None


class PackageWriter:
    """Build one package in an outbox folder; see the module docstring for the order."""

    def __init__(self, path: Path, station_id: str, created_at: datetime,
                 frames: list[FrameEntry]) -> None:
        self.path = path
        self.station_id = station_id
        self.created_at = created_at
        self._frames = frames
        self._finished = False

    @property
    def package_id(self) -> str:
        """The id of the package, also its folder name."""
        return self.path.name

    @property
    def frame_count(self) -> int:
        """How many frames have been acknowledged."""
        return len(self._frames)

    @classmethod
    def start(cls, outbox: str | os.PathLike[str], station_id: str,
              now: datetime | None = None, nonce: str | None = None) -> PackageWriter:
        """Create a new, empty package folder in outbox."""
        outbox = Path(outbox)
        when = (now or utc_now()).replace(microsecond=0)
        package_id = new_package_id(station_id, when, nonce)
        path = outbox / package_id
        os.mkdir(path)
        fsync_dir(outbox)
        return cls(path, station_id, when, [])

    @classmethod
    def reopen(cls, path: str | os.PathLike[str]) -> PackageWriter:
        """Open an unfinished package after a crash, with every frame that is on disk."""
        path = Path(path)
        parts = split_package_id(path.name)
        if parts is None:
            raise WriterError(f"{path.name}: not a package id built by a station")
        station_id, created_at = parts
        names = os.listdir(path)
        if any(flag in names for flag in FLAGS):
            raise WriterError(f"{path.name}: already finished")
        numbers = []
        for name in names:
            if is_temp_name(name):  # a write that never completed
                os.unlink(path / name)
            elif (match := _FRAME_RE.fullmatch(name)) is not None:
                numbers.append(int(match[1]))
        if MANIFEST_NAME in names:  # finish was cut off before the flag: redo it later
            os.unlink(path / MANIFEST_NAME)
        fsync_dir(path)
        numbers.sort()
        if numbers != list(range(len(numbers))):
            raise WriterError(f"{path.name}: frames are not contiguous from 0000: {numbers}")
        frames = []
        for number in numbers:
            data = (path / frame_name(number)).read_bytes()
            try:
                jpeg_info(data)
            except NotJpeg as exc:
                raise WriterError(f"{path.name}/{frame_name(number)}: {exc}") from None
            frames.append(FrameEntry(frame_name(number), len(data),
                                     hashlib.sha256(data).hexdigest()))
        return cls(path, station_id, created_at, frames)

    def _check_open(self) -> None:
        if self._finished:
            raise WriterError(f"{self.package_id}: already finished")

    def add_frame(self, jpeg: bytes) -> int:
        """Store a JPEG as the next frame; return its index once it is safe on disk."""
        self._check_open()
        if len(self._frames) >= MAX_FRAMES:
            raise WriterError(f"{self.package_id}: a package holds at most {MAX_FRAMES} frames")
        try:
            jpeg_info(jpeg)
        except NotJpeg as exc:
            raise WriterError(f"{self.package_id}: the camera gave a bad JPEG: {exc}") from None
        index = len(self._frames)
        name = frame_name(index)
        write_atomic(self.path / name, jpeg)
        self._frames.append(FrameEntry(name, len(jpeg), hashlib.sha256(jpeg).hexdigest()))
        return index

    def delete_last_frame(self) -> int:
        """Remove the newest frame; return how many frames remain."""
        self._check_open()
        if not self._frames:
            raise WriterError(f"{self.package_id}: there is no frame to delete")
        unlink_durable(self.path / self._frames[-1].name)
        self._frames.pop()
        return len(self._frames)

    def finish(self, title: str | None, publish: bool, now: datetime | None = None,
               fps: int = DEFAULT_FPS, owner_key_sha256: str | None = None) -> Manifest:
        """Write MANIFEST and then the flag; the package is complete when this returns.

        owner_key_sha256: the hash of the family's owner key (moviepkg.owner), if any.
        """
        self._check_open()
        if not self._frames:
            raise WriterError(f"{self.package_id}: a movie needs at least one frame")
        if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise WriterError(f"fps: expected {FPS_RANGE[0]} to {FPS_RANGE[1]}, found {fps}")
        if owner_key_sha256 is not None and not is_key_hash(owner_key_sha256):
            raise WriterError("owner_key_sha256: expected 64 lowercase hex digits")
        # A Pi has no clock battery: never let a clock that jumped back break the package.
        finished = max((now or utc_now()).replace(microsecond=0), self.created_at)
        manifest = Manifest(package_id=self.package_id, station_id=self.station_id,
                            created_at=self.created_at, finished_at=finished, fps=fps,
                            title=clean_title(title), frames=tuple(self._frames),
                            owner_key_sha256=owner_key_sha256)
        write_atomic(self.path / MANIFEST_NAME, manifest.to_json())
        write_atomic(self.path / (PUBLISH if publish else NOPUBLISH), b"")
        self._finished = True
        return manifest

    def discard_if_empty(self) -> bool:
        """Remove the folder of a package that never got a frame; tell whether it did."""
        if self._frames or self._finished:
            return False
        for name in os.listdir(self.path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path / name)
        os.rmdir(self.path)
        fsync_dir(self.path.parent)
        return True


def unfinished_packages(outbox: str | os.PathLike[str]) -> list[Path]:
    """List package folders in outbox that have no flag yet, oldest first."""
    found = []
    for entry in sorted(Path(outbox).iterdir()):
        if entry.is_dir() and not entry.is_symlink() and split_package_id(entry.name) \
                and not any((entry / flag).exists() for flag in FLAGS):
            found.append(entry)
    return found
