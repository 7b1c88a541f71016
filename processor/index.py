"""The indexes of public movies: one per hall (processing unit) and day, each written by
its hall only, so units publishing into one bucket never lose each other's entries.

`movies/index/<hall>/<YYYY-MM-DD>.json` lists, newest first, the public movies that hall
published of that day (UTC, by when they were made): small however large the archive,
and a reader fetches again only those whose ETag changed. A store written before halls
has one `movies/index.json` (v1): still read, entries removed from it on take-down, and
folded into the hall `main` by `processor reindex` there.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

from moviepkg.errors import RecordError
from moviepkg.ids import split_package_id
from moviepkg.locks import exclusive
from moviepkg.owner import (
    OWNER_PREFIX,
    OwnerChange,
    OwnerObjects,
    apply_owner_changes,
    owner_key_of,
    parse_owner_change,
)
from moviepkg.record import (
    DEFAULT_HALL,
    INDEX_KEY,
    INDEX_PREFIX,
    MovieIndex,
    MovieRecord,
    index_key,
    index_keys,
    is_index_key,
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


_OWNER_OBJECTS: weakref.WeakKeyDictionary[Store, OwnerObjects] = weakref.WeakKeyDictionary()


def owner_changes(store: Store) -> dict[str, OwnerChange]:
    """What families decided with their owner links (names, removals), by movie id: one
    listing of owner/, and a read of each object that changed since the last call."""
    objects = _OWNER_OBJECTS.setdefault(store, OwnerObjects())

    def warn(key: str, exc: RecordError) -> None:
        log.warning("skipping the unreadable owner object %s: %s", key, exc, extra={"key": key})

    return objects.read(store.list_stamped(OWNER_PREFIX), store.get_bytes, warn)


def removed_by_owner(store: Store, package_id: str) -> bool:
    """Whether the movie's owner object says it was removed (its family's link, or a
    take-down by another hall); an unreadable one says nothing."""
    data = store.get_bytes(owner_key_of(package_id))
    try:
        return data is not None and parse_owner_change(data, owner_key_of(package_id)).removed
    except RecordError as exc:
        log.warning("the owner object is unreadable: %s", exc, extra={"package_id": package_id})
        return False


def _listed(store: Store, key: str) -> list[MovieRecord] | None:
    """The records the index at key lists ([] when there is none); None (and a warning)
    when it is unreadable."""
    data = store.get_bytes(key)
    if data is None:
        return []
    try:
        return list(parse_index(data).movies)
    except RecordError as exc:
        log.warning("%s is unreadable (%s): rebuilt from the records", key, exc,
                    extra={"key": key})
        return None


def _day_records(store: Store, key: str, hall: str, day: date) -> list[MovieRecord]:
    """What the index of one hall's day lists (rebuilt from the records if unreadable)."""
    listed = _listed(store, key)
    if listed is None:
        listed = [r for r in stored_records(store)
                  if r.hall == hall and r.created_at.date() == day]
    return listed


def listed_records(store: Store) -> list[MovieRecord]:
    """Every movie the indexes list (every hall's, and a v1 movies/index.json), once each."""
    found: dict[str, MovieRecord] = {}
    for key in index_keys(store.list_keys(INDEX_PREFIX.rstrip("/"))):
        found.update((record.id, record) for record in _listed(store, key) or [])
    return sorted(found.values(), key=lambda r: (r.created_at, r.id), reverse=True)


def _write_index(store: Store, key: str, records: Iterable[MovieRecord],
                 now: datetime) -> MovieIndex:
    """Write one index as the families left its movies (named, or removed); an index
    left empty is deleted."""
    index = MovieIndex.build(apply_owner_changes(records, owner_changes(store)), now)
    if index.movies or key == INDEX_KEY:
        store.put_bytes(key, index.to_json(), JSON_TYPE)
    else:
        store.delete(key)
    return index


def update_index(store: Store, record: MovieRecord, now: datetime, lock_path: Path) -> MovieIndex:
    """Put record into its hall's index of its day (or drop it there if private); return
    that index.

    Each hall (processing unit) writes only its own indexes, so units publishing into one
    bucket never write the same object; the read-modify-write holds an exclusive lock on
    lock_path, so the publishers of one unit (threads or processes) never lose each
    other's entries either.
    """
    key = record.index_key
    with exclusive(lock_path):
        listed = _day_records(store, key, record.hall, record.created_at.date())
        index = _write_index(store, key, [*listed, record], now)
    log.info("index %s updated: %d public movies that day", key, len(index.movies),
             extra={"package_id": record.id})
    return index


