"""The list of public movies, cached in Redis and refreshed without making anyone wait.

Redis holds the index (as the store has it, public records only) with a version
and the time it was fetched. Each worker keeps the parsed copy of the version it
last saw, so a request costs one small Redis read. When the copy is older than
`max_age`, the first request to notice takes a Redis lock (SET NX EX with a token)
and refreshes in a background thread; it and every other request are served the
stale copy at once. Only a cold cache (nothing in Redis yet) makes a request wait,
at most `cold_wait` seconds, for the one worker that fetches.

When Redis is down, workers read the store themselves (at most once per max_age);
when the store is down, the last copy is served.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from moviepkg.errors import RecordError
from moviepkg.ids import normalize_code
from moviepkg.record import INDEX_KEY, MovieIndex, MovieRecord, record_from_dict

from .storage import Storage, StorageDown

log = logging.getLogger("stopmo.website.catalog")
PREFIX = "stopmo:index:"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of the public movies, newest first, with lookups."""

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


EMPTY = Snapshot("", 0.0, ())


def parse_movies(data: bytes) -> list[MovieRecord]:
    """Read an index tolerantly: skip (and log) any entry that is invalid or not public."""
    doc = json.loads(data)
    movies = []
    for position, item in enumerate(doc.get("movies", []) if isinstance(doc, dict) else []):
        try:
            record = record_from_dict(item, f"index movies[{position}]")
        except RecordError as exc:
            log.warning("skipping an index entry: %s", exc)
            continue
        if record.public:  # never show a private movie, even if one reached the store
            movies.append(record)
    return movies


def read_store(storage: Storage) -> list[MovieRecord]:
    """Read the public movies from the store: the index, or every record if it is missing."""
    data = storage.get_bytes(INDEX_KEY)
    if data is not None:
        try:
            return parse_movies(data)
        except (ValueError, RecursionError):
            log.warning("movies/index.json is not readable JSON: listing the records")
    movies = []
    for key in storage.list_keys("movies/"):
        if not key.endswith(".json") or key == INDEX_KEY:
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


class Catalog:
    """The movies a visitor may see, from Redis when it can, from the store when not."""

    def __init__(self, storage: Storage, cache: redis.Redis | None, max_age: float = 60.0,
                 cold_wait: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.cache = cache
        self.max_age = max_age
        self.cold_wait = cold_wait
        self.clock = clock
        self._local = EMPTY
        self._local_lock = threading.Lock()
        self.last_error = ""

    def snapshot(self) -> Snapshot:
        """The movies to show now; never raises, never waits long."""
        if self.cache is None:
            return self._direct()
        try:
            return self._cached()
        except redis.RedisError as exc:
            self.last_error = f"redis: {exc}"
            log.warning("redis unavailable, reading the store directly: %s", exc)
            return self._direct()

    # --- Redis path ---------------------------------------------------------------------

    def _cached(self) -> Snapshot:
        assert self.cache is not None
        meta = self._meta()
        if meta is None:  # cold: one worker fetches, the others wait a little for it
            token = self._try_lock()
            if token is not None:
                return self._refresh(token)
            deadline = time.monotonic() + self.cold_wait
            while meta is None and time.monotonic() < deadline:
                time.sleep(0.05)
                meta = self._meta()
            if meta is None:
                return self._direct()
        snapshot = self._load(meta)
        if self.clock() - snapshot.fetched_at > self.max_age \
                and not self.cache.exists(PREFIX + "failed"):
            token = self._try_lock()
            if token is not None:
                threading.Thread(target=self._refresh_quietly, args=(token,),
                                 name="index-refresh", daemon=True).start()
        return snapshot

    def _meta(self) -> dict[str, Any] | None:
        assert self.cache is not None
        raw = self.cache.get(PREFIX + "meta")
        return json.loads(raw) if raw else None

    def _load(self, meta: dict[str, Any]) -> Snapshot:
        local = self._local
        if local.version == meta["version"]:
            return local
        assert self.cache is not None
        data = self.cache.get(PREFIX + "data")
        if data is None:
            return local
        raw = data.encode() if isinstance(data, str) else data
        snapshot = Snapshot.of(parse_movies(raw), float(meta["fetched_at"]), meta["version"])
        with self._local_lock:
            self._local = snapshot
        return snapshot

    def _try_lock(self) -> str | None:
        assert self.cache is not None
        token = hashlib.sha256(f"{time.time_ns()}-{threading.get_ident()}".encode()).hexdigest()
        taken = self.cache.set(PREFIX + "lock", token, nx=True, ex=30)
        return token if taken else None

    def _release(self, token: str) -> None:
        assert self.cache is not None
        # Delete the lock only if it is still ours (it may have expired and been retaken).
        self.cache.eval("if redis.call('get', KEYS[1]) == ARGV[1] then "
                        "return redis.call('del', KEYS[1]) end return 0", 1,
                        PREFIX + "lock", token)

    def _refresh(self, token: str | None = None) -> Snapshot:
        """Fetch from the store, publish to Redis and to this worker."""
        assert self.cache is not None
        try:
            movies = read_store(self.storage)
        except StorageDown as exc:
            self.last_error = f"storage: {exc}"
            log.warning("storage unavailable, serving the last copy: %s", exc)
            self.cache.set(PREFIX + "failed", "1", ex=10)  # do not hammer a store that is down
            if token is not None:
                self._release(token)
            return self._local
        index = MovieIndex.build(movies, datetime.now(UTC))
        data = index.to_json()
        version = hashlib.sha256(data).hexdigest()[:16]
        fetched_at = self.clock()
        meta = json.dumps({"version": version, "fetched_at": fetched_at})
        pipe = self.cache.pipeline()
        pipe.set(PREFIX + "data", data)
        pipe.set(PREFIX + "meta", meta)
        pipe.execute()
        if token is not None:
            self._release(token)
        snapshot = Snapshot.of(list(index.movies), fetched_at, version)
        with self._local_lock:
            self._local = snapshot
        self.last_error = ""
        log.info("index refreshed: %d public movies", len(snapshot.movies))
        return snapshot

    def _refresh_quietly(self, token: str) -> None:
        try:
            self._refresh(token)
        except Exception:  # a background refresh must never take a worker down
            log.exception("index refresh failed")
            with contextlib.suppress(redis.RedisError):
                self._release(token)

    # --- without Redis -----------------------------------------------------------------------

    def _direct(self) -> Snapshot:
        """Read the store directly, at most once per max_age per worker; last copy if down."""
        local = self._local
        if local.version and self.clock() - local.fetched_at < self.max_age:
            return local
        try:
            movies = read_store(self.storage)
        except StorageDown as exc:
            self.last_error = f"storage: {exc}"
            log.warning("storage unavailable, serving the last copy: %s", exc)
            return local
        snapshot = Snapshot.of(movies, self.clock(), f"direct-{self.clock()}")
        with self._local_lock:
            self._local = snapshot
        return snapshot
