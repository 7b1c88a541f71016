"""The Redis cache: one refresh at a time, nobody waits on it, and graceful degradation."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from moviepkg.record import INDEX_KEY
from tests.services import RedisServer, wait_until
from tests.website.conftest import StoreBuilder, make_record
from website.app import create_app
from website.catalog import FAILED, LOCK, Catalog
from website.storage import FolderStorage, StorageDown


class CountingStorage(FolderStorage):
    """A real folder store that counts index reads and can be made slow or broken."""

    def __init__(self, root: Path, delay: float = 0.0) -> None:
        super().__init__(root)
        self.delay = delay
        self.reads = 0
        self.down = False
        self._lock = threading.Lock()

    def list_stamped(self, prefix: str) -> dict[str, str]:
        if self.down:
            raise StorageDown(f"{self.url}/{prefix}: unreachable (test)")
        return super().list_stamped(prefix)

    def list_keys(self, prefix: str) -> list[str]:
        if self.down:
            raise StorageDown(f"{self.url}/{prefix}: unreachable (test)")
        return super().list_keys(prefix)

    def get_bytes(self, key: str) -> bytes | None:
        if self.down:
            raise StorageDown(f"{self.url}/{key}: unreachable (test)")
        if key == INDEX_KEY:
            with self._lock:
                self.reads += 1
            time.sleep(self.delay)
        return super().get_bytes(key)


def client(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_connect_timeout=0.25, socket_timeout=0.5)


def test_cold_then_warm_from_redis(store: StoreBuilder, redis_server: RedisServer) -> None:
    store.add(make_record(1))
    storage = CountingStorage(store.root)
    first = Catalog(storage, client(redis_server))
    assert [m.id for m in first.snapshot().movies] == [store.records[0].id]
    other_worker = Catalog(storage, client(redis_server))
    assert other_worker.snapshot().version == first.snapshot().version
    assert storage.reads == 1  # the second worker read Redis, not the store


def test_stale_copy_is_served_at_once_while_exactly_one_refreshes(
        store: StoreBuilder, redis_server: RedisServer) -> None:
    store.add(make_record(1))
    now = [1000.0]
    storage = CountingStorage(store.root)
    workers = [Catalog(storage, client(redis_server), max_age=60, clock=lambda: now[0])
               for _ in range(4)]
    workers[0].snapshot()
    store.add(make_record(2))  # the store changes; the cache does not know yet
    storage.delay = 1.0  # a slow store: a visitor must not feel it
    now[0] += 61
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: workers[i % 4].snapshot(), range(64)))
    elapsed = time.monotonic() - started
    assert elapsed < 0.5, f"visitors waited {elapsed:.2f} s on a refresh"
    assert all(len(r.movies) == 1 for r in results)  # the stale copy
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(workers[3].snapshot().movies) != 2:
        time.sleep(0.05)
    assert len(workers[3].snapshot().movies) == 2
    assert storage.reads == 2  # the first fill and exactly one refresh
    assert client(redis_server).get(LOCK) is None  # released


def test_redis_down_pages_still_work(store: StoreBuilder, redis_server: RedisServer) -> None:
    store.add(make_record(1))
    storage = CountingStorage(store.root)
    catalog = Catalog(storage, client(redis_server))
    redis_server.kill()
    started = time.monotonic()
    snapshot = catalog.snapshot()
    assert time.monotonic() - started < 1.5
    assert [m.id for m in snapshot.movies] == [store.records[0].id]
    assert catalog.last_error.startswith("redis:")
    redis_server.start()
    assert len(Catalog(storage, client(redis_server)).snapshot().movies) == 1


def test_storage_down_serves_the_last_copy(store: StoreBuilder, redis_server: RedisServer) -> None:
    store.add(make_record(1))
    now = [1000.0]
    storage = CountingStorage(store.root)
    catalog = Catalog(storage, client(redis_server), clock=lambda: now[0],
                      recheck=0)  # asks Redis every time: the staleness is seen at once
    catalog.snapshot()
    storage.down = True
    now[0] += 120
    for _ in range(3):
        assert len(catalog.snapshot().movies) == 1
    wait_until(lambda: client(redis_server).get(FAILED) == b"1", timeout=5,
               message="the failed refresh noted: no hammering for a while")
    fresh_worker = Catalog(storage, client(redis_server), clock=lambda: now[0])
    assert len(fresh_worker.snapshot().movies) == 1  # from Redis


def test_both_down_keeps_serving_the_pages_the_worker_rendered(
        store: StoreBuilder, redis_server: RedisServer) -> None:
    """Redis and the store both down: the pages this worker rendered are still served
    (its memory holds pages, never the archive)."""
    record = store.add(make_record(1, title="The cat who flew"))
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(),
                      "REDIS_URL": redis_server.url, "REDIS_BACKOFF_SECONDS": 60})
    site = app.test_client()
    for path in ("/", f"/movies/{record.id}", "/api/movies"):
        assert "The cat who flew" in site.get(path).get_data(as_text=True), path
    redis_server.kill()
    shutil.move(store.root, store.root.with_name("gone"))  # the store is gone too
    for path in ("/", f"/movies/{record.id}", "/api/movies"):
        answer = site.get(path)
        assert answer.status_code == 200 and "The cat who flew" in answer.get_data(
            as_text=True), path
