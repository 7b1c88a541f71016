"""Read and validate a movie package, trusting nothing in it."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import (
    BadName,
    FlagError,
    FrameMismatch,
    FrameNumberingError,
    IncompletePackage,
    JpegError,
    LimitExceeded,
    ManifestError,
    StrayEntry,
    SubfolderFound,
    SymlinkFound,
)
from .ids import is_package_id, movie_code
from .jpeg import NotJpeg, jpeg_info
from .manifest import FLAGS, MANIFEST_NAME, MAX_FRAMES, PUBLISH, Manifest, parse_manifest

_FRAME_RE = re.compile(r"^(\d{4})\.jpg$")
_FRAMEISH_RE = re.compile(r"^\d+\.(jpe?g|JPE?G)$")


@dataclass(frozen=True, slots=True)
class Limits:
    """What a reader accepts at most; the defaults suit any Pi camera at full size."""

    max_frames: int = MAX_FRAMES
    max_frame_bytes: int = 16 * 1024 * 1024
    max_frame_pixels: int = 40_000_000
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    max_manifest_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """One checked frame."""

    name: str
    size: int
    sha256: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Package:
    """A complete, valid movie package."""

    path: Path
    manifest: Manifest
    publish: bool
    frames: tuple[Frame, ...]

    @property
    def package_id(self) -> str:
        """The package id, which is also the folder name."""
        return self.manifest.package_id

    @property
    def code(self) -> str:
        """The short movie code shown at the station and typed on the website."""
        return movie_code(self.manifest.package_id)

    @property
    def total_bytes(self) -> int:
        """The size of all frames together."""
        return sum(frame.size for frame in self.frames)


@dataclass(slots=True)
class _Listing:
    frames: dict[int, int]  # frame number -> size in bytes
    manifest_size: int | None
    flags: dict[str, int]  # flag name -> size in bytes


def _list(path: Path) -> _Listing:
    listing = _Listing(frames={}, manifest_size=None, flags={})
    with os.scandir(path) as entries:
        for entry in entries:
            name = entry.name
            if entry.is_symlink():
                raise SymlinkFound(name, "a regular file", "a symbolic link")
            if entry.is_dir(follow_symlinks=False):
                raise SubfolderFound(name, "no folders inside a package", "a folder")
            if not entry.is_file(follow_symlinks=False):
                raise StrayEntry(name, "a regular file", "a special file")
            if name.startswith("."):
                raise BadName(name, "no hidden files", "a hidden file")
            size = entry.stat(follow_symlinks=False).st_size
            match = _FRAME_RE.fullmatch(name)
            if match:
                listing.frames[int(match[1])] = size
            elif name == MANIFEST_NAME:
                listing.manifest_size = size
            elif name in FLAGS:
                listing.flags[name] = size
            elif _FRAMEISH_RE.fullmatch(name):
                raise BadName(name, "a frame named with 4 digits and .jpg, like 0007.jpg",
                              repr(name))
            else:
                raise StrayEntry(name, "only frames, MANIFEST and one flag", "a stray file")
    return listing


def _read_exact(path: Path, size: int) -> bytes:
    """Read a file that must be a regular file of exactly size bytes, never via a link."""
    try:  # O_NONBLOCK: a FIFO swapped in after the listing must not hang the reader
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkFound(path.name, "a regular file", "a symbolic link") from None
        raise  # EMFILE, EIO, EACCES...: not the package's fault, worth a retry
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise StrayEntry(path.name, "a regular file", "something else")
        data = fh.read(size + 1)
    if len(data) != size:
        raise FrameMismatch(path.name, f"{size} bytes", f"{len(data)} bytes (it changed)")
    return data


def _check_finished(folder: Path) -> None:
    """Say 'not yet' before anything else while a package is still being written or sent.

    A transfer in progress may hold temp files that a finished package must not: those
    are only errors once MANIFEST and a flag are there.
    """
    if not os.path.lexists(folder / MANIFEST_NAME):
        raise IncompletePackage(MANIFEST_NAME, "a MANIFEST", "none (not finished yet)")
    if not any(os.path.lexists(folder / flag) for flag in FLAGS):
        raise IncompletePackage("PUBLISH or NOPUBLISH", "one flag file",
                                "neither (not finished yet)")


def _check_flags(listing: _Listing) -> bool:
    if len(listing.flags) == 2:
        raise FlagError("PUBLISH and NOPUBLISH", "exactly one flag", "both")
    if listing.manifest_size is None:
        raise IncompletePackage(MANIFEST_NAME, "a MANIFEST", "none (not finished yet)")
    if not listing.flags:
        raise IncompletePackage("PUBLISH or NOPUBLISH", "one flag file",
                                "neither (not finished yet)")
    (flag, size), = listing.flags.items()
    if size != 0:
        raise FlagError(flag, "an empty file", f"{size} bytes")
    return flag == PUBLISH


def _check_numbering(numbers: dict[int, int]) -> int:
    expected = 0
    for number in sorted(numbers):
        if number != expected:
            raise FrameNumberingError(f"{number:04d}.jpg", f"frame {expected:04d}.jpg before it",
                                      f"a gap at {expected:04d}.jpg")
        expected += 1
    return expected


def read_package(path: str | os.PathLike[str], limits: Limits | None = None) -> Package:
    """Validate the package folder at path and return it, or raise a PackageError."""
    limits = limits or Limits()
    folder = Path(path)
    if folder.is_symlink():
        raise SymlinkFound(folder.name, "a package folder", "a symbolic link")
    if not folder.is_dir():
        raise StrayEntry(str(folder), "a package folder", "no such folder")
    if not is_package_id(folder.name):
        raise BadName(folder.name, "a folder named by a package id (lowercase, digits, dashes)",
                      repr(folder.name))
    _check_finished(folder)
    listing = _list(folder)
    publish = _check_flags(listing)
    assert listing.manifest_size is not None
    if listing.manifest_size > limits.max_manifest_bytes:
        raise LimitExceeded(MANIFEST_NAME, f"at most {limits.max_manifest_bytes} bytes",
                            f"{listing.manifest_size} bytes")
    manifest = parse_manifest(_read_exact(folder / MANIFEST_NAME, listing.manifest_size),
                              limits.max_manifest_bytes)
    if manifest.package_id != folder.name:
        raise ManifestError("MANIFEST package_id", f"the folder name {folder.name!r}",
                            repr(manifest.package_id))
    count = len(listing.frames)
    if count > limits.max_frames:
        raise LimitExceeded("frames", f"at most {limits.max_frames}", str(count))
    if count == 0:
        raise FrameNumberingError("frames", "at least one frame 0000.jpg", "none")
    _check_numbering(listing.frames)
    if count != len(manifest.frames):
        raise FrameMismatch("frames", f"{len(manifest.frames)} as MANIFEST lists",
                            f"{count} files")
    total = 0
    for entry in manifest.frames:
        size = listing.frames[int(entry.name[:4])]
        if size > limits.max_frame_bytes:
            raise LimitExceeded(entry.name, f"at most {limits.max_frame_bytes} bytes",
                                f"{size} bytes")
        if size != entry.size:
            raise FrameMismatch(entry.name, f"{entry.size} bytes as MANIFEST says",
                                f"{size} bytes")
        total += size
    if total > limits.max_total_bytes:
        raise LimitExceeded("frames", f"at most {limits.max_total_bytes} bytes in all",
                            f"{total} bytes")
    frames = tuple(_check_frame(folder, entry.name, entry.size, entry.sha256, limits)
                   for entry in manifest.frames)
    return Package(path=folder, manifest=manifest, publish=publish, frames=frames)


def _check_frame(folder: Path, name: str, size: int, digest: str, limits: Limits) -> Frame:
    data = _read_exact(folder / name, size)
    found = hashlib.sha256(data).hexdigest()
    if found != digest:
        raise FrameMismatch(name, f"sha256 {digest[:12]}… as MANIFEST says",
                            f"sha256 {found[:12]}…")
    try:
        info = jpeg_info(data)
    except NotJpeg as exc:
        raise JpegError(name, "a well-formed JPEG", str(exc)) from None
    if info.width * info.height > limits.max_frame_pixels:
        raise LimitExceeded(name, f"at most {limits.max_frame_pixels} pixels",
                            f"{info.width}x{info.height}")
    return Frame(name=name, size=size, sha256=digest, width=info.width, height=info.height)
