"""A cache that holds garbage is a miss: every page still works and the garbage is rewritten."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from tests.services import RedisServer
from tests.website.conftest import StoreBuilder, make_record
from tests.website.test_catalog import CountingStorage, client
from website.app import create_app
from website.catalog import PREFIX, Catalog

META, DATA, LOCK, FAILED = (PREFIX + name for name in ("meta", "data", "lock", "failed"))
Spoil = Callable[[redis.Redis], None]


def version_of(data: bytes) -> str:
    """The version the website gives cached data: a hash of its bytes."""
    return hashlib.sha256(data).hexdigest()[:16]


def valid_meta_with(data: bytes) -> bytes:
    """A meta that vouches for data, as a writer with the same hashing would."""
    return json.dumps({"version": version_of(data), "fetched_at": time.time()}).encode()


def spoil_data(value: bytes, vouch: bool = False) -> Spoil:
    def spoil(r: redis.Redis) -> None:
        r.set(DATA, value)
        if vouch:
            r.set(META, valid_meta_with(value))
    return spoil


def wrong_type(key: str) -> Spoil:
    def spoil(r: redis.Redis) -> None:
        r.delete(key)
        r.rpush(key, "not", "a", "string")
    return spoil


OLD_RECORDS = json.dumps({"version": 0, "movies": [{"id": "x", "name": "old format"}]}).encode()
GARBAGE: dict[str, Spoil] = {
    "meta not JSON": lambda r: r.set(META, b"\xff\x00{not json"),
    "meta not an object": lambda r: r.set(META, b"[1, 2, 3]"),
    "meta missing fields": lambda r: r.set(META, b'{"version": "0123456789abcdef"}'),
    "meta in an older format": lambda r: r.set(META, b'{"v": 1, "ts": "2026-05-01"}'),
    "meta of the wrong type": wrong_type(META),
    "meta deep nesting": lambda r: r.set(META, b"[" * 100_000),
    "data corrupted": spoil_data(b'{"version":1,"movies":[{"id":'),
    "data not an index": spoil_data(b'{"movies": 5}', vouch=True),
    "data in an older format": spoil_data(OLD_RECORDS, vouch=True),
    "data deep nesting": spoil_data(b"[" * 100_000, vouch=True),
    "data missing": lambda r: r.delete(DATA),
    "data of the wrong type": wrong_type(DATA),
    "a lock that never expires": lambda r: (r.delete(META), r.set(LOCK, b"garbage")),
}


def routes(store: StoreBuilder) -> dict[str, int]:
    """Every route that reads the catalog, with the status it answers when all is well."""
    first = store.records[0]
    return {"/": 200, "/?page=2": 200, f"/movies/{first.id}": 200,
            f"/movies/{first.id}/download": 200, f"/media/{first.id}.jpg": 200,
            f"/m/{first.code}": 302, "/api/movies": 200, f"/api/movies/{first.id}": 200,
            "/healthz": 200}


def fresh_worker(store: StoreBuilder, server: RedisServer) -> FlaskClient:
    """A new worker (nothing in its memory) on the real Redis, as configured in production."""
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "PAGE_SIZE": 2,
                      "STORAGE_URL": store.root.as_uri(), "REDIS_URL": server.url})
    return app.test_client()


def assert_cache_is_readable(r: redis.Redis, store: StoreBuilder) -> None:
    meta = json.loads(r.get(META))
    data = r.get(DATA)
    assert isinstance(meta["fetched_at"], float) and meta["version"] == version_of(data)
    ids = [movie["id"] for movie in json.loads(data)["movies"]]
    assert sorted(ids) == sorted(record.id for record in store.records)


@pytest.mark.parametrize("garbage", sorted(GARBAGE))
def test_garbage_in_redis_is_a_miss_on_every_route(
        store: StoreBuilder, redis_server: RedisServer, garbage: str) -> None:
    for n in range(3):
        store.add(make_record(n))
    r = client(redis_server)
    fresh_worker(store, redis_server).get("/")  # a good cache, as a deploy would find it
    assert_cache_is_readable(r, store)
    for path, status in routes(store).items():
        GARBAGE[garbage](r)
        response = fresh_worker(store, redis_server).get(path)
        assert response.status_code == status, (path, response.status_code)
        assert_cache_is_readable(r, store)  # the miss refreshed: the garbage is gone


def test_garbage_is_logged_once_while_it_cannot_be_rewritten(
        tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    r = client(redis_server)
    r.set(META, b"not json")
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False,
                      "STORAGE_URL": (tmp_path / "missing").as_uri(),
                      "REDIS_URL": redis_server.url})
    site = app.test_client()
    with caplog.at_level(logging.WARNING, logger="stopmo.website"):
        for _ in range(5):
            assert site.get("/").status_code == 200
            assert site.get("/healthz").status_code == 503  # nothing to list, and no 500
    unreadable = [m for m in caplog.messages if "unreadable value in Redis" in m]
    assert len(unreadable) == 1, caplog.messages
    assert r.get(META) == b"not json"  # the store is down: nothing to rewrite it with yet


def test_a_failed_flag_that_never_expires_does_not_stop_refreshes(
        store: StoreBuilder, redis_server: RedisServer) -> None:
    store.add(make_record(1))
    now = [1000.0]
    storage = CountingStorage(store.root)
    catalog = Catalog(storage, client(redis_server), clock=lambda: now[0])
    catalog.snapshot()
    client(redis_server).set(FAILED, "1")  # no expiry: not one the website wrote
    store.add(make_record(2))
    now[0] += 120
    catalog.snapshot()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(catalog.snapshot().movies) != 2:
        time.sleep(0.05)
    assert len(catalog.snapshot().movies) == 2
