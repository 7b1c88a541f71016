"""A corpus of bad packages: each spoils a valid package one way, with the words of its reason.

Shared by tests that must show every kind of bad package is refused for the
right reason (the processor's quarantine, the delivery receiver, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    "version-2": (lambda p: _edit(p, lambda d: d.__setitem__("version", 2)), "MANIFEST version"),
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
