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

This module names the keys and reads them (`RedisListing`); website.redisrefresh keeps
them up to date. A page costs a `ZREVRANGE` and an `HMGET` of its 24 records. Anything
unreadable raises Unreadable; the catalog then fills a new generation of keys from the
store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from moviepkg.errors import RecordError
from moviepkg.ids import normalize_code
from moviepkg.record import MovieRecord, record_from_dict

from .index import EVERYTHING, Scope, Unreadable

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


def as_text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def cached_record(raw: bytes | str | None, where: str) -> MovieRecord | None:
    if raw is None:
        return None
    try:
        return record_from_dict(json.loads(raw), where)
    except (ValueError, RecordError, RecursionError) as exc:  # UnicodeDecodeError too
        raise Unreadable(f"{where}: {exc}") from None


def asked(do: Callable[[], Any]) -> Any:
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
        return int(asked(lambda: self.cache.zcard(self.keys.zset(scope))))

    def page(self, scope: Scope, offset: int, count: int) -> list[MovieRecord]:
        """count movies of the scope from offset, newest first."""
        name = self.keys.zset(scope)
        ids = asked(lambda: self.cache.zrevrange(name, offset, offset + count - 1))
        return self._records(ids)

    def get(self, movie_id: str) -> MovieRecord | None:
        """The public movie with this id, or None."""
        found = cached_record(asked(lambda: self.cache.hget(self.keys.rec, movie_id)),
                        f"{self.keys.rec} {movie_id}")
        everything = self.keys.zset(EVERYTHING)
        if found is None and asked(lambda: self.cache.zscore(everything, movie_id)):
            raise Unreadable(f"{movie_id} is listed without its record")
        return found

    def find_code(self, typed: str) -> list[MovieRecord]:
        """The movies whose code is what a person typed (usually one)."""
        code = normalize_code(typed)
        if code is None:
            return []
        ids = (as_text(asked(lambda: self.cache.hget(self.keys.code, code))) or "").split()
        return sorted(self._records(ids), key=lambda m: (m.created_at, m.id), reverse=True)

    def festivals(self) -> list[str]:
        """The festivals with public movies, newest name first."""
        return sorted(self._members(self.keys.festivals), reverse=True)

    def halls(self) -> list[str]:
        """The halls with public movies."""
        return sorted(self._members(self.keys.halls))

    def _members(self, name: str) -> list[str]:
        return [as_text(m) or "" for m in asked(lambda: self.cache.smembers(name))]

    @property
    def movies(self) -> tuple[MovieRecord, ...]:
        """Every movie, newest first (for tools and tests: a page reads only its own)."""
        return tuple(self.page(Scope(), 0, max(1, self.total())))

    def _records(self, ids: Sequence[bytes | str]) -> list[MovieRecord]:
        if not ids:
            return []
        raws = asked(lambda: self.cache.hmget(self.keys.rec, ids))
        found = []
        for movie_id, raw in zip(ids, raws, strict=True):
            record = cached_record(raw, f"{self.keys.rec} {as_text(movie_id)}")
            if record is None:
                raise Unreadable(f"{as_text(movie_id)} is listed without its record")
            found.append(record)
        return found


def generations(cache: redis.Redis) -> set[int]:
    """Every generation that has keys in Redis."""
    found = set()
    for key in cache.scan_iter(match=f"{PREFIX}g*:*", count=1000):
        name = as_text(key) or ""
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
        batch: list[bytes] = []
        for key in cache.scan_iter(match=f"{PREFIX}g{as_text(name)}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                cache.delete(*batch)
                batch.clear()
        if batch:
            cache.delete(*batch)
        cache.zrem(RETIRED, name)
