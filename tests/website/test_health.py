"""Real gunicorn: a hung Redis costs one slow request per worker; /healthz keeps secrets."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import RedisServer, closed_port, wait_until
from tests.website.conftest import StoreBuilder, make_record
from tests.website.served import Site, get
from website.app import create_app

WORKERS = 2
BACKOFF = 3  # seconds a worker skips Redis after it failed
REDIS_TIMEOUT = 0.5  # the app's socket_timeout: a request that waited on Redis took this long
TOKEN = "operator-secret-token"
PROXIED = {"X-Forwarded-For": "203.0.113.7"}


@pytest.fixture
def site(tmp_path: Path, store: StoreBuilder, redis_server: RedisServer) -> Iterator[Site]:
    for n in range(3):
        store.add(make_record(n))
    settings = {"STORAGE_URL": store.root.as_uri(), "REDIS_URL": redis_server.url,
                "REDIS_BACKOFF_SECONDS": str(BACKOFF), "HEALTH_TOKEN": TOKEN}
    with Site(tmp_path / "site", settings, workers=WORKERS) as running:
        yield running


@pytest.mark.slow  # real time: Redis stopped
def test_a_hung_redis_costs_at_most_one_slow_request_per_worker(
        site: Site, store: StoreBuilder, redis_server: RedisServer) -> None:
    code = store.records[0].code
    paths = ["/", "/api/movies", "/healthz", f"/m/{code}"]
    for _ in range(10):  # warm both workers: each has the list in memory
        assert get(site.port, "/").status == 200
    assert redis_server.process is not None
    pid = redis_server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        answers = [get(site.port, paths[i % len(paths)]) for i in range(24)]
        elapsed = sum(a.seconds for a in answers)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert all(a.status in (200, 302) for a in answers), [a.status for a in answers]
    slow = [round(a.seconds, 2) for a in answers if a.seconds >= 0.9 * REDIS_TIMEOUT]
    # One probe per worker per back-off interval: the first failure, then one per interval.
    allowed = WORKERS * (1 + int(elapsed // BACKOFF))
    assert len(slow) <= allowed, f"{len(slow)} slow requests in {elapsed:.1f} s: {slow}"

    def uses_redis_again() -> bool:
        return bool(json.loads(get(site.port, "/healthz").body)["redis"] == "ok")

    wait_until(uses_redis_again, timeout=BACKOFF + 10, interval=0.2,
               message="the site to use Redis again")


def test_healthz_tells_the_world_only_the_status(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-store"
    with closed_port() as dead_redis, Site(tmp_path / "site", {
            "STORAGE_URL": missing.as_uri(), "REDIS_URL": f"redis://127.0.0.1:{dead_redis}/0",
            "HEALTH_TOKEN": TOKEN}, workers=1) as down:
        public = get(down.port, "/healthz", PROXIED)
        assert public.status == 503
        assert json.loads(public.body) == {"status": "down"}
        for secret in (str(dead_redis), "127.0.0.1", str(missing), "file:", "Error"):
            assert secret not in public.body
        wrong = get(down.port, "/healthz", {**PROXIED, "Authorization": "Bearer nope"})
        assert json.loads(wrong.body) == {"status": "down"}
        for headers in ({**PROXIED, "Authorization": f"Bearer {TOKEN}"}, {}):  # operator, local
            details = get(down.port, "/healthz", headers)
            assert details.status == 503
            report = json.loads(details.body)
            assert str(dead_redis) in report["redis"] and str(missing) in report["storage"]
            assert report["status"] == "down"


def test_healthz_from_a_remote_address_without_a_proxy(store: StoreBuilder) -> None:
    store.add(make_record(1))
    with closed_port() as dead_redis:
        app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(),
                          "REDIS_URL": f"redis://127.0.0.1:{dead_redis}/0", "HEALTH_TOKEN": ""})
        client = app.test_client()
        remote = client.get("/healthz", environ_base={"REMOTE_ADDR": "198.51.100.4"})
        assert (remote.status_code, remote.get_json()) == (200, {"status": "degraded"})
        assert remote.headers["Cache-Control"] == "no-store"
        mapped = client.get("/healthz", environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"})
        assert mapped.get_json()["redis"].startswith("down")  # loopback, IPv4-mapped
        empty_token = client.get("/healthz", headers={"Authorization": "Bearer "},
                                 environ_base={"REMOTE_ADDR": "198.51.100.4"})
        assert empty_token.get_json() == {"status": "degraded"}  # no token set: none accepted
