"""The movie index as the website reads it: from the store, and as cached in Redis."""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field

from moviepkg.errors import RecordError
from moviepkg.ids import normalize_code
from moviepkg.owner import OWNER_PREFIX, OwnerObjects, apply_owner_changes
from moviepkg.record import INDEX_PREFIX, MovieRecord, index_keys, record_from_dict

from .storage import Storage

log = logging.getLogger("stopmo.website.index")
_VERSION_RE = re.compile(r"[0-9a-f]{16}")


class Unreadable(ValueError):
    """A value in Redis that this worker cannot use; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which movies a gallery shows: a festival's, a hall's, both, or (None) every one."""

    festival: str | None = None
    hall: str | None = None

    def holds(self, movie: MovieRecord) -> bool:
        """Whether movie is in this scope."""
        return self.festival in (None, movie.festival) and self.hall in (None, movie.hall)


EVERYTHING = Scope()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of the public movies, newest first, with lookups, all in this worker's
    memory: the catalog's copy when it reads the store itself (no Redis)."""

    version: str
    fetched_at: float
    movies: tuple[MovieRecord, ...]
    by_id: dict[str, MovieRecord] = field(default_factory=dict)
    by_code: dict[str, list[MovieRecord]] = field(default_factory=dict)

    @classmethod
    def of(cls, movies: list[MovieRecord], fetched_at: float, version: str) -> Snapshot:
        """Index movies (public only, newest first) by id and by code."""
        public = sorted((m for m in movies if m.public), key=lambda m: (m.created_at, m.id),
                        reverse=True)
        by_code: dict[str, list[MovieRecord]] = {}
        for movie in public:
            by_code.setdefault(movie.code, []).append(movie)
        return cls(version, fetched_at, tuple(public), {m.id: m for m in public}, by_code)

    def find_code(self, typed: str) -> list[MovieRecord]:
        """The movies whose code is what a person typed (usually one)."""
        code = normalize_code(typed)
        return list(self.by_code.get(code, [])) if code else []

    def _scoped(self, scope: Scope) -> tuple[MovieRecord, ...]:
        if scope == EVERYTHING:
            return self.movies
        return tuple(m for m in self.movies if scope.holds(m))

    def total(self, scope: Scope = EVERYTHING) -> int:
        """How many movies the scope has."""
        return len(self._scoped(scope))

    def page(self, scope: Scope, offset: int, count: int) -> list[MovieRecord]:
        """count movies of the scope from offset, newest first."""
        return list(self._scoped(scope)[offset:offset + count])

    def get(self, movie_id: str) -> MovieRecord | None:
        """The public movie with this id, or None."""
        return self.by_id.get(movie_id)

    def festivals(self) -> list[str]:
        """The festivals with public movies, newest name first."""
        return sorted({m.festival for m in self.movies}, reverse=True)

    def halls(self) -> list[str]:
        """The halls with public movies."""
        return sorted({m.hall for m in self.movies})


EMPTY = Snapshot("", 0.0, ())


@dataclass(frozen=True, slots=True)
class Meta:
    """What stopmo:index:meta says: the version of the data and when it was fetched."""

    version: str
    fetched_at: float
    generation: int = 0  # which keys hold the movies (website.redisindex.Keys)


def parse_meta(raw: bytes) -> Meta:
    """Check the cached meta; raise Unreadable if it is not what this version writes."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Unreadable(f"meta is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise Unreadable("meta is not a JSON object")
    version, fetched_at = doc.get("version"), doc.get("fetched_at")
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise Unreadable("meta has no valid version")
    if isinstance(fetched_at, bool) or not isinstance(fetched_at, int | float) \
            or not math.isfinite(fetched_at):
        raise Unreadable("meta has no valid fetched_at")
    generation = doc.get("generation", 0)
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise Unreadable("meta has no valid generation")
    return Meta(version, float(fetched_at), generation)


def parse_movies(data: bytes) -> list[MovieRecord]:
    """Read an index: skip (and log) an invalid entry; ValueError if it is no index."""
    doc = json.loads(data)
    items = doc.get("movies") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ValueError("not an index: no list of movies")
    movies = []
    for position, item in enumerate(items):
        try:
            record = record_from_dict(item, f"index movies[{position}]")
        except RecordError as exc:
            log.warning("skipping an index entry: %s", exc)
            continue
        if record.public:  # never show a private movie, even if one reached the store
            movies.append(record)
    return movies


def read_store(storage: Storage, owners: OwnerObjects | None = None) -> list[MovieRecord]:
    """Read the public movies from the store (the index, or every record if it is
    missing) as their families left them (owners: what was read of owner/ last time)."""
    movies = _read_movies(storage)
    if owners is None:
        return movies

    def warn(key: str, exc: RecordError) -> None:
        log.warning("skipping the unreadable owner object %s: %s", key, exc)

    changes = owners.read(storage.list_stamped(OWNER_PREFIX), storage.get_bytes, warn)
    return apply_owner_changes(movies, changes)


def _read_movies(storage: Storage) -> list[MovieRecord]:
    """Every index (each hall's, and a v1 movies/index.json), or every record if there is
    no index at all; each movie once."""
    keys = index_keys(storage.list_keys(INDEX_PREFIX.rstrip("/")))
    if keys:
        found: dict[str, MovieRecord] = {}
        for key in keys:  # the v1 index first: a hall's wins
            data = storage.get_bytes(key)
            try:
                found.update((m.id, m) for m in parse_movies(data or b'{"movies": []}'))
            except (ValueError, RecursionError):
                log.warning("%s is not a readable index: skipped", key)
        return list(found.values())
    movies = []
    for key in storage.list_keys("movies/"):
        if not key.endswith(".json") or "/" in key.removeprefix("movies/"):
            continue
        raw = storage.get_bytes(key)
        try:
            record = record_from_dict(json.loads(raw or b"null"), key)
        except (RecordError, ValueError, RecursionError) as exc:
            log.warning("skipping %s: %s", key, exc)
            continue
        if record.public:
            movies.append(record)
    return movies
