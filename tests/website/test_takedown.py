"""A movie taken down on the processing unit leaves the website at the cache's next refresh;
every movie page and video request logs the movie's id and code."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from processor.store import FileStore
from processor.takedown import remove_from_store
from tests.services import RedisServer, wait_until
from tests.website.conftest import StoreBuilder, make_record
from website.app import create_app

CACHE_SECONDS = 1


def cached_client(store: StoreBuilder, server: RedisServer) -> FlaskClient:
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(),
                      "REDIS_URL": server.url, "CACHE_SECONDS": CACHE_SECONDS})
    return app.test_client()


def listed(client: FlaskClient) -> list[str]:
    return [movie["id"] for movie in client.get("/api/movies").get_json()["movies"]]


def test_a_taken_down_movie_leaves_every_page_once_the_cache_refreshes(
        store: StoreBuilder, redis_server: RedisServer, tmp_path: Path) -> None:
    gone, stays = store.add(make_record(1, title="Our cat")), store.add(make_record(2))
    client = cached_client(store, redis_server)
    assert listed(client) == [stays.id, gone.id]
    assert client.get(f"/m/{gone.code}").headers["Location"] == f"/movies/{gone.id}"
    assert "Our cat" in client.get("/").get_data(as_text=True)
    assert client.get(f"/api/movies/{gone.id}").status_code == 200
    assert client.get(f"/media/{gone.id}.mp4", headers={"Range": "bytes=0-9"}).status_code == 206

    # What `processor unpublish` (or the console's take-down) does to the store.
    remove_from_store(FileStore(store.root), gone.id, datetime.now(UTC), tmp_path / "index.lock")
    assert client.get(f"/media/{gone.id}.mp4").status_code == 404  # the file went at once
    assert client.get(f"/movies/{gone.id}/download").status_code == 404
    wait_until(lambda: listed(client) == [stays.id], timeout=CACHE_SECONDS + 5,
               message="the cache to refresh")
    assert "Our cat" not in client.get("/").get_data(as_text=True)
    by_code = client.get(f"/m/{gone.code}")  # the same page as a code never seen: no hint
    assert by_code.status_code == 200 and "Location" not in by_code.headers
    assert "Your movie is on its way" in by_code.get_data(as_text=True)
    assert client.get(f"/api/code/{gone.code}").get_json() == {"code": gone.code,
                                                               "status": "waiting"}
    assert client.get(f"/api/movies/{gone.id}").get_json() == {"error": "not found"}
    for path in (f"/movies/{gone.id}", f"/media/{gone.id}.jpg", f"/media/{gone.id}.mp4"):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/movies/{stays.id}").status_code == 200
    fresh = cached_client(store, redis_server)  # another worker, from Redis: gone too
    assert listed(fresh) == [stays.id]


def test_movie_pages_and_videos_log_the_id_and_the_code(
        store: StoreBuilder, caplog: pytest.LogCaptureFixture) -> None:
    movie = store.add(make_record(3))
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(), "REDIS": None})
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="stopmo.website.views"):
        assert client.get(f"/movies/{movie.id}").status_code == 200
        assert client.get(f"/media/{movie.id}.mp4").status_code == 200
        assert client.get(f"/media/{movie.id}.jpg").status_code == 200  # a poster: no line
        assert client.get(f"/movies/{movie.id}/download").status_code == 200
        assert client.get("/").status_code == 200
    lines = [(r.getMessage(), r.levelname, getattr(r, "package_id", None),
              getattr(r, "code", None)) for r in caplog.records
             if r.name == "stopmo.website.views"]
    assert lines == [(what, "INFO", movie.id, movie.code)
                     for what in ("movie page", "video request", "video download")]
