"""Two halls, one bucket: two processor daemons (their own work folders and unit ids)
publish 100 movies each at the same time into one store; the site lists all 200 once.
The same with a folder store. And a store written before halls is read as it is."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moviepkg.record import INDEX_PREFIX, parse_index
from processor.s3store import S3Store
from processor.store import FileStore, Store
from tests.demo import make_demo
from tests.processor.conftest import daemon, daemon_env
from tests.services import RedisServer, S3Server, tail, wait_until
from website.app import create_app
from website.storage import S3Storage, Storage

pytestmark = pytest.mark.slow  # 200 real encodes
MOVIES = 100
HALLS = ("main-hall", "small-hall")
T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def packages(inbox_staging: Path, hall_number: int) -> list[str]:
    """MOVIES one-frame packages from this hall's stations, over two days."""
    made = []
    for n in range(MOVIES):
        when = T0 + timedelta(minutes=17 * n + hall_number)  # spread over two days
        made.append(make_demo(inbox_staging, frames=1, width=64, height=48,
                              station_id=f"st-{hall_number}{n % 3}", title=None,
                              now=when).name)
    return made


def each_published(store: Store) -> Counter[str]:
    """How many times each movie is listed across every index of the store."""
    counts: Counter[str] = Counter()
    for key in store.list_keys(INDEX_PREFIX):
        counts.update(m.id for m in parse_index(store.get_bytes(key) or b"").movies)
    return counts


def site_ids(storage_url: str, redis_url: str, storage: Storage | None) -> list[str]:
    """Every movie the website lists, page by page (through its Redis cache)."""
    config: dict[str, object] = {"TESTING": True, "STORAGE_URL": storage_url,
                                 "REDIS_URL": redis_url, "PAGE_SIZE": 48}
    if storage is not None:
        config["STORAGE"] = storage
    site = create_app(config).test_client()
    ids, page = [], 1
    while True:
        doc = site.get(f"/api/movies?page={page}").get_json()
        ids += [m["id"] for m in doc["movies"]]
        if page >= doc["pages"]:
            return ids
        page += 1


def two_halls_publish(tmp_path: Path, storage_url: str, extra: dict[str, str],
                      store: Store, redis_url: str, storage: Storage | None = None) -> None:
    made: dict[str, list[str]] = {}
    envs = []
    for number, hall in enumerate(HALLS, start=1):
        root = tmp_path / hall
        staging = root / "staging"
        made[hall] = packages(staging, number)
        envs.append((root, daemon_env(root, storage_url, {
            "STOPMO_UNIT": hall, "STOPMO_FESTIVAL_EDITION": "jff-2026",
            "STOPMO_OUTPUT_SIZE": "320x180", "STOPMO_WORKERS": "1", **extra})))
        (root / "inbox").mkdir(parents=True)
    with ExitStack() as stack:
        for root, env in envs:
            stack.enter_context(daemon(env, root / "daemon.log"))
        for (root, _), hall in zip(envs, HALLS, strict=True):  # both at once: renames
            for name in made[hall]:
                (root / "staging" / name).rename(root / "inbox" / name)
        for root, _ in envs:
            wait_until(lambda root=root: sum(  # type: ignore[misc]
                json.loads(p.read_text())["step"] == "done"
                for p in (root / "work" / "state").glob("*.json")) == MOVIES,
                timeout=600, interval=1, message=f"{root.name} done\n{tail(root / 'daemon.log')}")
    counts = each_published(store)
    everyone = [name for hall in HALLS for name in made[hall]]
    assert sorted(counts) == sorted(everyone)  # none lost
    assert set(counts.values()) == {1}  # none listed twice
    halls = {key.removeprefix(INDEX_PREFIX).split("/")[0] for key in store.list_keys(INDEX_PREFIX)}
    assert halls == set(HALLS)  # each hall wrote its own indexes
    listed = site_ids(storage_url, redis_url, storage)
    assert sorted(listed) == sorted(everyone) and len(listed) == len(set(listed)) == 2 * MOVIES


def test_two_halls_into_one_folder_store(tmp_path: Path, redis_server: RedisServer) -> None:
    root = tmp_path / "store"
    root.mkdir()
    two_halls_publish(tmp_path, root.as_uri(), {}, FileStore(root), redis_server.url)


def test_two_halls_into_one_bucket(tmp_path: Path, s3_server: S3Server,
                                   redis_server: RedisServer) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="festival")
    two_halls_publish(tmp_path, "s3://festival/fest", s3_server.env(),
                      S3Store("festival", "fest", client=client), redis_server.url,
                      S3Storage("festival", "fest", client=s3_server.client()))
