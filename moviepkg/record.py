"""The published movie record (JSON beside each MP4) and the index of public movies."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .errors import RecordError
from .ids import is_package_id, is_station_id, movie_code
from .manifest import FPS_RANGE, MAX_FRAMES, title_problem
from .owner import is_key_hash
from .reader import Package
from .times import format_utc, parse_utc

RECORD_VERSION = 2
INDEX_VERSION = 1
INDEX_KEY = "movies/index.json"  # v1: the one index of a store written before halls
INDEX_PREFIX = "movies/index/"  # the indexes: movies/index/<hall>/<YYYY-MM-DD>.json
DEFAULT_HALL = "main"
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")
TITLE_CARD_SECONDS = 4.0

_RECORD_KEYS_V1 = ("id", "code", "title", "station_id", "created_at", "duration_s", "fps",
                   "frames", "video", "poster", "public", "version")
# v2: the hash of the family's owner key (or null), the size of the poster and video, the
# festival (edition) and the hall (processing unit) it was made at.
_RECORD_KEYS = (*_RECORD_KEYS_V1, "owner_key_sha256", "width", "height", "festival", "hall")
_MAX_SIDE = 7680


def video_key(package_id: str) -> str:
    """Where the MP4 of a movie lives in the store."""
    return f"movies/{package_id}.mp4"


def poster_key(package_id: str) -> str:
    """Where the poster JPEG of a movie lives in the store."""
    return f"movies/{package_id}.jpg"


def record_key(package_id: str) -> str:
    """Where the record JSON of a movie lives in the store."""
    return f"movies/{package_id}.json"


def is_name(text: object) -> bool:
    """Whether text is a valid hall or festival name: lowercase letters, digits, dashes."""
    return isinstance(text, str) and _NAME_RE.fullmatch(text) is not None


def index_key(hall: str, day: date) -> str:
    """The index of one hall's public movies of one day (UTC): each hall writes only its own."""
    return f"{INDEX_PREFIX}{hall}/{day:%Y-%m-%d}.json"


def index_keys(keys: Iterable[str]) -> list[str]:
    """The indexes among keys, in the order to read them: the v1 index first, so that a
    movie a hall's index also lists ends up as that index has it."""
    return sorted((key for key in keys if is_index_key(key)), key=lambda k: (k != INDEX_KEY, k))


def is_index_key(key: str) -> bool:
    """Whether key is an index: one of a hall's, or the v1 index."""
    if key == INDEX_KEY:
        return True
    hall, _, day = key.removeprefix(INDEX_PREFIX).partition("/")
    return key.startswith(INDEX_PREFIX) and is_name(hall) and \
        re.fullmatch(r"\d{4}-\d{2}-\d{2}\.json", day) is not None


