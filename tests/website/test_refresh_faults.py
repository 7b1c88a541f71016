"""A refresh that fails midway, an unreadable index, a movie that moves to another hall,
presigned links in cached pages: nothing lost, nothing stale for long."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import redis

from moviepkg.owner import OwnerChange
from moviepkg.record import MovieIndex
from tests.services import RedisServer, S3Server, wait_until
from tests.website.conftest import StoreBuilder, make_record
from tests.website.test_s3 import upload
from website.app import create_app
from website.catalog import Catalog
from website.index import Scope
from website.storage import FolderStorage, S3Storage, StorageDown

NOW = datetime(2026, 7, 1, tzinfo=UTC)


class FlakyStorage(FolderStorage):
    """A real folder store whose reads of some keys fail while `broken` holds them."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.broken: set[str] = set()

    def get_bytes(self, key: str) -> bytes | None:
        if key in self.broken:
            raise StorageDown(f"{key}: unreachable (test)")
        return super().get_bytes(key)


def catalog(storage: FolderStorage, server: RedisServer, now: list[float]) -> Catalog:
    return Catalog(storage, redis.Redis.from_url(server.url), max_age=60,
                   clock=lambda: now[0], recheck=0)


def refresh(cat: Catalog, now: list[float]) -> None:
    """Make the cache stale and let this worker refresh it, in the foreground."""
    now[0] += 120
    token = cat._try_lock()
    assert token is not None
    with contextlib.suppress(StorageDown):  # a failure is the point of some tests
        cat._refresh(token)


def test_a_removal_survives_a_refresh_that_failed_midway(store: StoreBuilder,
                                                         redis_server: RedisServer) -> None:
    removed, renamed = store.add(make_record(1)), store.add(make_record(2))
    storage, now = FlakyStorage(store.root), [1000.0]
    cat = catalog(storage, redis_server, now)
    assert cat.snapshot().total() == 2
    version = cat.snapshot().version
    storage.put_owner(OwnerChange(removed.id, None, True, NOW))
    storage.put_owner(OwnerChange(renamed.id, "Our dragon", False, NOW))
    storage.broken = {f"owner/{renamed.id}.json"}  # the second read fails
    refresh(cat, now)
    storage.broken = set()
    refresh(cat, now)
    listing = cat.snapshot()
    assert [m.id for m in listing.movies] == [renamed.id]  # type: ignore[attr-defined]
    assert listing.get(renamed.id).title == "Our dragon"  # type: ignore[union-attr]
    assert listing.version != version  # pages cached before are not served again


def test_a_refresh_that_stopped_midway_makes_a_new_version(store: StoreBuilder,
                                                           redis_server: RedisServer) -> None:
    first = store.add(make_record(1))
    storage, now = FlakyStorage(store.root), [1000.0]
    cat = catalog(storage, redis_server, now)
    cat.snapshot()
    before = cat.snapshot().version
    storage.put_owner(OwnerChange(first.id, None, True, NOW))  # written to Redis, then:
    storage.broken = {"movies/index.json"}
    store.add(make_record(2))  # the index changed too, and cannot be read
    refresh(cat, now)  # the removal is written, the index fails: no new version yet
    storage.broken = set()
    refresh(cat, now)
    assert cat.snapshot().version != before
    assert [m.id for m in cat.snapshot().movies] == [store.records[1].id]  # type: ignore[attr-defined]


def test_an_unreadable_index_does_not_stop_the_others(store: StoreBuilder,
                                                      redis_server: RedisServer) -> None:
    old = make_record(1)
    new = replace(make_record(2), hall="small-hall")
    store.add(old)
    now = [1000.0]
    cat = catalog(FolderStorage(store.root), redis_server, now)
    assert cat.snapshot().total() == 1
    (store.root / "movies/index/main").mkdir(parents=True)
    (store.root / "movies/index/main/2026-05-01.json").write_text("")  # a unit cut short
    (store.root / "movies/index/small-hall").mkdir(parents=True)
    (store.root / new.index_key).write_bytes(MovieIndex.build([new], NOW).to_json())
    refresh(cat, now)
    assert {m.id for m in cat.snapshot().movies} == {old.id, new.id}  # type: ignore[attr-defined]
    assert cat._try_lock() is not None  # released


def test_a_movie_that_moves_to_another_hall_leaves_the_first(store: StoreBuilder,
                                                             redis_server: RedisServer) -> None:
    movie = store.add(make_record(1))
    now = [1000.0]
    cat = catalog(FolderStorage(store.root), redis_server, now)
    assert cat.snapshot().total(Scope(hall="main")) == 1
    moved = replace(movie, hall="small-hall")
    store.records = [moved]
    store.write_index()
    refresh(cat, now)
    listing = cat.snapshot()
    assert listing.total(Scope(hall="main")) == 0 and listing.total(Scope(hall="small-hall")) == 1
    assert [m.id for m in listing.page(Scope(hall="small-hall"), 0, 5)] == [movie.id]


def test_cached_pages_never_hold_an_expired_presigned_link(
        store: StoreBuilder, s3_server: S3Server, redis_server: RedisServer) -> None:
    store.add(make_record(1))
    upload(store, s3_server)
    storage = S3Storage("festival", "jff", client=s3_server.client(), presign_seconds=2)
    app = create_app({"TESTING": True, "STORAGE": storage, "REDIS_URL": redis_server.url})
    client = app.test_client()
    first = client.get("/api/movies").get_json()["movies"][0]["video_url"]
    wait_until(lambda: client.get("/api/movies").get_json()["movies"][0]["video_url"] != first,
               timeout=3, interval=0.2, message="a page with fresh links")
