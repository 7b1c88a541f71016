"""A corpus of bad packages: each spoils a valid package one way, with the words of its reason.

Shared by tests that must show every kind of bad package is refused for the
right reason (the processor's quarantine, the delivery receiver, ...).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

Spoiler = Callable[[Path], Path]


def _edit(pkg: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    doc = json.loads((pkg / "MANIFEST").read_text())
    change(doc)
    (pkg / "MANIFEST").write_text(json.dumps(doc))
    return pkg


def _replace_frame(pkg: Path, name: str, data: bytes) -> Path:
    (pkg / name).write_bytes(data)

    def fix(doc: dict[str, Any]) -> None:
        for entry in doc["frames"]:
            if entry["name"] == name:
                entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()

    return _edit(pkg, fix)


def _rename(pkg: Path, name: str) -> Path:
    return pkg.rename(pkg.with_name(name))


def _unlink(pkg: Path, name: str) -> Path:
    (pkg / name).unlink()
    return pkg


def _write(pkg: Path, name: str, data: bytes) -> Path:
    (pkg / name).write_bytes(data)
    return pkg


def _flip_byte(pkg: Path, name: str) -> Path:
    data = bytearray((pkg / name).read_bytes())
    data[len(data) // 2] ^= 0x5A
    return _write(pkg, name, bytes(data))


def _subfolder(pkg: Path) -> Path:
    (pkg / "extra").mkdir()
    return pkg


def _symlink(pkg: Path) -> Path:
    (pkg / "0001.jpg").unlink()
    os.symlink("/etc/passwd", pkg / "0001.jpg")
    return pkg


def _fifo(pkg: Path) -> Path:
    os.mkfifo(pkg / "pipe")
    return pkg


def _linked_folder(pkg: Path) -> Path:
    real = pkg.rename(pkg.with_name("real-" + pkg.name))
    link = real.with_name("linked-" + pkg.name)
    link.symlink_to(real)
    return link


def _unsupported_jpeg(pkg: Path) -> Path:
    data = bytearray((pkg / "0000.jpg").read_bytes())
    data[data.index(b"\xff\xc0") + 1] = 0xC3  # lossless JPEG
    return _replace_frame(pkg, "0000.jpg", bytes(data))


def _stray_file_in_inbox(pkg: Path) -> Path:
    stray = pkg.with_name("notes.txt")
    stray.write_text("not a package")
    shutil.rmtree(pkg)
    return stray


# name -> (spoiler, words the reason must contain)
CORPUS: dict[str, tuple[Spoiler, str]] = {
    "uppercase-name": (lambda p: _rename(p, "Bad-Name"), "package id"),
    "gap": (lambda p: _unlink(p, "0001.jpg"), "gap at 0001.jpg"),
    "extra-frame": (lambda p: _write(p, "0003.jpg", (p / "0000.jpg").read_bytes()), "4 files"),
    "checksum": (lambda p: _flip_byte(p, "0002.jpg"), "sha256"),
    "not-jpeg": (lambda p: _replace_frame(p, "0000.jpg", b"GIF89a" + b"\0" * 64),
                 "start marker"),
    "both-flags": (lambda p: _write(p, "NOPUBLISH", b""), "both"),
    "flag-with-content": (lambda p: _write(p, "PUBLISH", b"yes"), "empty file"),
    "manifest-not-json": (lambda p: _write(p, "MANIFEST", b"{oops"), "invalid JSON"),
    "unknown-key": (lambda p: _edit(p, lambda d: d.__setitem__("colour", "red")),
                    "unknown key"),
    "version-3": (lambda p: _edit(p, lambda d: d.__setitem__("version", 3)), "MANIFEST version"),
    "fps-99": (lambda p: _edit(p, lambda d: d.__setitem__("fps", 99)), "MANIFEST fps"),
    "id-mismatch": (lambda p: _edit(p, lambda d: d.__setitem__("package_id", "other-id")),
                    "package_id"),
    "bad-timestamp": (lambda p: _edit(p, lambda d: d.__setitem__("created_at", "yesterday")),
                      "created_at"),
    "subfolder": (_subfolder, "no folders inside"),
    "symlink": (_symlink, "symbolic link"),
    "hidden-file": (lambda p: _write(p, ".DS_Store", b"x"), "hidden"),
    "stray-file": (lambda p: _write(p, "README.txt", b"x"), "stray"),
    "stray-file-in-inbox": (_stray_file_in_inbox, "package folder"),
    "fifo": (_fifo, "special file"),
    "linked-folder": (_linked_folder, "symbolic link"),
    "manifest-not-utf8": (lambda p: _write(p, "MANIFEST", b'{"title": "caf\xe9"}'), "UTF-8"),
    "manifest-nested": (lambda p: _write(p, "MANIFEST", b"[" * 100_000), "nested too deeply"),
    "unsupported-jpeg": (_unsupported_jpeg, "unsupported JPEG kind"),
    "frames-not-a-list": (lambda p: _edit(p, lambda d: d.__setitem__("frames", {})), "a list"),
    "title-too-long": (lambda p: _edit(p, lambda d: d.__setitem__("title", "x" * 81)),
                       "1 to 80 characters"),
}


# --- Hostile frames: valid by checksum and markers (moviepkg accepts them), hard to decode ---
#
# Each spoils frames of a package of `distinct_frame`s; the frame that must be blamed is
# never the middle one (the poster's), so the encoder itself has to find it.


def distinct_frame(index: int, size: tuple[int, int] = (320, 240), mode: str = "RGB",
                   **save: Any) -> bytes:
    """A JPEG frame no other index looks like: two flat halves, brighter with each index."""
    image = Image.new("RGB", size, (30 + 22 * index, 210 - 18 * index, 40 + 9 * index))
    image.paste((200 - 15 * index, 40 + 20 * index, 230 - 25 * index),
                (size[0] // 2, 0, size[0], size[1]))
    if mode != "RGB":
        image = image.convert(mode)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=92, **save)
    return bytes(buf.getvalue())


def _segment(data: bytes, marker: int) -> tuple[int, int]:
    """(start, end) of the first segment with marker."""
    start = data.index(bytes([0xFF, marker]))
    return start, start + 2 + int.from_bytes(data[start + 2:start + 4], "big")


def _garbage_scan(data: bytes) -> bytes:
    _, end = _segment(data, 0xDA)
    noise = hashlib.sha256(data).digest() * ((len(data) - end) // 32 + 1)
    return data[:end] + noise[:len(data) - end - 2].replace(b"\xff", b"\x00") + b"\xff\xd9"


def _truncated(data: bytes) -> bytes:
    start, _ = _segment(data, 0xDA)
    return data[:start + (len(data) - start) // 3] + b"\xff\xd9"


def _no_scan(data: bytes) -> bytes:
    return data[:_segment(data, 0xDA)[0]] + b"\xff\xd9"


def _empty_scan(data: bytes) -> bytes:
    return data[:_segment(data, 0xDA)[1]] + b"\xff\xd9"


def _twelve_bit(data: bytes) -> bytes:
    spoiled = bytearray(data)
    start, _ = _segment(data, 0xC0)
    spoiled[start + 1], spoiled[start + 4] = 0xC1, 12  # extended, 12-bit samples
    return bytes(spoiled)


def _declared(data: bytes, width: int, height: int, second: bool) -> bytes:
    """Declare width x height in the frame header, or in a second one right after it."""
    start, end = _segment(data, 0xC0)
    header = bytearray(data[start:end])
    header[5:9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return data[:end] + bytes(header) + data[end:] if second else \
        data[:start] + bytes(header) + data[end:]


def exif_bytes(orientation: int) -> bytes:
    """EXIF (for Pillow's `save(exif=...)`) holding just an Orientation tag."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return bytes(exif.tobytes())


def _frames(pkg: Path, make: Callable[[int, bytes], bytes], names: tuple[int, ...]) -> Path:
    for index in names:
        name = f"{index:04d}.jpg"
        _replace_frame(pkg, name, make(index, (pkg / name).read_bytes()))
    return pkg


def spoil_frames(damage: Callable[[bytes], bytes], *numbers: int) -> Spoiler:
    """A spoiler that damages frames (0003.jpg by default), keeping the MANIFEST true."""
    return lambda pkg: _frames(pkg, lambda _, data: damage(data), numbers or (3,))


def _remake(*names: int, **how: Any) -> Spoiler:
    return lambda pkg: _frames(pkg, lambda index, _: distinct_frame(index, **how), names)


def _exif_rotated(pkg: Path) -> Path:
    _frames(pkg, lambda i, _: distinct_frame(i, exif=exif_bytes(6)), (3,))
    return _frames(pkg, lambda i, _: distinct_frame(i, exif=exif_bytes(3)), (5,))


def _sizes(pkg: Path) -> Path:
    for index, size in ((1, (200, 300)), (2, (333, 251)), (5, (1280, 720)), (6, (64, 48))):
        _frames(pkg, lambda i, _, s=size: distinct_frame(i, size=s), (index,))
    return pkg


# name -> what it does to a frame's bytes (the markers moviepkg checks stay well-formed)
FRAME_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "garbage-scan": _garbage_scan,
    "truncated": _truncated,
    "no-scan": _no_scan,
    "empty-scan": _empty_scan,
    "12-bit": _twelve_bit,
    "second-frame-header-bomb": lambda d: _declared(d, 30000, 30000, second=True),
    "declared-bomb": lambda d: _declared(d, 6000, 6000, second=False),
}
HOSTILE_FRAMES = 8  # frames per package; the poster is frame 0004.jpg