@dataclass(frozen=True, slots=True)
class MovieRecord:
    """What the store says about one published movie."""

    id: str
    code: str
    title: str | None
    station_id: str
    created_at: datetime
    duration_s: float
    fps: int
    frames: int
    video: str
    poster: str
    public: bool
    version: int = RECORD_VERSION
    owner_key_sha256: str | None = None
    width: int | None = None  # of the video and the poster; None in a v1 record
    height: int | None = None
    festival: str = ""  # the edition, e.g. "2026" or "jff-2026"; a v1 record: its year
    hall: str = DEFAULT_HALL  # the processing unit that published it; a v1 record: main

    @property
    def index_key(self) -> str:
        """The index that lists this movie (its hall's, of the day it was made)."""
        return index_key(self.hall, self.created_at.date())

    @classmethod
    def for_package(cls, package: Package, duration_s: float | None = None,
                    size: tuple[int, int] | None = None, festival: str = "",
                    hall: str = DEFAULT_HALL) -> MovieRecord:
        """Describe the movie made from package (duration: title card plus frames) at
        size (width, height) of its video and poster, published by hall during festival
        (empty: the year it was made)."""
        manifest = package.manifest
        if duration_s is None:
            duration_s = TITLE_CARD_SECONDS + len(manifest.frames) / manifest.fps
        return cls(id=manifest.package_id, code=package.code, title=manifest.title,
                   station_id=manifest.station_id, created_at=manifest.created_at,
                   duration_s=round(duration_s, 3), fps=manifest.fps,
                   frames=len(manifest.frames), video=video_key(manifest.package_id),
                   poster=poster_key(manifest.package_id), public=package.publish,
                   owner_key_sha256=manifest.owner_key_sha256,
                   width=size[0] if size else None, height=size[1] if size else None,
                   festival=festival or str(manifest.created_at.year), hall=hall)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return {"id": self.id, "code": self.code, "title": self.title,
                "station_id": self.station_id, "created_at": format_utc(self.created_at),
                "duration_s": self.duration_s, "fps": self.fps, "frames": self.frames,
                "video": self.video, "poster": self.poster, "public": self.public,
                "version": RECORD_VERSION, "owner_key_sha256": self.owner_key_sha256,
                "width": self.width, "height": self.height,
                "festival": self.festival or str(self.created_at.year), "hall": self.hall}

    def to_json(self) -> bytes:
        """Serialise the record as UTF-8 JSON."""
        return (json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n").encode()


@dataclass(frozen=True, slots=True)
class MovieIndex:
    """Every public movie, newest first: what the website reads."""

    generated_at: datetime
    movies: tuple[MovieRecord, ...]

    @classmethod
    def build(cls, records: Iterable[MovieRecord], now: datetime) -> MovieIndex:
        """Index the public records, newest first; a later record of the same id wins."""
        latest = {record.id: record for record in records}
        public = [record for record in latest.values() if record.public]
        ordered = sorted(public, key=lambda r: (r.created_at, r.id), reverse=True)
        return cls(generated_at=now.replace(microsecond=0), movies=tuple(ordered))

    def to_json(self) -> bytes:
        """Serialise the index as UTF-8 JSON."""
        doc = {"version": INDEX_VERSION, "generated_at": format_utc(self.generated_at),
               "movies": [record.to_dict() for record in self.movies]}
        return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _load(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecordError(what, "UTF-8 JSON", "bytes that are not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise RecordError(what, "JSON", f"invalid JSON at line {exc.lineno}") from None
    except RecursionError:
        raise RecordError(what, "JSON", "JSON nested too deeply") from None


def _want(ok: bool, where: str, expected: str, found: object) -> None:
    if not ok:
        raise RecordError(where, expected, repr(found))


def record_from_dict(doc: Any, where: str = "record") -> MovieRecord:
    """Check a decoded record and return it; raise RecordError naming the field."""
    _want(isinstance(doc, dict), where, "a JSON object", type(doc).__name__)
    version = doc.get("version")
    _want(version in (1, RECORD_VERSION) and type(version) is int, f"{where} version",
          f"1 or {RECORD_VERSION}", version)
    wanted = set(_RECORD_KEYS if version == RECORD_VERSION else _RECORD_KEYS_V1)
    keys = set(doc)
    _want(keys == wanted, where, f"the v{version} keys " + ", ".join(sorted(wanted)),
          sorted(keys ^ wanted))
    movie_id = doc["id"]
    _want(isinstance(movie_id, str) and is_package_id(movie_id), f"{where} id", "a package id",
          movie_id)
    _want(doc["code"] == movie_code(movie_id), f"{where} code", movie_code(movie_id),
          doc["code"])
    title = doc["title"]
    _want(title is None or (isinstance(title, str) and title_problem(title) is None),
          f"{where} title", "null or a valid title", title)
    _want(isinstance(doc["station_id"], str) and is_station_id(doc["station_id"]),
          f"{where} station_id", "a station id", doc["station_id"])
    try:
        created_at = parse_utc(doc["created_at"]) if isinstance(doc["created_at"], str) else None
    except ValueError:
        created_at = None
    _want(created_at is not None, f"{where} created_at", "a UTC timestamp", doc["created_at"])
    assert created_at is not None
    duration = doc["duration_s"]
    _want(type(duration) in (int, float) and math.isfinite(duration) and duration > 0,
          f"{where} duration_s", "a positive number of seconds", duration)
    fps = doc["fps"]
    _want(type(fps) is int and FPS_RANGE[0] <= fps <= FPS_RANGE[1], f"{where} fps",
          f"an integer {FPS_RANGE[0]}-{FPS_RANGE[1]}", fps)
    frames = doc["frames"]
    _want(type(frames) is int and 1 <= frames <= MAX_FRAMES, f"{where} frames",
          f"an integer 1-{MAX_FRAMES}", frames)
    _want(doc["video"] == video_key(movie_id), f"{where} video", video_key(movie_id),
          doc["video"])
    _want(doc["poster"] == poster_key(movie_id), f"{where} poster", poster_key(movie_id),
          doc["poster"])
    _want(type(doc["public"]) is bool, f"{where} public", "true or false", doc["public"])
    owner, width, height = (doc.get(k) for k in ("owner_key_sha256", "width", "height"))
    _want(owner is None or is_key_hash(owner), f"{where} owner_key_sha256",
          "null or 64 lowercase hex digits", owner)
    for name, side in (("width", width), ("height", height)):
        _want(side is None or (type(side) is int and 1 <= side <= _MAX_SIDE), f"{where} {name}",
              f"null or an integer 1-{_MAX_SIDE}", side)
    _want((width is None) == (height is None), f"{where} width and height",
          "both or neither", (width, height))
    festival, hall = doc.get("festival", str(created_at.year)), doc.get("hall", DEFAULT_HALL)
    _want(is_name(festival), f"{where} festival", "lowercase letters, digits and dashes",
          festival)
    _want(is_name(hall), f"{where} hall", "lowercase letters, digits and dashes", hall)
    return MovieRecord(id=movie_id, code=doc["code"], title=title, station_id=doc["station_id"],
                       created_at=created_at, duration_s=float(duration), fps=fps, frames=frames,
                       video=doc["video"], poster=doc["poster"], public=doc["public"],
                       owner_key_sha256=owner, width=width, height=height,
                       festival=festival, hall=hall)


def parse_record(data: bytes) -> MovieRecord:
    """Load a record from its JSON bytes."""
    return record_from_dict(_load(data, "record"))


def parse_index(data: bytes) -> MovieIndex:
    """Load the index from its JSON bytes; every entry must be public, newest first."""
    doc = _load(data, "index")
    _want(isinstance(doc, dict), "index", "a JSON object", type(doc).__name__)
    _want(set(doc) == {"version", "generated_at", "movies"}, "index",
          "the keys version, generated_at, movies", sorted(doc))
    _want(doc["version"] == INDEX_VERSION and type(doc["version"]) is int, "index version",
          str(INDEX_VERSION), doc["version"])
    try:
        generated_at = parse_utc(doc["generated_at"])
    except (ValueError, TypeError):
        raise RecordError("index generated_at", "a UTC timestamp",
                          repr(doc["generated_at"])) from None
    _want(isinstance(doc["movies"], list), "index movies", "a list", doc["movies"])
    movies = tuple(record_from_dict(item, f"index movies[{i}]")
                   for i, item in enumerate(doc["movies"]))
    for i, movie in enumerate(movies):
        _want(movie.public, f"index movies[{i}] public", "true (the index is public only)",
              movie.public)
        if i:
            before = movies[i - 1]
            _want((before.created_at, before.id) >= (movie.created_at, movie.id),
                  f"index movies[{i}]", "newest first", movie.id)
    return MovieIndex(generated_at=generated_at, movies=movies)
