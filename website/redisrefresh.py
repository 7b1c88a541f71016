"""Keeping the Redis keys (website.redisindex) up to date with the store, incrementally.

A refresh lists the indexes and the owner objects with their stamps and reads only those
whose stamp changed: a new movie costs a LIST, a GET of one small day index and a few
writes, however large the archive. Movies an index no longer lists, or that their family
removed, leave every key; a festival or hall whose last movie went leaves the filters.
Only one refresh runs at a time (website.catalog holds the lock). Anything unreadable
raises Unreadable; the catalog then fills a new generation from the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import redis

from moviepkg.errors import RecordError
from moviepkg.owner import OWNER_PREFIX, OwnerChange, apply_owner_changes, parse_owner_change
from moviepkg.record import INDEX_PREFIX, MovieRecord, index_keys

from .index import Scope, Unreadable, parse_movies
from .redisindex import BATCH, Keys, as_text, asked, cached_record
from .storage import Storage

log = logging.getLogger("stopmo.website.redisindex")


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
        listed = self.storage.list_stamped(INDEX_PREFIX.rstrip("/"))
        stamped = {key: listed[key] for key in index_keys(listed)}  # the v1 index first
        known = {as_text(k) or "": as_text(v) or "" for k, v in
                 asked(lambda: self.cache.hgetall(self.keys.idx)).items()}
        for key in stamped:
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
        records = {record.id: record for record in apply_owner_changes(listed, owners)}
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
        return {as_text(i) or "" for i in asked(lambda: self.cache.smembers(name))}

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
        raws = asked(lambda: self.cache.hmget(self.keys.rec, [r.id for r in batch]))
        codes = self._codes(batch)
        zsets: dict[str, dict[str, float]] = {}
        moved: list[MovieRecord] = []  # their old festival or hall may now be empty
        pipe = self.cache.pipeline(transaction=False)
        for record, raw in zip(batch, raws, strict=True):
            score = record.created_at.timestamp()
            scopes = self.keys.scopes(record)
            for name in scopes:
                zsets.setdefault(name, {})[record.id] = score
            before = cached_record(raw, self.keys.rec) if raw is not None else None
            for name in self.keys.scopes(before) if before is not None else []:
                if name not in scopes:
                    pipe.zrem(name, record.id)
            if before is not None and (before.festival, before.hall) != (record.festival,
                                                                         record.hall):
                moved.append(before)
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
        self._prune_filters(moved)

    def _codes(self, records: list[MovieRecord]) -> dict[str, set[str]]:
        """The ids Redis holds for the codes of records, and theirs."""
        codes = self._codes_of(records)
        for record in records:
            codes[record.code].add(record.id)
        return codes

    def _codes_of(self, records: list[MovieRecord]) -> dict[str, set[str]]:
        """The ids Redis holds for each code of records (one HMGET)."""
        wanted = sorted({record.code for record in records})
        if not wanted:
            return {}
        now = asked(lambda: self.cache.hmget(self.keys.code, wanted))
        return {code: set((as_text(ids) or "").split())
                for code, ids in zip(wanted, now, strict=True)}

    def _forget(self, ids: Iterable[str], only_from: str | None = None) -> None:
        """Take ids out of every key; only_from: only those that index last listed."""
        ids = sorted(ids)
        if not ids:
            return
        if only_from is not None:
            where = asked(lambda: self.cache.hmget(self.keys.where, ids))
            ids = [i for i, w in zip(ids, where, strict=True) if as_text(w) in (None, only_from)]
        for chunk in _chunks(ids, BATCH // 8):
            raws = asked(lambda chunk=chunk: self.cache.hmget(self.keys.rec, chunk))  # type: ignore[misc]
            records = [r for r in (cached_record(raw, self.keys.rec) for raw in raws)
                       if r is not None]
            codes = self._codes_of(records)
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
            self._prune_filters(records)
            self.changed += len(records)

    def _prune_filters(self, gone: list[MovieRecord]) -> None:
        """A festival or hall whose last movie went leaves the gallery's filters (Redis
        deletes a sorted set that loses its last member). One refresh runs at a time, so
        nothing adds to them meanwhile."""
        festivals = sorted({record.festival for record in gone})
        halls = sorted({record.hall for record in gone})
        if not festivals:
            return
        pipe = self.cache.pipeline(transaction=False)
        for festival in festivals:
            pipe.exists(self.keys.zset(Scope(festival=festival)))
        for hall in halls:
            pipe.exists(self.keys.zset(Scope(hall=hall)))
        found = pipe.execute()
        counts = iter(found)
        empty_festivals = [f for f in festivals if not next(counts)]
        empty_halls = [h for h in halls if not next(counts)]
        pipe = self.cache.pipeline(transaction=False)
        if empty_festivals:
            pipe.srem(self.keys.festivals, *empty_festivals)
        if empty_halls:
            pipe.srem(self.keys.halls, *empty_halls)
        pipe.execute()

    # --- owner objects ------------------------------------------------------------------

    def _owner_changes(self) -> dict[str, OwnerChange]:
        """Every owner change (read again only where its stamp changed), applied to the
        records in Redis. A removal is final: a later object saying otherwise is ignored.
        The stamps are written last, so a refresh that fails midway reads them again."""
        stamped = {k: v for k, v in self.storage.list_stamped(OWNER_PREFIX).items()
                   if k.endswith(".json")}
        known = {as_text(k) or "": as_text(v) or "" for k, v in
                 asked(lambda: self.cache.hgetall(self.keys.own)).items()}
        changes = {}
        everything: dict[Any, Any] = asked(lambda: self.cache.hgetall(self.keys.ownch))
        for movie_id, raw in everything.items():
            try:
                change = parse_owner_change(raw if isinstance(raw, bytes) else raw.encode())
            except RecordError as exc:
                raise Unreadable(f"{self.keys.ownch} {as_text(movie_id)}: {exc}") from None
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
            present = asked(lambda: self.cache.hmget(self.keys.rec, removed))
            self._forget([m for m, raw in zip(removed, present, strict=True) if raw is not None])
        named = [movie_id for movie_id, change in fresh.items() if not change.removed]
        raws = asked(lambda: self.cache.hmget(self.keys.rec, named)) if named else []
        pipe = self.cache.pipeline(transaction=False)
        for movie_id, raw in zip(named, raws, strict=True):
            record = cached_record(raw, self.keys.rec)
            if record is not None:
                pipe.hset(self.keys.rec, movie_id, json.dumps(
                    replace(record, title=fresh[movie_id].title).to_dict(), ensure_ascii=False))
                self.changed += 1
        for change in fresh.values():
            pipe.hset(self.keys.ownch, change.id, change.to_json())
        for key, stamp in stamps.items():
            pipe.hset(self.keys.own, key, stamp)
        pipe.execute()
        return changes


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]
