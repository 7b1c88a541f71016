"""Festivals and halls: the gallery per festival and per hall, refreshes that read only the
indexes that changed, and a store written before halls read as it is."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from flask.testing import FlaskClient

from moviepkg.ids import movie_code
from moviepkg.record import INDEX_KEY, MovieRecord, poster_key, record_key, video_key
from processor.index import rebuild_index, remove_from_store, update_index
from processor.store import JSON_TYPE, FileStore
from tests.listing import write_v1_store
from tests.services import RedisServer, wait_until
from website.app import create_app
from website.index import parse_meta
from website.redisindex import META, Keys
from website.storage import FolderStorage

T0 = datetime(2025, 7, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 7, 20, tzinfo=UTC)


def movie(n: int, festival: str, hall: str, days: int = 0) -> MovieRecord:
    created = T0 + timedelta(days=days, minutes=n)
    package_id = f"st-{n % 3 + 1}-{created:%Y%m%dt%H%M%S}z-{n:04x}"
    return MovieRecord(id=package_id, code=movie_code(package_id), title=f"Movie {n}",
                       station_id=f"st-{n % 3 + 1}", created_at=created, duration_s=5.0, fps=10,
                       frames=10, video=video_key(package_id), poster=poster_key(package_id),
                       public=True, festival=festival, hall=hall)


def publish(store: FileStore, record: MovieRecord, lock: Path) -> None:
    """What a processing unit does: the record, then its hall's index of that day."""
    store.put_bytes(record_key(record.id), record.to_json(), JSON_TYPE)
    update_index(store, record, NOW, lock)


class CountingStorage(FolderStorage):
    """A real folder store that notes which keys are read."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.read: list[str] = []

    def get_bytes(self, key: str) -> bytes | None:
        self.read.append(key)
        return super().get_bytes(key)


def site(root: Path, server: RedisServer, storage: FolderStorage | None = None,
         **config: object) -> FlaskClient:
    settings = {"TESTING": True, "STORAGE_URL": root.as_uri(), "REDIS_URL": server.url,
                "CACHE_SECONDS": 0.5, "CACHE_RECHECK_SECONDS": 0, **config}
    if storage is not None:
        settings["STORAGE"] = storage
    return create_app(settings).test_client()


def ids(client: FlaskClient, query: str = "") -> list[str]:
    return [m["id"] for m in client.get(f"/api/movies{query}").get_json()["movies"]]


def test_the_gallery_per_festival_and_per_hall(tmp_path: Path,
                                               redis_server: RedisServer) -> None:
    store, lock = FileStore(tmp_path / "store"), tmp_path / "index.lock"
    movies = [movie(0, "2025", "main"), movie(1, "2025", "small-hall"),
              movie(2, "jff-2026", "main", days=365), movie(3, "jff-2026", "small-hall", days=366)]
    for record in movies:
        publish(store, record, lock)
    client = site(store.root, redis_server, HALL_NAMES={"small-hall": "The small hall"})
    assert ids(client) == [m.id for m in reversed(movies)]
    assert ids(client, "?festival=2025") == [movies[1].id, movies[0].id]
    assert ids(client, "?hall=small-hall") == [movies[3].id, movies[1].id]
    assert ids(client, "?festival=jff-2026&hall=main") == [movies[2].id]
    assert ids(client, "?hall=NOT%20A%20HALL") == ids(client)  # nonsense: every movie
    page = client.get("/?hall=small-hall").get_data(as_text=True)
    assert "The small hall" in page and 'aria-current="page">The small hall' in page
    assert "Movie 3" in page and "Movie 2" not in page
    assert 'href="/?festival=jff-2026&amp;hall=small-hall"' in page  # keeps the hall chosen
    assert client.get("/api/movies?festival=2025").get_json()["total"] == 2


def test_a_refresh_reads_only_the_indexes_that_changed(tmp_path: Path,
                                                       redis_server: RedisServer) -> None:
    store, lock = FileStore(tmp_path / "store"), tmp_path / "index.lock"
    for n in range(20):  # 20 days of one hall
        publish(store, movie(n, "2025", "main", days=n), lock)
    counting = CountingStorage(store.root)
    client = site(store.root, redis_server, counting)
    assert len(ids(client, "?page=1")) == 20
    counting.read.clear()
    new = movie(99, "2025", "main", days=5)
    publish(store, new, lock)
    wait_until(lambda: new.id in ids(client), timeout=5, interval=0.1, message="listed")
    assert set(counting.read) == {new.index_key}  # one small index, not the archive
    counting.read.clear()
    remove_from_store(store, new.id, NOW, lock)  # a take-down
    wait_until(lambda: new.id not in ids(client), timeout=5, interval=0.1, message="gone")
    assert set(counting.read) == {new.index_key}
    assert client.get(f"/m/{new.code}").status_code == 200  # "being made": the code is free
    assert client.get(f"/api/code/{new.code}").get_json()["status"] == "waiting"


def test_a_store_written_before_halls_is_read_and_folded_in(tmp_path: Path,
                                                             redis_server: RedisServer) -> None:
    """movies/index.json and v1 records, as stopmo wrote them before halls: listed as they
    are, next to a hall's new movies, and still after `processor reindex` folds them in."""
    store, lock = FileStore(tmp_path / "store"), tmp_path / "index.lock"
    old = [movie(n, "x", "main") for n in range(3)]
    write_v1_store(store, old)  # as stopmo wrote them before halls
    client = site(store.root, redis_server)
    listed = client.get("/api/movies").get_json()["movies"]
    assert [m["id"] for m in listed] == [m.id for m in reversed(old)]
    assert ids(client, "?festival=2025&hall=main") == [m.id for m in reversed(old)]
    new = replace(movie(7, "jff-2026", "main", days=400))
    publish(store, new, lock)
    wait_until(lambda: ids(client)[:1] == [new.id], timeout=5, interval=0.1, message="new")
    rebuild_index(store, NOW, lock_path=lock)  # the hall main folds the v1 index in
    assert not (store.root / INDEX_KEY).exists()
    r = redis.Redis.from_url(redis_server.url)

    def refreshed() -> bool:
        ids(client)
        keys = Keys(parse_meta(r.get(META) or b"").generation)
        return INDEX_KEY.encode() not in r.hgetall(keys.idx)

    wait_until(refreshed, timeout=5, interval=0.2, message="the v1 index forgotten")
    assert ids(client) == [new.id, *(m.id for m in reversed(old))]  # each once, none lost


def test_a_hall_or_festival_whose_last_movie_went_leaves_the_filters(
        tmp_path: Path, redis_server: RedisServer) -> None:
    store, lock = FileStore(tmp_path / "store"), tmp_path / "index.lock"
    kept = [movie(0, "2025", "main"), movie(1, "2025", "small-hall")]
    last = movie(2, "jff-2026", "big-hall", days=365)  # alone in its festival and its hall
    for record in [*kept, last]:
        publish(store, record, lock)
    client = site(store.root, redis_server)

    def filters() -> str:
        return client.get("/").get_data(as_text=True)

    assert "festival=jff-2026" in filters() and "hall=big-hall" in filters()
    remove_from_store(store, last.id, NOW, lock)  # a take-down
    wait_until(lambda: last.id not in ids(client), timeout=5, interval=0.1, message="gone")
    page = filters()
    assert "festival=jff-2026" not in page and "hall=big-hall" not in page
    assert "hall=small-hall" in page  # the others stay
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    keys = Keys(parse_meta((r.get(META) or "").encode()).generation)
    assert r.smembers(keys.halls) == {"main", "small-hall"}
    assert r.smembers(keys.festivals) == {"2025"}