def remove_from_index(store: Store, package_id: str, now: datetime, lock_path: Path,
                      record: MovieRecord | None = None, hall: str = DEFAULT_HALL) -> bool:
    """Drop package_id's entry from this hall's indexes that list it (its index of the
    movie's day, and for the hall main a v1 movies/index.json); return whether one did.
    Under the same lock as update_index. Never another hall's index."""
    removed = False
    with exclusive(lock_path):
        for key in _candidate_indexes(package_id, record, hall):
            listed = _listed(store, key) or []
            kept = [r for r in listed if r.id != package_id]
            if len(kept) != len(listed):
                _write_index(store, key, kept, now)
                removed = True
                log.info("removed from %s", key, extra={"package_id": package_id})
    return removed


def _candidate_indexes(package_id: str, record: MovieRecord | None, hall: str) -> list[str]:
    """This hall's indexes that may list package_id."""
    keys = [INDEX_KEY] if hall == DEFAULT_HALL else []
    if record is not None:
        return [record.index_key, *keys] if record.hall == hall else keys
    parts = split_package_id(package_id)
    return ([index_key(hall, parts[1].date())] if parts is not None else []) + keys


def rebuild_index(store: Store, now: datetime, *, hall: str = DEFAULT_HALL,
                  lock_path: Path | None = None) -> list[MovieIndex]:
    """Rewrite hall's indexes from its records (a repair tool); indexes of days it has no
    public movie any more are deleted. The hall `main` also takes in the movies of a v1
    movies/index.json (their records say no hall: main), then deletes that file."""
    with exclusive(lock_path) if lock_path is not None else contextlib.nullcontext():
        days: dict[str, list[MovieRecord]] = {}
        for record in stored_records(store):
            if record.hall == hall:
                days.setdefault(record.index_key, []).append(record)
        written = [_write_index(store, key, records, now) for key, records in sorted(days.items())]
        for key in store.list_keys(f"{INDEX_PREFIX}{hall}/"):
            if is_index_key(key) and key not in days:
                store.delete(key)
        if hall == DEFAULT_HALL and store.exists(INDEX_KEY):
            store.delete(INDEX_KEY)
            log.info("the v1 %s is now in the indexes of the hall %s", INDEX_KEY, hall)
    return written


def _record(store: Store, package_id: str) -> MovieRecord | None:
    data = store.get_bytes(record_key(package_id))
    try:
        return parse_record(data) if data is not None else None
    except RecordError:
        return None


def remove_from_store(store: Store, package_id: str, now: datetime, index_lock: Path,
                      hall: str = DEFAULT_HALL) -> None:
    """Delete everything publishing put in the store for package_id (missing is fine).

    The record first, so a rebuilt index cannot list it again; then the index entry,
    so the website forgets it at its next refresh; then the media. A movie of another
    hall: this unit never writes that hall's indexes (their unit does, and would lose an
    entry racing this one), so it writes a removal (owner/<id>.json, as a family's link
    does), which the website and every unit honour, and that hall's unit takes the index
    entry out at its next sweep.
    """
    record = _record(store, package_id)
    if record is not None and record.hall != hall:
        store.put_bytes(owner_key_of(package_id),
                        OwnerChange(package_id, None, True, now.replace(microsecond=0))
                        .to_json(), JSON_TYPE)
        store.delete(record_key(package_id))
        log.info("a movie of the hall %s: its removal written for that hall",
                 record.hall, extra={"package_id": package_id})
    else:
        store.delete(record_key(package_id))
        remove_from_index(store, package_id, now, index_lock, record, hall)
    store.delete(video_key(package_id))
    store.delete(poster_key(package_id))
    log.info("removed from %s", store.url, extra={"package_id": package_id})


def sweep_owner_removals(store: Store, now: datetime, lock_path: Path, done: set[str],
                         hall: str = DEFAULT_HALL) -> list[str]:
    """Take out of the store every movie of this hall that its family removed with their
    owner link, or another unit took down (the site stopped showing it at once; this
    makes its public media addresses dead too, and drops it from this hall's index).

    done: the ids already swept by this process (a removal is final), updated; returns
    the ids removed now. Another hall's movies are that hall's unit's to sweep.
    """
    removed = []
    for movie_id, change in owner_changes(store).items():
        if not change.removed or movie_id in done:
            continue
        record = _record(store, movie_id)
        if record is not None and record.hall != hall:
            done.add(movie_id)  # its own unit sweeps it
            continue
        if record is not None:  # first, so a rebuilt index cannot list it again
            store.delete(record_key(movie_id))
        listed = remove_from_index(store, movie_id, now, lock_path, record, hall)
        if record is not None or listed or store.exists(video_key(movie_id)):
            store.delete(video_key(movie_id))
            store.delete(poster_key(movie_id))
            log.info("removed (owner link or take-down): out of the store",
                     extra={"package_id": movie_id})
            removed.append(movie_id)
        done.add(movie_id)
    return removed
