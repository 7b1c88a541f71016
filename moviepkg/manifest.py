"""MANIFEST: the JSON description of a movie package (format v2; v1 still read).

v2 adds one optional field, `owner_key_sha256`: the SHA-256 of the family's owner
key (moviepkg.owner), written for a movie the family chose to publish.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import ManifestError
from .ids import is_package_id, is_station_id
from .times import format_utc, parse_utc

FORMAT = "stopmo-package"
VERSION = 2
READ_VERSIONS = (1, 2)  # v1: written by stations before the owner key
MANIFEST_NAME = "MANIFEST"
PUBLISH = "PUBLISH"
NOPUBLISH = "NOPUBLISH"
FLAGS = (PUBLISH, NOPUBLISH)
MAX_FRAMES = 9999
MAX_TITLE_CHARS = 80
DEFAULT_FPS = 10
FPS_RANGE = (1, 30)

_REQUIRED = ("format", "version", "package_id", "station_id", "created_at", "finished_at",
             "frames")
_OPTIONAL = ("fps", "title")
_OPTIONAL_V2 = ("owner_key_sha256",)
_FRAME_KEYS = ("name", "size", "sha256")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def frame_name(index: int) -> str:
    """Return the file name of frame number index (0 -> `0000.jpg`)."""
    if not 0 <= index < MAX_FRAMES:
        raise ValueError(f"frame index out of range 0..{MAX_FRAMES - 1}: {index}")
    return f"{index:04d}.jpg"


@dataclass(frozen=True, slots=True)
class FrameEntry:
    """One frame as MANIFEST lists it."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed, checked MANIFEST."""

    package_id: str
    station_id: str
    created_at: datetime
    finished_at: datetime
    fps: int
    title: str | None
    frames: tuple[FrameEntry, ...]
    owner_key_sha256: str | None = None

    def to_json(self) -> bytes:
        """Serialise as MANIFEST bytes (UTF-8 JSON, stable key order)."""
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "package_id": self.package_id,
            "station_id": self.station_id,
            "created_at": format_utc(self.created_at),
            "finished_at": format_utc(self.finished_at),
            "fps": self.fps,
        }
        if self.title is not None:
            doc["title"] = self.title
        if self.owner_key_sha256 is not None:
            doc["owner_key_sha256"] = self.owner_key_sha256
        # One frame a line: readable by an operator, and small for 9999 frames.
        lines = [f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},"
                 for key, value in doc.items()]
        frames = ",\n".join(
            "  " + json.dumps({"name": f.name, "size": f.size, "sha256": f.sha256},
                              separators=(", ", ": "))
            for f in self.frames)
        text = "{\n" + "\n".join(lines) + '\n "frames": [\n' + frames + "\n ]\n}\n"
        return text.encode("utf-8")


def title_problem(title: str) -> str | None:
    """Say what is wrong with a title, or None when it is fine."""
    if not 1 <= len(title) <= MAX_TITLE_CHARS:
        return f"1 to {MAX_TITLE_CHARS} characters, found {len(title)}"
    if any(unicodedata.category(ch) == "Cc" for ch in title):
        return "no control characters (tabs, newlines, ...)"
    if title != title.strip():
        return "no leading or trailing spaces"
    return None


def _fail(field: str, expected: str, found: object) -> ManifestError:
    shown = repr(found)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ManifestError(f"MANIFEST {field}", expected, shown)


def _typename(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value),
                                                                        type(value).__name__)


