"""The public movies as Redis holds them: per-record hashes and sorted sets, kept up to date
incrementally from the store's indexes, so no worker ever holds the whole archive.

Keys (all under `stopmo:v2:`):

| key | type | what |
|---|---|---|
| `meta` | string | `{"version": N, "fetched_at": t}`: N grows with every change |
| `rec` | hash | movie id -> its record (JSON, as the families left it) |
| `z:all`, `z:f:<f>`, `z:h:<h>`, `z:fh:<f>:<h>` | sorted set | ids by time: a page in one read |
| `code` | hash | code -> the ids with it (space-separated): a lookup in O(1) |
| `festivals`, `halls` | set | the gallery's filters |
| `idx` | hash | index key -> the stamp (ETag and time) it had when read |
| `idx:<key>` | set | the ids that index listed |
| `where` | hash | id -> the index that last listed it (a v1 index and a hall's may both) |
| `own` | hash | owner object key -> its stamp |
| `ownch` | hash | id -> the owner change (JSON) |

A refresh lists the indexes and the owner objects with their stamps and reads only
those whose stamp changed: a new movie costs a LIST, a GET of one small day index and a
few writes, however large the archive. A page costs a `ZREVRANGE` and an `HMGET` of its
24 records. Anything unreadable raises Unreadable; the catalog then wipes these keys and
rebuilds them from the store.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis

from moviepkg.errors import RecordError
from moviepkg.ids import normalize_code
from moviepkg.owner import OWNER_PREFIX, OwnerChange, parse_owner_change
from moviepkg.record import INDEX_KEY, INDEX_PREFIX, MovieRecord, is_index_key, record_from_dict

from .index import EVERYTHING, Scope, Unreadable, parse_movies
from .storage import Storage

log = logging.getLogger("stopmo.website.redisindex")
PREFIX = "stopmo:v2:"
META = PREFIX + "meta"  # {"version", "fetched_at", "generation"}
GENERATIONS = PREFIX + "generations"  # a counter: a rebuild fills a new generation
RETIRED = PREFIX + "retired"  # generation -> when its keys may go (readers moved on)
BATCH = 2000  # commands per pipeline round trip when loading many


class Keys:
    """The key names of one generation. A rebuild (after garbage) fills a new generation
    and then points the meta at it, so readers never see a half-filled one."""

    __slots__ = ("base", "code", "festivals", "generation", "halls", "idx", "own", "ownch",
                 "rec", "where")

    def __init__(self, generation: int = 0) -> None:
        self.generation = generation
        self.base = f"{PREFIX}g{generation}:"
        # id -> record; code -> ids; the filters; index key -> stamp (idx:<key>: its ids);
        # id -> the index that last listed it; owner object key -> stamp; id -> change.
        (self.rec, self.code, self.festivals, self.halls, self.idx, self.where, self.own,
         self.ownch) = (self.base + name for name in ("rec", "code", "festivals", "halls",
                                                        "idx", "where", "own", "ownch"))

    def name(self, name: str) -> str:
        """The full name of a key of this generation."""
        return self.base + name

    def zset(self, scope: Scope) -> str:
        """The sorted set of a gallery's scope."""
        if scope.festival and scope.hall:
            return self.name(f"z:fh:{scope.festival}:{scope.hall}")
        if scope.festival:
            return self.name(f"z:f:{scope.festival}")
        if scope.hall:
            return self.name(f"z:h:{scope.hall}")
        return self.name("z:all")

    def scopes(self, record: MovieRecord) -> list[str]:
        """Every sorted set record belongs to."""
        festival, hall = record.festival, record.hall
        return [self.zset(EVERYTHING), self.zset(Scope(festival=festival)),
                self.zset(Scope(hall=hall)), self.zset(Scope(festival, hall))]


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _record(raw: bytes | str | None, where: str) -> MovieRecord | None:
    if raw is None:
        return None
    try:
        return record_from_dict(json.loads(raw), where)
    except (ValueError, RecordError, RecursionError) as exc:  # UnicodeDecodeError too
        raise Unreadable(f"{where}: {exc}") from None


def _call(do: Callable[[], Any]) -> Any:
    """Run a Redis command; a value of the wrong type is Unreadable, not an outage."""
    try:
        return do()
    except redis.ResponseError as exc:
        raise Unreadable(str(exc)) from None


