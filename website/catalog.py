"""The public movies, kept in Redis and refreshed without making anyone wait.

Redis holds the movies in per-record hashes and sorted sets (website.redisindex), with
a version and the time the store read behind it began. A request costs at most one
small Redis read (the version, checked every `recheck` seconds per worker) plus the
reads of its own page; no worker holds the archive. When the version is older than
`max_age`, the first request to notice takes a Redis lock (redis-py's `Lock`, shared
by every worker of every dyno) and refreshes in a background thread, reading only the
indexes and owner objects whose stamp changed; it and every other request are served
the current version at once. Only a cold cache (no version in Redis) makes a request
wait, at most `cold_wait` seconds, for the one worker that fills it.

Anything in Redis this worker cannot read (not JSON, missing fields, another format,
a key of the wrong type, an id without its record) is a miss: logged once, the request
is answered from the store, and a refresh fills a new generation of keys (the old one goes
a little later, once no reader can be in it).

When Redis fails, it is skipped for a few seconds (a per-process Breaker) and
workers read the store themselves (at most once per max_age); when the store is
down, the last copy is served.

The movies are shown as their families left them (owner objects, moviepkg.owner). A
change made on this worker shows at once here (an overlay kept for the longest a
cached copy without it can live), and refreshes the cache for every other worker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable

import redis
from redis.exceptions import LockError
from redis.lock import Lock

from moviepkg.owner import OwnerChange, OwnerObjects

from .breaker import Breaker
from .guarded import Guarded
from .index import (
    EMPTY,
    Meta,
    Snapshot,
    Unreadable,
    parse_meta,
    read_store,
)
from .listing import Listing, Overlaid
from .redisindex import (
    GENERATIONS,
    META,
    PREFIX,
    Keys,
    RedisListing,
    generations,
    retire,
)
from .redisrefresh import Refresh
from .storage import Storage, StorageDown

log = logging.getLogger("stopmo.website.catalog")
OLD = "stopmo:index:"  # the lock and the failed flag; the one-document cache of old
LOCK, FAILED = OLD + "lock", OLD + "failed"
DIRTY = PREFIX + "dirty"
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
        # A worker asks Redis for the version at most this often; in between, the version
        # it knows serves (a busy worker's cached pages then cost no round trip at all).
        self.recheck = recheck
        self._read_at = -recheck  # time.monotonic() of the last read of Redis
        self._listing: Listing = EMPTY  # the version this worker knows
        self._local = EMPTY  # this worker's own copy, when it reads the store itself
        self._local_lock = threading.Lock()
        self._bad_meta: bytes | None = None  # the unreadable meta already looked at
        self._logged = ""  # the last unreadable value logged, so each is logged once
        self._spoiled = False  # Redis held garbage: rebuild it at the next refresh
        self.last_error = ""
        self.owners = OwnerObjects()  # the owner objects read so far (read again if changed)
        self._overlay: dict[str, tuple[float, OwnerChange]] = {}  # id -> (until, change)

    def snapshot(self) -> Listing:
        """The movies to show now; never raises, never waits long."""
        return self._with_overlay(self._snapshot())

    def _snapshot(self) -> Listing:
        if self.cache is None or not self.breaker.allow():
            return self._without_redis()
        try:
            listing = self._cached()
        except redis.RedisError as exc:
            self.redis_failed(exc)
            return self._without_redis()
        except Exception as exc:  # a failsafe: a page without the cache, not a 500
            log.exception("reading the cache failed, reading the store directly")
            self.breaker.failed(exc)
            return self._without_redis()
        self.breaker.succeeded()
        return listing

    def _without_redis(self) -> Listing:
        """The store read directly; when that fails too, the last version this worker
        knew, so the pages it rendered of it are still served (website.pagecache)."""
        direct = self.direct()
        if direct.version or self.cache is None or not self._listing.version:
            return direct
        return self._listing

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
        except redis.RedisError as exc:
            self.breaker.failed(exc)
            return
        if token is not None:  # in the background: the family's answer does not wait on it
            threading.Thread(target=self._refresh_quietly, args=(token,),
                             name="index-refresh", daemon=True).start()
        self._read_at = -self.recheck  # this worker looks again at its next request

    def _with_overlay(self, listing: Listing) -> Listing:
        """listing with this worker's recent owner changes applied."""
        if not self._overlay:
            return listing
        now = self.clock()
        with self._local_lock:
            for movie_id in [k for k, (until, _) in self._overlay.items() if until < now]:
                del self._overlay[movie_id]
            changes = {movie_id: change for movie_id, (_, change) in self._overlay.items()}
        if not changes:
            return listing
        mark = f"{hash(tuple(sorted(changes.items(), key=lambda i: i[0]))) & 0xffffffff:x}"
        return Overlaid(listing, changes, mark)

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

    def _cached(self) -> Listing:
        known = self._listing
        if known.version and time.monotonic() - self._read_at < self.recheck:
            return known
        listing = self._read()
        if listing is not None:
            self._read_at = time.monotonic()
        if listing is None:  # cold or unreadable: one worker fills it, the others wait a little
            if self._failed_recently():
                return self.direct()
            token = self._try_lock()
            if token is not None:
                return self._refresh(token)
            deadline = time.monotonic() + self.cold_wait
            while listing is None and time.monotonic() < deadline:
                time.sleep(0.05)
                listing = self._read()
            if listing is None:
                # Still being filled by another worker: never a second read of everything.
                if self.cache is not None and self.cache.exists(LOCK):
                    self.last_error = "cache: being filled"
                    return self._local
                return self.direct()
        if (self._spoiled or self.clock() - listing.fetched_at > self.max_age) \
                and not self._failed_recently():
            token = self._try_lock()
            if token is not None:
                # Another worker may have refreshed between our read and our lock: look again.
                again = self._read()
                if again is not None and self.clock() - again.fetched_at <= self.max_age \
                        and not self._spoiled:
                    self._release(token)
                    return again
                threading.Thread(target=self._refresh_quietly, args=(token,),
                                 name="index-refresh", daemon=True).start()
        return listing

    def _read(self) -> Listing | None:
        """The version Redis holds; None when it holds nothing this worker can read."""
        assert self.cache is not None
        raw: bytes | None = None
        try:
            raw = self._meta_bytes()
            if raw is None or raw == self._bad_meta:
                return None
            meta = parse_meta(raw)
        except Unreadable as exc:
            self._bad_meta = raw
            self.unreadable(exc)
            return None
        known = self._listing
        if isinstance(known, Guarded) and (known.version, known.fetched_at) == (
                meta.version, meta.fetched_at):
            return known
        listing = Guarded(RedisListing(self.cache, meta.version, meta.fetched_at,
                                       Keys(meta.generation)), self)
        self._listing = listing
        return listing

    def redis_failed(self, exc: Exception) -> None:
        """Redis failed a question: say so, and skip it for a while."""
        self.last_error = f"redis: {exc}"
        self.breaker.failed(exc)

    def unreadable(self, exc: Exception, generation: int | None = None) -> None:
        """Redis held something this worker cannot read: log it once, and rebuild it now
        in the background unless another worker is refreshing (or already rebuilt the
        generation it was read in)."""
        if generation is not None and generation != self._generation_now():
            return  # read in a generation already replaced: the new one is fine
        self._spoiled = True
        if str(exc) != self._logged:
            self._logged = str(exc)
            log.warning("unreadable value in Redis (%s*), a cache miss until it is "
                        "rewritten: %s", PREFIX, exc)
        with contextlib.suppress(redis.RedisError):
            if not self._failed_recently():
                token = self._try_lock()
                if token is not None:
                    threading.Thread(target=self._refresh_quietly, args=(token,),
                                     name="index-rebuild", daemon=True).start()

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

    def _refresh(self, token: Lock | None = None) -> Listing:
        """Bring Redis up to date with the store (only what changed); a new version when
        anything did, or when a refresh before stopped midway (it may have written some).
        Garbage in Redis: fill a new generation from the store. Whatever happens, the
        lock is released and a failure holds the others back for a few seconds."""
        assert self.cache is not None
        fetched_at = self.clock()  # what is read is as old as the start of the read
        log.info("index refresh started", extra={"refresh": "started", "pid": os.getpid()})
        try:
            return self._refresh_now(fetched_at)
        except StorageDown as exc:
            self.last_error = f"storage: {exc}"
            log.warning("storage unavailable, serving the last copy: %s", exc,
                        extra={"refresh": "failed", "pid": os.getpid()})
            self.cache.set(FAILED, "1", ex=FAILED_SECONDS)  # do not hammer a store that is down
            return self._listing if self._listing.version else self._local
        except Exception:
            log.warning("index refresh failed", exc_info=True,
                        extra={"refresh": "failed", "pid": os.getpid()})
            with contextlib.suppress(redis.RedisError):
                self.cache.set(FAILED, "1", ex=FAILED_SECONDS)
            raise
        finally:
            if token is not None:  # after the lines above: refreshes never overlap in the logs
                self._release(token)

    def _refresh_now(self, fetched_at: float) -> Listing:
        assert self.cache is not None
        # Set while a refresh writes: one that stops midway leaves it, and the next one
        # then makes a new version (pages cached of a half-written state go).
        was_dirty = self.cache.getset(DIRTY, "1") is not None
        meta: Meta | None = None
        try:
            try:
                meta = self._meta_now()
            except Unreadable:  # already logged by whoever read it first
                raise Unreadable("rebuilding") from None
            if self._spoiled:
                raise Unreadable("rebuilding")
            generation = meta.generation if meta is not None else 0
            changed = Refresh(self.cache, self.storage, Keys(generation)).run()
        except Unreadable as exc:
            if str(exc) != "rebuilding":
                log.warning("unreadable value in Redis (%s*): rebuilding it: %s", PREFIX, exc)
            self.storage.check()  # StorageDown: keep what there is until the store answers
            generation = int(self.cache.incr(GENERATIONS))
            try:
                changed = Refresh(self.cache, self.storage, Keys(generation)).run() or 1
            except Exception:
                retire(self.cache, generation, after=0, now=time.time())  # half-filled
                raise
            # Workers that read an old generation a moment ago may still ask it.
            for old in generations(self.cache) - {generation}:
                retire(self.cache, old, after=self.recheck * 4 + 10, now=time.time())
        # Kept when nothing changed (the pages stay cached); else random: a Redis restarted
        # empty never repeats a version whose pages workers still hold.
        version = meta.version if meta is not None and not changed and not was_dirty \
            else secrets.token_hex(8)

        pipe = self.cache.pipeline()
        pipe.set(META, json.dumps({"version": version, "fetched_at": fetched_at,
                                   "generation": generation}))
        pipe.delete(FAILED, DIRTY, OLD + "meta", OLD + "data")  # and the cache of before halls
        pipe.execute()
        retire(self.cache, None, after=0, now=time.time())  # the generations whose time came
        self._spoiled, self._bad_meta, self.last_error = False, None, ""
        listing = Guarded(RedisListing(self.cache, version, fetched_at, Keys(generation)), self)
        self._listing = listing
        self._read_at = time.monotonic()
        log.info("index refreshed: %d movies changed, %d public movies", changed,
                 listing.total(), extra={"refresh": "done", "pid": os.getpid()})
        return listing

    def _meta_bytes(self) -> bytes | None:
        """The meta's bytes in Redis (None: there is none); Unreadable if not a string."""
        assert self.cache is not None
        try:
            value: bytes | str | None = self.cache.get(META)
        except redis.ResponseError as exc:  # e.g. WRONGTYPE: not a string
            raise Unreadable(f"{META}: {exc}") from None
        return value.encode() if isinstance(value, str) else value

    def _meta_now(self) -> Meta | None:
        """The meta in Redis (None: there is none); Unreadable if this version cannot read it."""
        raw = self._meta_bytes()
        return parse_meta(raw) if raw is not None else None

    def _generation_now(self) -> int | None:
        """The generation the meta in Redis points at, if readable."""
        with contextlib.suppress(Unreadable):
            meta = self._meta_now()
            return meta.generation if meta is not None else None
        return None

    def _refresh_quietly(self, token: Lock) -> None:
        try:
            self._refresh(token)
        except Exception as exc:  # a background refresh must never take a worker down
            if isinstance(exc, redis.RedisError):
                self.breaker.failed(exc)

    # --- without Redis -----------------------------------------------------------------------

    def direct(self) -> Snapshot:
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
