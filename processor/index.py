"""movies/index.json: every public record, newest first, updated without losing an entry."""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from moviepkg.errors import RecordError
from moviepkg.locks import exclusive
from moviepkg.owner import OWNER_PREFIX, OwnerChange, OwnerObjects, apply_owner_changes
from moviepkg.record import (
    INDEX_KEY,
    MovieIndex,
    MovieRecord,
    parse_index,
    parse_record,
    poster_key,
    record_key,
    video_key,
)
from moviepkg.storage import MOVIES_PREFIX

from .store import JSON_TYPE, Store

log = logging.getLogger(__name__)


def stored_records(store: Store) -> list[MovieRecord]:
    """Load every record under movies/*.json, skipping unreadable ones with a warning."""
    records = []
    for key in store.list_keys(MOVIES_PREFIX):
        name = key.removeprefix(MOVIES_PREFIX)
        if key == INDEX_KEY or "/" in name or not name.endswith(".json"):
            continue
        data = store.get_bytes(key)
        if data is None:  # deleted since the listing
            continue
        try:
            record = parse_record(data)
        except RecordError as exc:
            log.warning("skipping the unreadable record %s: %s", key, exc,
                        extra={"key": key, "package_id": name.removesuffix(".json")})
            continue
        if record_key(record.id) != key:
            log.warning("skipping the record %s: it describes %s", key, record.id,
                        extra={"key": key, "package_id": name.removesuffix(".json")})
            continue
        records.append(record)
    return records


def _indexed_records(store: Store, data: bytes | None) -> list[MovieRecord]:
    """The records listed in the index's bytes (or every record, when it has none)."""
    if data is None:
        log.info("%s is missing: rebuilding it from the records", INDEX_KEY)
        return stored_records(store)
    try:
        return list(parse_index(data).movies)
    except RecordError as exc:
        log.warning("%s is unreadable (%s): rebuilding it from the records", INDEX_KEY, exc)
        return stored_records(store)


_OWNER_OBJECTS: weakref.WeakKeyDictionary[Store, OwnerObjects] = weakref.WeakKeyDictionary()


def owner_changes(store: Store) -> dict[str, OwnerChange]:
    """What families decided with their owner links (names, removals), by movie id: one
    listing of owner/, and a read of each object that changed since the last call."""
    objects = _OWNER_OBJECTS.setdefault(store, OwnerObjects())

    def warn(key: str, exc: RecordError) -> None:
        log.warning("skipping the unreadable owner object %s: %s", key, exc, extra={"key": key})

    return objects.read(store.list_stamped(OWNER_PREFIX), store.get_bytes, warn)


def _write_index(store: Store, records: Iterable[MovieRecord], now: datetime) -> MovieIndex:
    """Write the index of records as the families left them (named, or removed)."""
    index = MovieIndex.build(apply_owner_changes(records, owner_changes(store)), now)
    store.put_bytes(INDEX_KEY, index.to_json(), JSON_TYPE)
    return index


def update_index(store: Store, record: MovieRecord, now: datetime, lock_path: Path) -> MovieIndex:
    """Put record into movies/index.json (or drop it there if private); return the new index.

    The read-modify-write holds an exclusive lock on lock_path, so publishers on this
    machine (threads or processes) never lose each other's entries. Publishers on other
    machines writing to the same bucket are not excluded.
    """
    with exclusive(lock_path):
        listed = _indexed_records(store, store.get_bytes(INDEX_KEY))
        index = _write_index(store, [*listed, record], now)
    log.info("index updated: %d public movies", len(index.movies),
             extra={"package_id": record.id})
    return index


def remove_from_index(store: Store, package_id: str, now: datetime,
                      lock_path: Path) -> bool:
    """Drop package_id's entry from movies/index.json; return whether it was there.

    Under the same lock as update_index. An index that is missing or unreadable, and
    lists it through the records, is rebuilt from the records without it (delete the
    record first, so it cannot return).
    """
    with exclusive(lock_path):
        data = store.get_bytes(INDEX_KEY)
        records = _indexed_records(store, data)
        kept = [record for record in records if record.id != package_id]
        if len(kept) == len(records):
            return False  # not listed: nothing to write
        index = _write_index(store, kept, now)
    log.info("removed from the index: %d public movies", len(index.movies),
             extra={"package_id": package_id})
    return True


def rebuild_index(store: Store, now: datetime, *, lock_path: Path | None = None) -> MovieIndex:
    """Rewrite movies/index.json from every movies/*.json record (a repair tool)."""
    with exclusive(lock_path) if lock_path is not None else contextlib.nullcontext():
        return _write_index(store, stored_records(store), now)


def remove_from_store(store: Store, package_id: str, now: datetime, index_lock: Path) -> None:
    """Delete everything publishing put in the store for package_id (missing is fine).

    The record first, so a rebuilt index cannot list it again; then the index entry,
    so the website forgets it at its next refresh; then the media.
    """
    store.delete(record_key(package_id))
    remove_from_index(store, package_id, now, index_lock)
    store.delete(video_key(package_id))
    store.delete(poster_key(package_id))
    log.info("removed from %s", store.url, extra={"package_id": package_id})


def sweep_owner_removals(store: Store, now: datetime, lock_path: Path,
                         done: set[str]) -> list[str]:
    """Take out of the store every movie its family removed with their owner link (the
    site stopped showing it at once; this makes its public media addresses dead too).

    done: the ids already swept by this process (a removal is final), updated; returns
    the ids removed now.
    """
    removed = []
    for movie_id, change in owner_changes(store).items():
        if not change.removed or movie_id in done:
            continue
        if store.exists(record_key(movie_id)) or store.exists(video_key(movie_id)):
            remove_from_store(store, movie_id, now, lock_path)
            log.info("removed by its family (owner link): out of the store",
                     extra={"package_id": movie_id})
            removed.append(movie_id)
        done.add(movie_id)
    return removed