FIRST = Keys(0)


@dataclass(frozen=True, slots=True)
class RedisListing:
    """One version of the public movies, read from Redis on demand (nothing kept)."""

    cache: redis.Redis
    version: str
    fetched_at: float
    keys: Keys = FIRST

    def total(self, scope: Scope = EVERYTHING) -> int:
        """How many movies the scope has."""
        return int(_call(lambda: self.cache.zcard(self.keys.zset(scope))))

    def page(self, scope: Scope, offset: int, count: int) -> list[MovieRecord]:
        """count movies of the scope from offset, newest first."""
        name = self.keys.zset(scope)
        ids = _call(lambda: self.cache.zrevrange(name, offset, offset + count - 1))
        return self._records(ids)

    def get(self, movie_id: str) -> MovieRecord | None:
        """The public movie with this id, or None."""
        found = _record(_call(lambda: self.cache.hget(self.keys.rec, movie_id)),
                        f"{self.keys.rec} {movie_id}")
        everything = self.keys.zset(EVERYTHING)
        if found is None and _call(lambda: self.cache.zscore(everything, movie_id)):
            raise Unreadable(f"{movie_id} is listed without its record")
        return found

    def find_code(self, typed: str) -> list[MovieRecord]:
        """The movies whose code is what a person typed (usually one)."""
        code = normalize_code(typed)
        if code is None:
            return []
        ids = (_text(_call(lambda: self.cache.hget(self.keys.code, code))) or "").split()
        return sorted(self._records(ids), key=lambda m: (m.created_at, m.id), reverse=True)

    def festivals(self) -> list[str]:
        """The festivals with public movies, newest name first."""
        return sorted(self._members(self.keys.festivals), reverse=True)

    def halls(self) -> list[str]:
        """The halls with public movies."""
        return sorted(self._members(self.keys.halls))

    def _members(self, name: str) -> list[str]:
        return [_text(m) or "" for m in _call(lambda: self.cache.smembers(name))]

    @property
    def movies(self) -> tuple[MovieRecord, ...]:
        """Every movie, newest first (for tools and tests: a page reads only its own)."""
        return tuple(self.page(Scope(), 0, max(1, self.total())))

    def _records(self, ids: Sequence[bytes | str]) -> list[MovieRecord]:
        if not ids:
            return []
        raws = _call(lambda: self.cache.hmget(self.keys.rec, ids))
        found = []
        for movie_id, raw in zip(ids, raws, strict=True):
            record = _record(raw, f"{self.keys.rec} {_text(movie_id)}")
            if record is None:
                raise Unreadable(f"{_text(movie_id)} is listed without its record")
            found.append(record)
        return found


