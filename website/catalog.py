"""The list of public movies, cached in Redis and refreshed without making anyone wait.

Redis holds the index (as the store has it, public records only) with a version
and the time it was fetched. Each worker keeps the parsed copy of the version it
last saw, so a request costs one small Redis read. When the copy is older than
`max_age`, the first request to notice takes a Redis lock (redis-py's `Lock`, shared
by every worker of every dyno) and refreshes in a background thread; it and every
other request are served the stale copy at once. Only a cold cache (nothing in
Redis yet) makes a request wait, at most `cold_wait` seconds, for the one worker
that fetches.

Anything in Redis this worker cannot read (not JSON, missing fields, another
format, data that does not match its version, a key of the wrong type) is a cache
miss: logged once, and overwritten by the refresh the miss starts.

When Redis fails, it is skipped for a few seconds (a per-process Breaker) and
workers read the store themselves (at most once per max_age); when the store is
down, the last copy is served.

The movies are shown as their families left them (owner objects, moviepkg.owner). A
change made on this worker shows at once here (an overlay kept for the longest a
cached copy without it can live), and refreshes the cache for every other worker.
A cached copy is as old as the moment its store read began.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import redis
from redis.exceptions import LockError
from redis.lock import Lock

from moviepkg.owner import OwnerChange, OwnerObjects, apply_owner_changes
from moviepkg.record import MovieIndex

from .breaker import Breaker
from .index import (
    EMPTY,
    Meta,
    Snapshot,
    Unreadable,
    parse_meta,
    parse_movies,
    read_store,
    version_of,
)
from .storage import Storage, StorageDown

log = logging.getLogger("stopmo.website.catalog")
PREFIX = "stopmo:index:"
META, DATA, LOCK, FAILED = (PREFIX + name for name in ("meta", "data", "lock", "failed"))
LOCK_SECONDS = 30
FAILED_SECONDS = 10


class Catalog:
    """The movies a visitor may see, from Redis when it can, from the store when not."""

    def __init__(self, storage: Storage, cache: redis.Redis | None, max_age: float = 60.0,
                 cold_wait: float = 2.0, clock: Callable[[], float] = time.time,
                 breaker: Breaker | None = None, recheck: float = 0.25) -> None:
        self.storage = storage
        self.cache = cache
        self.max_age = max_age
        self.cold_wait = cold_wait
        self.clock = clock
        self.breaker = breaker or Breaker("redis")
        # A worker asks Redis for the version at most this often; in between, its copy
        # serves (a busy worker's requests then cost no round trip at all).
        self.recheck = recheck
        self._read_at = -recheck  # time.monotonic() of the last read of Redis
        self._local = EMPTY
        self._local_lock = threading.Lock()
        self._bad_meta: bytes | None = None  # the unreadable meta already looked at
        self._logged = ""  # the last unreadable value logged, so each is logged once
        self.last_error = ""
        self.owners = OwnerObjects()  # the owner objects read so far (read again if changed)
        self._overlay: dict[str, tuple[float, OwnerChange]] = {}  # id -> (until, change)
        self._overlaid: tuple[tuple[str, int], Snapshot] | None = None

    def snapshot(self) -> Snapshot:
        """The movies to show now; never raises, never waits long."""
        return self._with_overlay(self._snapshot())

    def _snapshot(self) -> Snapshot:
        if self.cache is None or not self.breaker.allow():
            return self._direct()
        try:
            snapshot = self._cached()
        except redis.RedisError as exc:
            self.last_error = f"redis: {exc}"
            self.breaker.failed(exc)
            return self._direct()
        except Exception as exc:  # a failsafe: a page without the cache, not a 500
            log.exception("reading the cache failed, reading the store directly")
            self.breaker.failed(exc)
            return self._direct()
        self.breaker.succeeded()
        return snapshot

    def owner_changed(self, change: OwnerChange) -> None:
        """A family changed their movie here: show it at once on this worker, and refresh
        the cache now for every other worker, unless another refresh is under way (it
        may have read the store before the change: then they follow within max_age)."""
        until = self.clock() + self.max_age + LOCK_SECONDS
        with self._local_lock:
            self._overlay[change.id] = (until, change)
        if self.cache is None or not self.breaker.allow():
            return
        try:
            token = self._try_lock()
            if token is not None:
                self._refresh(token)
        except redis.RedisError as exc:
            self.breaker.failed(exc)
        self._read_at = -self.recheck  # this worker looks again at its next request

    def _with_overlay(self, snapshot: Snapshot) -> Snapshot:
        """snapshot with this worker's recent owner changes applied."""
        if not self._overlay:
            return snapshot
        now = self.clock()
        with self._local_lock:
            for movie_id in [k for k, (until, _) in self._overlay.items() if until < now]:
                del self._overlay[movie_id]
            changes = {movie_id: change for movie_id, (_, change) in self._overlay.items()}
            made = self._overlaid
        if not changes:
            return snapshot
        mark = (snapshot.version, hash(tuple(sorted(changes.items(), key=lambda i: i[0]))))
        if made is not None and made[0] == mark:
            return made[1]
        overlaid = Snapshot.of(apply_owner_changes(snapshot.movies, changes),
                               snapshot.fetched_at, f"{snapshot.version}+{mark[1]:x}")
        with self._local_lock:
            self._overlaid = (mark, overlaid)
        return overlaid

    def redis_status(self) -> str:
        """'off', 'ok' or 'down: <why>'; PING Redis unless the breaker skips it."""
        if self.cache is None:
            return "off"
        if not self.breaker.allow():
            return f"down: {self.breaker.last_error} (skipped for now)"
        try:
            self.cache.ping()
        except redis.RedisError as exc:
            self.breaker.failed(exc)
            return f"down: {exc}"
        self.breaker.succeeded()
        return "ok"

    # --- Redis path ---------------------------------------------------------------------

    def _cached(self) -> Snapshot:
        local = self._local
        if local.version and time.monotonic() - self._read_at < self.recheck:
            return local
        snapshot = self._read()
        if snapshot is not None:
            self._read_at = time.monotonic()
        if snapshot is None:  # cold or unreadable: one worker fetches, the others wait a little
            if self._failed_recently():
                return self._direct()
            token = self._try_lock()
            if token is not None:
                return self._refresh(token)
            deadline = time.monotonic() + self.cold_wait
            while snapshot is None and time.monotonic() < deadline:
                time.sleep(0.05)
                snapshot = self._read()
            if snapshot is None:
                return self._direct()
        if self.clock() - snapshot.fetched_at > self.max_age and not self._failed_recently():
            token = self._try_lock()
            if token is not None:
                # Another worker may have refreshed between our read and our lock: look again.
                again = self._read()
                if again is not None and self.clock() - again.fetched_at <= self.max_age:
                    self._release(token)
                    return again
                threading.Thread(target=self._refresh_quietly, args=(token,),
                                 name="index-refresh", daemon=True).start()
        return snapshot

    def _read(self) -> Snapshot | None:
        """What Redis holds; None when it holds nothing this worker can read (a miss)."""
        raw: bytes | None = None
        try:
            raw = self._get(META)
            if raw is None or raw == self._bad_meta:
                return None
            return self._load(parse_meta(raw))
        except Unreadable as exc:
            self._bad_meta = raw
            if str(exc) != self._logged:
                self._logged = str(exc)
                log.warning("unreadable value in Redis (%s*), a cache miss until it is "
                            "rewritten: %s", PREFIX, exc)
            return None

    def _get(self, key: str) -> bytes | None:
        assert self.cache is not None
        try:
            value: bytes | str | None = self.cache.get(key)
        except redis.ResponseError as exc:  # e.g. WRONGTYPE: not a string
            raise Unreadable(f"{key}: {exc}") from None
        return value.encode() if isinstance(value, str) else value

    def _load(self, meta: Meta) -> Snapshot:
        local = self._local
        if local.version == meta.version:
            if local.fetched_at != meta.fetched_at:  # refreshed elsewhere, same movies
                local = replace(local, fetched_at=meta.fetched_at)
                with self._local_lock:
                    self._local = local
            return local
        data = self._get(DATA)
        if data is None:
            raise Unreadable(f"{DATA} is missing")
        if version_of(data) != meta.version:
            raise Unreadable(f"{DATA} does not match the version in {META}")
        try:
            movies = parse_movies(data, strict=True)
        except (ValueError, RecursionError) as exc:
            raise Unreadable(f"{DATA} is not an index this version reads ({exc})") from None
        snapshot = Snapshot.of(movies, meta.fetched_at, meta.version)
        with self._local_lock:
            self._local = snapshot
        return snapshot

    def _failed_recently(self) -> bool:
        """Whether a refresh failed in the last seconds (a key without expiry does not count)."""
        assert self.cache is not None
        return int(self.cache.ttl(FAILED)) >= 0

    def _try_lock(self) -> Lock | None:
        """The refresh lock if it is free; None when another worker (or dyno) refreshes."""
        assert self.cache is not None
        if self.cache.ttl(LOCK) == -1:  # ours always expire: a key without one is garbage
            self.cache.delete(LOCK)
        # Not thread-local: taken by a request's thread, released by the refresh thread.
        lock = self.cache.lock(LOCK, timeout=LOCK_SECONDS, blocking=False, thread_local=False)
        return lock if lock.acquire() else None

    @staticmethod
    def _release(lock: Lock) -> None:
        # Only if it is still ours: it may have expired and been taken by another refresher.
        with contextlib.suppress(LockError):
            lock.release()

    def _refresh(self, token: Lock | None = None) -> Snapshot:
        """Fetch from the store, publish to Redis (over whatever was there) and to this worker."""
        assert self.cache is not None
        fetched_at = self.clock()  # what is read is as old as the start of the read
        try:
            movies = read_store(self.storage, self.owners)
        except StorageDown as exc:
            self.last_error = f"storage: {exc}"
            log.warning("storage unavailable, serving the last copy: %s", exc)
            self.cache.set(FAILED, "1", ex=FAILED_SECONDS)  # do not hammer a store that is down
            if token is not None:
                self._release(token)
            return self._local
        index = MovieIndex.build(movies, datetime.now(UTC))
        data = index.to_json()
        version = version_of(data)
        pipe = self.cache.pipeline()
        pipe.set(DATA, data)
        pipe.set(META, json.dumps({"version": version, "fetched_at": fetched_at}))
        pipe.delete(FAILED)
        pipe.execute()
        if token is not None:
            self._release(token)
        snapshot = Snapshot.of(list(index.movies), fetched_at, version)
        with self._local_lock:
            self._local = snapshot
        self._bad_meta = None
        self.last_error = ""
        log.info("index refreshed: %d public movies", len(snapshot.movies))
        return snapshot

    def _refresh_quietly(self, token: Lock) -> None:
        try:
            self._refresh(token)
        except Exception as exc:  # a background refresh must never take a worker down
            log.exception("index refresh failed")
            if isinstance(exc, redis.RedisError):
                self.breaker.failed(exc)
            with contextlib.suppress(redis.RedisError):
                self._release(token)

    # --- without Redis -----------------------------------------------------------------------

    def _direct(self) -> Snapshot:
        """Read the store directly, at most once per max_age per worker; last copy if down."""
        local = self._local
        if local.version and self.clock() - local.fetched_at < self.max_age:
            return local
        started = self.clock()
        try:
            movies = read_store(self.storage, self.owners)
        except StorageDown as exc:
            self.last_error = f"storage: {exc}"
            log.warning("storage unavailable, serving the last copy: %s", exc)
            return local
        snapshot = Snapshot.of(movies, started, f"direct-{started}")
        with self._local_lock:
            self._local = snapshot
        return snapshot
