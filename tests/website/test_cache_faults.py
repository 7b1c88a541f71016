"""A cache that holds garbage is a miss: every page still works and the garbage is rewritten."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from moviepkg.record import record_from_dict
from tests.services import RedisServer, wait_until
from tests.website.conftest import StoreBuilder, make_record
from tests.website.test_catalog import CountingStorage, client
from website.app import create_app
from website.catalog import FAILED, LOCK, OLD, Catalog
from website.index import EVERYTHING, parse_meta
from website.redisindex import META, Keys

Spoil = Callable[[redis.Redis, StoreBuilder], None]


def keys(r: redis.Redis) -> Keys:
    """The key names of the generation the meta points at."""
    return Keys(parse_meta(r.get(META) or b"").generation)


def wrong_type(name: str) -> Spoil:
    def spoil(r: redis.Redis, store: StoreBuilder) -> None:
        key = META if name == "meta" else getattr(keys(r), name) if name != "all" \
            else keys(r).zset(EVERYTHING)
        r.delete(key)
        r.rpush(key, "not", "a", "hash")
    return spoil


def record_value(value: bytes) -> Spoil:
    def spoil(r: redis.Redis, store: StoreBuilder) -> None:
        r.hset(keys(r).rec, store.records[0].id, value)
    return spoil


OLD_RECORD = json.dumps({"id": "x", "name": "old format", "version": 0}).encode()
GARBAGE: dict[str, Spoil] = {
    "meta not JSON": lambda r, s: r.set(META, b"\xff\x00{not json"),
    "meta not an object": lambda r, s: r.set(META, b"[1, 2, 3]"),
    "meta missing fields": lambda r, s: r.set(META, b'{"version": "0123456789abcdef"}'),
    "meta in an older format": lambda r, s: r.set(META, b'{"v": 1, "ts": "2026-05-01"}'),
    "meta of the wrong type": wrong_type("meta"),
    "meta deep nesting": lambda r, s: r.set(META, b"[" * 100_000),
    "a record corrupted": record_value(b'{"id":'),
    "a record in an older format": record_value(OLD_RECORD),
    "a record deep nesting": record_value(b"[" * 100_000),
    "a movie listed without its record": lambda r, s: r.hdel(keys(r).rec, s.records[0].id),
    "the records of the wrong type": wrong_type("rec"),
    "the gallery of the wrong type": wrong_type("all"),
    "the codes of the wrong type": wrong_type("code"),
    "a lock that never expires": lambda r, s: (r.delete(META), r.set(LOCK, b"garbage")),
    "the old one-document cache": lambda r, s: (r.set(OLD + "meta", b"x"),
                                                r.set(OLD + "data", b"y")),
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


def cache_is_readable(r: redis.Redis, store: StoreBuilder) -> bool:
    """Whether Redis holds exactly the store's movies, each readable."""
    try:
        now = keys(r)
        ids = sorted(i.decode() for i in r.zrange(now.zset(EVERYTHING), 0, -1))
        records = [record_from_dict(json.loads(r.hget(now.rec, i) or b"null")) for i in ids]
    except Exception:
        return False
    return ids == sorted(record.id for record in store.records) and len(records) == len(ids)


@pytest.mark.parametrize("garbage", sorted(GARBAGE))
def test_garbage_in_redis_is_a_miss_on_every_route(
        store: StoreBuilder, redis_server: RedisServer, garbage: str) -> None:
    for n in range(3):
        store.add(make_record(n))
    r = client(redis_server)
    fresh_worker(store, redis_server).get("/")  # a good cache, as a deploy would find it
    assert cache_is_readable(r, store)
    for path, status in routes(store).items():
        GARBAGE[garbage](r, store)
        response = fresh_worker(store, redis_server).get(path)
        assert response.status_code == status, (path, response.status_code)
        if garbage == "a lock that never expires":  # no version, and a lock nobody holds
            assert cache_is_readable(r, store), path  # filled at once all the same
        for looks in (f"/movies/{store.records[0].id}", "/?page=2"):  # read what was spoilt
            assert fresh_worker(store, redis_server).get(looks).status_code == 200, looks
        wait_until(lambda: cache_is_readable(r, store), timeout=5,
                   message=f"the garbage rewritten after {path}")


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
    catalog = Catalog(storage, client(redis_server), clock=lambda: now[0], recheck=0)
    catalog.snapshot()
    client(redis_server).set(FAILED, "1")  # no expiry: not one the website wrote
    store.add(make_record(2))
    now[0] += 120
    catalog.snapshot()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and catalog.snapshot().total() != 2:
        time.sleep(0.05)
    assert catalog.snapshot().total() == 2