class Refresh:
    """Bring the Redis keys up to date with the store; run by one worker at a time."""

    def __init__(self, cache: redis.Redis, storage: Storage, keys: Keys) -> None:
        self.cache = cache
        self.storage = storage
        self.keys = keys
        self.changed = 0  # ids written or forgotten

    def run(self) -> int:
        """Read what changed in the store, write it to Redis; return how many movies
        changed. Raises StorageDown, redis errors, or Unreadable (wipe and run again)."""
        owners = self._owner_changes()
        stamped = {key: stamp for key, stamp in
                   self.storage.list_stamped(INDEX_PREFIX.rstrip("/")).items()
                   if is_index_key(key)}
        known = {_text(k) or "": _text(v) or "" for k, v in
                 _call(lambda: self.cache.hgetall(self.keys.idx)).items()}
        for key in sorted(stamped, key=lambda k: (k != INDEX_KEY, k)):  # the v1 index first
            if known.get(key) != stamped[key]:
                self._index(key, stamped[key], owners)
        for key in sorted(set(known) - set(stamped)):
            self._forget_index(key)
        return self.changed

    # --- indexes --------------------------------------------------------------------------

    def _index(self, key: str, stamp: str, owners: dict[str, OwnerChange]) -> None:
        data = self.storage.get_bytes(key)
        try:
            listed = parse_movies(data) if data is not None else []
        except (ValueError, RecursionError) as exc:  # its unit rewrites it: keep what was
            log.warning("%s is not a readable index, kept as it was: %s", key, exc)
            self.cache.hset(self.keys.idx, key, stamp)  # read again once it changes
            return
        records = {}
        for record in listed:
            change = owners.get(record.id)
            if change is not None and change.removed:
                continue
            records[record.id] = replace(record, title=change.title) \
                if change is not None else record
        before = self._ids_of(key)
        gone = before - set(records)
        self._forget(gone, only_from=key)
        self._put(records.values(), key)
        pipe = self.cache.pipeline(transaction=False)
        pipe.delete(f"{self.keys.idx}:{key}")
        if records:
            pipe.sadd(f"{self.keys.idx}:{key}", *records)
        pipe.hset(self.keys.idx, key, stamp)
        pipe.execute()

    def _ids_of(self, key: str) -> set[str]:
        name = f"{self.keys.idx}:{key}"
        return {_text(i) or "" for i in _call(lambda: self.cache.smembers(name))}

    def _forget_index(self, key: str) -> None:
        ids = self._ids_of(key)
        self._forget(ids, only_from=key)
        pipe = self.cache.pipeline(transaction=False)
        pipe.delete(f"{self.keys.idx}:{key}")
        pipe.hdel(self.keys.idx, key)
        pipe.execute()

    # --- records --------------------------------------------------------------------------

    def _put(self, records: Iterable[MovieRecord], key: str) -> None:
        """Write records (listed by the index key) and their places in every set: a few
        commands per chunk of movies (one mapping per key). A movie that moved (another
        hall or festival) leaves the sets it was in."""
        batch = list(records)
        for chunk in _chunks(batch, BATCH):
            self._put_chunk(chunk, key)
        self.changed += len(batch)

    def _put_chunk(self, batch: list[MovieRecord], key: str) -> None:
        raws = _call(lambda: self.cache.hmget(self.keys.rec, [r.id for r in batch]))
        codes = self._codes(batch)
        zsets: dict[str, dict[str, float]] = {}
        pipe = self.cache.pipeline(transaction=False)
        for record, raw in zip(batch, raws, strict=True):
            score = record.created_at.timestamp()
            scopes = self.keys.scopes(record)
            for name in scopes:
                zsets.setdefault(name, {})[record.id] = score
            before = _record(raw, self.keys.rec) if raw is not None else None
            for name in self.keys.scopes(before) if before is not None else []:
                if name not in scopes:
                    pipe.zrem(name, record.id)
        pipe.hset(self.keys.rec, mapping={
            record.id: json.dumps(record.to_dict(), ensure_ascii=False) for record in batch})
        for name, members in zsets.items():
            pipe.zadd(name, members)
        pipe.sadd(self.keys.festivals, *{record.festival for record in batch})
        pipe.sadd(self.keys.halls, *{record.hall for record in batch})
        pipe.hset(self.keys.where, mapping={record.id: key for record in batch})
        pipe.hset(self.keys.code, mapping={code: " ".join(sorted(ids))
                                           for code, ids in codes.items()})
        pipe.execute()

    def _codes(self, records: list[MovieRecord]) -> dict[str, set[str]]:
        wanted = sorted({record.code for record in records})
        if not wanted:
            return {}
        now = _call(lambda: self.cache.hmget(self.keys.code, wanted))
        codes = {code: set((_text(ids) or "").split()) for code, ids in zip(wanted, now,
                                                                              strict=True)}
        for record in records:
            codes[record.code].add(record.id)
        return codes

    def _forget(self, ids: Iterable[str], only_from: str | None = None) -> None:
        """Take ids out of every key; only_from: only those that index last listed."""
        ids = sorted(ids)
        if not ids:
            return
        if only_from is not None:
            where = _call(lambda: self.cache.hmget(self.keys.where, ids))
            ids = [i for i, w in zip(ids, where, strict=True) if _text(w) in (None, only_from)]
        for chunk in _chunks(ids, BATCH // 8):
            raws = _call(lambda chunk=chunk: self.cache.hmget(self.keys.rec, chunk))  # type: ignore[misc]
            records = [r for r in (_record(raw, self.keys.rec) for raw in raws) if r is not None]
            codes: dict[str, set[str]] = {}
            wanted = sorted({r.code for r in records})
            if wanted:
                now = _call(lambda wanted=wanted: self.cache.hmget(self.keys.code, wanted))  # type: ignore[misc]
                codes = {c: set((_text(v) or "").split()) for c, v in zip(wanted, now,
                                                                            strict=True)}
            pipe = self.cache.pipeline(transaction=False)
            for record in records:
                for name in self.keys.scopes(record):
                    pipe.zrem(name, record.id)
                codes[record.code].discard(record.id)
            for code, left in codes.items():
                if left:
                    pipe.hset(self.keys.code, code, " ".join(sorted(left)))
                else:
                    pipe.hdel(self.keys.code, code)
            pipe.hdel(self.keys.rec, *chunk)
            pipe.hdel(self.keys.where, *chunk)
            pipe.execute()
            self.changed += len(records)

    def _hget(self, name: str, key: str) -> bytes | str | None:
        value: bytes | str | None = _call(lambda: self.cache.hget(name, key))
        return value

    # --- owner objects ------------------------------------------------------------------

    def _owner_changes(self) -> dict[str, OwnerChange]:
        """Every owner change (read again only where its stamp changed), applied to the
        records in Redis. A removal is final: a later object saying otherwise is ignored.
        The stamps are written last, so a refresh that fails midway reads them again."""
        stamped = {k: v for k, v in self.storage.list_stamped(OWNER_PREFIX).items()
                   if k.endswith(".json")}
        known = {_text(k) or "": _text(v) or "" for k, v in
                 _call(lambda: self.cache.hgetall(self.keys.own)).items()}
        changes = {}
        everything: dict[Any, Any] = _call(lambda: self.cache.hgetall(self.keys.ownch))
        for movie_id, raw in everything.items():
            try:
                change = parse_owner_change(raw if isinstance(raw, bytes) else raw.encode())
            except RecordError as exc:
                raise Unreadable(f"{self.keys.ownch} {_text(movie_id)}: {exc}") from None
            changes[change.id] = change
        fresh: dict[str, OwnerChange] = {}
        stamps: dict[str, str] = {}
        for key in sorted(stamped):
            if known.get(key) == stamped[key]:
                continue
            data = self.storage.get_bytes(key)
            stamps[key] = stamped[key]
            if data is None:
                continue
            try:
                change = parse_owner_change(data, key)
            except RecordError as exc:
                log.warning("skipping the unreadable owner object %s: %s", key, exc)
                continue
            before = changes.get(change.id)
            if before is not None and before.removed:
                continue  # final
            fresh[change.id] = changes[change.id] = change
        # Every removal, each run: cheap, and a refresh that failed midway loses none.
        removed = [movie_id for movie_id, change in changes.items() if change.removed]
        if removed:
            present = _call(lambda: self.cache.hmget(self.keys.rec, removed))
            self._forget([m for m, raw in zip(removed, present, strict=True) if raw is not None])
        for movie_id, change in fresh.items():
            if change.removed:
                continue
            record = _record(self._hget(self.keys.rec, movie_id), self.keys.rec)
            if record is not None:
                self.cache.hset(self.keys.rec, movie_id, json.dumps(
                    replace(record, title=change.title).to_dict(), ensure_ascii=False))
                self.changed += 1
        pipe = self.cache.pipeline(transaction=False)
        for change in fresh.values():
            pipe.hset(self.keys.ownch, change.id, change.to_json())
        for key, stamp in stamps.items():
            pipe.hset(self.keys.own, key, stamp)
        pipe.execute()
        return changes


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]


def generations(cache: redis.Redis) -> set[int]:
    """Every generation that has keys in Redis."""
    found = set()
    for key in cache.scan_iter(match=f"{PREFIX}g*:*", count=1000):
        name = _text(key) or ""
        number = name.removeprefix(PREFIX + "g").split(":", 1)[0]
        if number.isdigit():
            found.add(int(number))
    return found


def retire(cache: redis.Redis, generation: int | None, after: float, now: float) -> None:
    """Let the keys of an old generation go once readers have moved on (after seconds),
    and delete those of the generations whose time has come (every refresh calls it)."""
    if generation is not None:
        cache.zadd(RETIRED, {str(generation): now + after})
    due: list[bytes] = cache.zrangebyscore(RETIRED, "-inf", now)  # type: ignore[assignment]
    for name in due:
        for key in cache.scan_iter(match=f"{PREFIX}g{_text(name)}:*", count=1000):
            cache.delete(key)
        cache.zrem(RETIRED, name)


def pages(total: int, size: int) -> int:
    """How many gallery pages total movies make."""
    return max(1, math.ceil(total / size))
