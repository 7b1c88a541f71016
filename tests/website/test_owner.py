"""The family's own link: name or remove a movie with its owner key, and nothing else."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from flask.testing import FlaskClient

from moviepkg.owner import key_hash, new_owner_key, owner_key_of
from moviepkg.record import MovieRecord, parse_record, record_key
from processor.index import owner_changes, rebuild_index, sweep_owner_removals
from processor.publishing import publish_movie
from processor.store import FileStore
from tests.listing import listed_ids
from tests.services import RedisServer, wait_until
from tests.website.conftest import StoreBuilder, make_record
from website.app import create_app
from website.owner import REFUSED

KEY = new_owner_key()
RECHECK_WITHIN = 2.0  # a worker asks Redis for the version every 0.25 s at most


def owned(n: int, key: str = KEY, **changes: object) -> MovieRecord:
    return replace(make_record(n), title=None, owner_key_sha256=key_hash(key), width=320,
                   height=180, **changes)  # type: ignore[arg-type]


def client_of(store: StoreBuilder, server: RedisServer | None, **config: object) -> FlaskClient:
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(),
                      "REDIS_URL": server.url if server else "none", "CACHE_SECONDS": 60,
                      **config})
    return app.test_client()


def listed(client: FlaskClient) -> dict[str, str]:
    return {m["id"]: m["display_title"] for m in client.get("/api/movies").get_json()["movies"]}


def name(client: FlaskClient, movie: MovieRecord, title: str, key: object = KEY,
         **headers: str) -> tuple[int, dict[str, object]]:
    response = client.post(f"/api/movies/{movie.id}/name", json={"key": key, "title": title},
                           headers=headers)
    return response.status_code, response.get_json()


def remove(client: FlaskClient, movie: MovieRecord, key: object = KEY) -> tuple[int, object]:
    response = client.post(f"/api/movies/{movie.id}/remove", json={"key": key})
    return response.status_code, response.get_json()


def test_the_family_names_their_movie_everywhere_at_once(store: StoreBuilder,
                                                         redis_server: RedisServer) -> None:
    movie, other = store.add(owned(1)), store.add(owned(2, key=new_owner_key()))
    worker, elsewhere = client_of(store, redis_server), client_of(store, redis_server)
    assert listed(elsewhere)[movie.id] == f"Movie {movie.code}"  # cached before the change
    title = "  החתול   של דנה  "
    assert name(worker, movie, title) == (200, {"status": "named", "title": "החתול של דנה"})
    assert listed(worker)[movie.id] == "החתול של דנה"  # at once on the worker that took it
    # The shared cache was refreshed: another worker shows it once it next asks Redis.
    wait_until(lambda: listed(elsewhere)[movie.id] == "החתול של דנה", timeout=RECHECK_WITHIN,
               message="another worker to show the new name")
    for client in (worker, elsewhere):
        assert listed(client) == {movie.id: "החתול של דנה", other.id: f"Movie {other.code}"}
        assert "החתול של דנה" in client.get(f"/movies/{movie.id}").get_data(as_text=True)
        assert "החתול של דנה" in client.get("/").get_data(as_text=True)
    download = worker.get(f"/movies/{movie.id}/download")
    assert "filename*=UTF-8''%D7%94%D7%97" in download.headers["Content-Disposition"]
    # The record stays as the processor wrote it; the change is an owner object, no key in it.
    assert parse_record((store.root / record_key(movie.id)).read_bytes()).title is None
    written = (store.root / owner_key_of(movie.id)).read_bytes()
    assert json.loads(written)["title"] == "החתול של דנה" and KEY.encode() not in written
    assert name(worker, movie, "") == (200, {"status": "named", "title": None})  # the code again
    wait_until(lambda: listed(elsewhere)[movie.id] == f"Movie {movie.code}",
               timeout=RECHECK_WITHIN, message="another worker to drop the name")


def test_removal_is_immediate_and_final(store: StoreBuilder, redis_server: RedisServer) -> None:
    movie, stays = store.add(owned(1)), store.add(owned(2, key=new_owner_key()))
    worker, elsewhere = client_of(store, redis_server), client_of(store, redis_server)
    stale = client_of(store, None)  # no shared cache: its own copy, for up to max_age
    for client in (elsewhere, stale):
        assert set(listed(client)) == {movie.id, stays.id}
    assert remove(worker, movie) == (200, {"status": "removed", "title": None})
    assert set(listed(worker)) == {stays.id}  # at once on the worker that took it
    wait_until(lambda: set(listed(elsewhere)) == {stays.id}, timeout=RECHECK_WITHIN,
               message="another worker to drop the removed movie")
    for client in (worker, elsewhere):
        assert set(listed(client)) == {stays.id}
        for path in (f"/movies/{movie.id}", f"/media/{movie.id}.mp4", f"/media/{movie.id}.jpg",
                     f"/movies/{movie.id}/download", f"/api/movies/{movie.id}"):
            assert client.get(path).status_code == 404, path
        assert client.get(f"/api/code/{movie.code}").get_json()["status"] == "waiting"
    # A replayed request, on this worker or one whose cache still lists it: refused.
    assert remove(worker, movie) == (403, {"error": REFUSED})
    assert name(worker, movie, "Back again") == (403, {"error": REFUSED})
    assert set(listed(stale)) == {movie.id, stays.id}  # still in its copy, but final:
    assert name(stale, movie, "Back again") == (403, {"error": REFUSED})
    assert json.loads((store.root / owner_key_of(movie.id)).read_bytes())["removed"] is True


def test_a_wrong_key_reveals_nothing(store: StoreBuilder, redis_server: RedisServer) -> None:
    movie = store.add(owned(1))
    other_key = new_owner_key()
    other = store.add(owned(2, key=other_key))
    old = store.add(replace(make_record(3), title=None))  # before owner keys: no hash
    client = client_of(store, redis_server, OWNER_CLIENT_LIMIT="100 per minute")
    refusals = [
        name(client, movie, "Hacked", key=new_owner_key()),  # forged
        name(client, movie, "Hacked", key=other_key),  # the key of another movie
        name(client, movie, "Hacked", key=key_hash(KEY)),  # the hash (it is in the index)
        name(client, movie, "Hacked", key=KEY[:-1]),
        name(client, movie, "Hacked", key=None),
        name(client, movie, "Hacked", key=12345),
        name(client, old, "Hacked"),
        name(client, replace(movie, id="st-9-20260101t000000z-0000"), "Hacked"),
        remove(client, movie, key=other_key),
    ]
    assert refusals == [(403, {"error": REFUSED})] * len(refusals)
    assert listed(client) == {m.id: f"Movie {m.code}" for m in (movie, other, old)}
    assert not (store.root / "owner").exists()
    assert client.post(f"/api/movies/{movie.id}/name", data="not json").status_code == 400


def test_brute_force_is_refused_per_client_and_changes_per_movie(
        store: StoreBuilder, redis_server: RedisServer) -> None:
    movie = store.add(owned(1))
    one, two = client_of(store, redis_server, PROXY_HOPS=1), client_of(store, redis_server,
                                                                       PROXY_HOPS=1)
    codes = [name(one, movie, "x", key=new_owner_key(), **{"X-Forwarded-For": "203.0.113.7"})[0]
             for _ in range(12)]
    assert codes == [403] * 10 + [429] * 2  # counted in Redis: across workers too
    status, body = name(two, movie, "Ours", **{"X-Forwarded-For": "203.0.113.7"})
    assert status == 429 and "Too many tries" in str(body)
    # Another family's phone is not blocked, and the right key still works from it.
    assert name(two, movie, "Ours", **{"X-Forwarded-For": "198.51.100.2"})[0] == 200
    # Changes per movie: ten an hour, whoever sends them.
    statuses = [name(one, movie, f"Name {i}", **{"X-Forwarded-For": f"198.51.100.{10 + i}"})[0]
                for i in range(10)]
    assert statuses == [200] * 9 + [429]


def test_the_processor_respects_what_families_did(store: StoreBuilder, tmp_path: Path,
                                                  redis_server: RedisServer) -> None:
    named, removed = store.add(owned(1)), store.add(owned(2))
    client = client_of(store, redis_server)
    assert name(client, named, "Dragon dance")[0] == 200
    assert remove(client, removed)[0] == 200
    files = FileStore(store.root)
    lock = tmp_path / "index.lock"
    assert set(owner_changes(files)) == {named.id, removed.id}
    swept: set[str] = set()
    assert sweep_owner_removals(files, datetime.now(UTC), lock, swept) == [removed.id]
    assert sweep_owner_removals(files, datetime.now(UTC), lock, swept) == []
    for suffix in (".json", ".mp4", ".jpg"):
        assert not (store.root / "movies" / f"{removed.id}{suffix}").exists()
        assert (store.root / "movies" / f"{named.id}{suffix}").exists()
    [index] = rebuild_index(files, datetime.now(UTC))  # the v1 index folded into main's
    assert [(m.id, m.title) for m in index.movies] == [(named.id, "Dragon dance")]
    assert listed_ids(store.root) == [named.id]
    # Delivered again later (a station's retry): never published again.
    movies = tmp_path / "movies"
    movies.mkdir()
    (movies / f"{removed.id}.json").write_bytes(removed.to_json())
    publish_movie(files, movies, removed.id, lock)
    assert not (store.root / record_key(removed.id)).exists()