# name -> (spoiler, the frame to blame and words its reason must contain, or None when the
# movie must come out right, frame by frame)
HOSTILE: dict[str, tuple[Spoiler, tuple[str, str] | None]] = {
    "undecodable": (spoil_frames(_garbage_scan), ("0003.jpg", "ffmpeg cannot decode")),
    "mostly-undecodable": (spoil_frames(_garbage_scan, 1, 3, 5, 6, 7),
                           ("0001.jpg", "ffmpeg cannot decode")),
    "truncated": (spoil_frames(_truncated), ("0003.jpg", "ffmpeg cannot decode")),
    "no-image-data": (spoil_frames(_no_scan), ("0003.jpg", "no image data")),
    "empty-scan": (spoil_frames(_empty_scan), ("0003.jpg", "no image data")),
    "12-bit": (spoil_frames(_twelve_bit), ("0003.jpg", "12-bit")),
    "second-frame-header-bomb": (spoil_frames(FRAME_DAMAGE["second-frame-header-bomb"]),
                                 ("0003.jpg", "second frame header")),
    "declared-bomb": (spoil_frames(FRAME_DAMAGE["declared-bomb"]),
                      ("0003.jpg", "ffmpeg cannot decode")),
    "cmyk": (_remake(3, mode="CMYK"), None),
    "grayscale": (_remake(2, 3, mode="L"), None),
    "progressive": (_remake(3, progressive=True), None),
    "exif-rotated": (_exif_rotated, None),
    "differing-sizes": (_sizes, None),
}