def _take(doc: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = doc[key]
    if type(value) is not kind:  # exact: a bool is not an integer here
        raise ManifestError(f"MANIFEST {key}", what, _typename(value))
    return value


def _timestamp(doc: dict[str, Any], key: str) -> datetime:
    text = _take(doc, key, str, "a UTC timestamp string")
    try:
        return parse_utc(text)
    except ValueError:
        raise _fail(key, "a UTC ISO 8601 timestamp ending in Z", text) from None


def _check_id(doc: dict[str, Any], key: str, valid: Callable[[str], bool], rule: str) -> str:
    value: str = _take(doc, key, str, "a string")
    if not valid(value):
        raise _fail(key, rule, value)
    return value


def parse_manifest(data: bytes, max_bytes: int = 4 * 1024 * 1024) -> Manifest:
    """Parse MANIFEST bytes and check every field; raise ManifestError naming the field."""
    if len(data) > max_bytes:
        raise ManifestError("MANIFEST", f"at most {max_bytes} bytes", f"{len(data)} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError("MANIFEST", "UTF-8 text", f"invalid byte at {exc.start}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError("MANIFEST", "a JSON object",
                            f"invalid JSON at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ManifestError("MANIFEST", "a JSON object", "JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise ManifestError("MANIFEST", "a JSON object", _typename(doc))
    v2 = doc.get("version") == 2 and type(doc.get("version")) is int
    unknown = sorted(set(doc) - set(_REQUIRED) - set(_OPTIONAL) - set(_OPTIONAL_V2 if v2 else ()))
    if unknown:
        raise ManifestError("MANIFEST", f"only v{2 if v2 else 1} keys",
                            f"unknown key {unknown[0]!r}")
    missing = [key for key in _REQUIRED if key not in doc]
    if missing:
        raise ManifestError(f"MANIFEST {missing[0]}", "a value (the key is required)",
                            "no such key")
    if doc["format"] != FORMAT:
        raise _fail("format", repr(FORMAT), doc["format"])
    version = doc["version"]
    if type(version) is not int or version not in READ_VERSIONS:
        raise _fail("version", " or ".join(map(str, READ_VERSIONS)), version)
    package_id = _check_id(doc, "package_id", is_package_id,
                           "lowercase letters, digits and dashes, 1-63 long")
    station_id = _check_id(doc, "station_id", is_station_id,
                           "lowercase letters, digits and dashes, 1-41 long")
    created_at = _timestamp(doc, "created_at")
    finished_at = _timestamp(doc, "finished_at")
    if finished_at < created_at:
        raise _fail("finished_at", f"not before created_at {doc['created_at']}",
                    doc["finished_at"])
    fps = DEFAULT_FPS
    if "fps" in doc:
        fps = _take(doc, "fps", int, "an integer")
        if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise _fail("fps", f"{FPS_RANGE[0]} to {FPS_RANGE[1]}", fps)
    title: str | None = None
    if "title" in doc:
        title = _take(doc, "title", str, "a string")
        assert title is not None
        problem = title_problem(title)
        if problem:
            raise _fail("title", problem, title)
    owner: str | None = None
    if "owner_key_sha256" in doc:
        owner = _take(doc, "owner_key_sha256", str, "a string")
        if not _SHA256_RE.fullmatch(owner or ""):
            raise _fail("owner_key_sha256", "64 lowercase hex digits", owner)
    frames = _parse_frames(_take(doc, "frames", list, "a list"))
    return Manifest(package_id=package_id, station_id=station_id, created_at=created_at,
                    finished_at=finished_at, fps=fps, title=title, frames=frames,
                    owner_key_sha256=owner)


def _parse_frames(items: list[Any]) -> tuple[FrameEntry, ...]:
    if not 1 <= len(items) <= MAX_FRAMES:
        raise _fail("frames", f"1 to {MAX_FRAMES} entries", f"{len(items)} entries")
    frames = []
    for index, item in enumerate(items):
        where = f"frames[{index}]"
        if not isinstance(item, dict):
            raise ManifestError(f"MANIFEST {where}", "an object", _typename(item))
        if set(item) != set(_FRAME_KEYS):
            raise ManifestError(f"MANIFEST {where}", "exactly the keys name, size, sha256",
                                ", ".join(sorted(item)) or "no keys")
        name, size, digest = item["name"], item["size"], item["sha256"]
        if name != frame_name(index):
            raise _fail(f"{where}.name", repr(frame_name(index)), name)
        if type(size) is not int or size < 1:
            raise _fail(f"{where}.size", "a positive integer", size)
        if type(digest) is not str or not _SHA256_RE.fullmatch(digest):
            raise _fail(f"{where}.sha256", "64 lowercase hex digits", digest)
        frames.append(FrameEntry(name=name, size=size, sha256=digest))
    return tuple(frames)
