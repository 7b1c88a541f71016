"""The store (a folder or a real S3 endpoint behind one API) and the index of public movies."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moviepkg.ids import movie_code, new_package_id
from moviepkg.record import (
    DEFAULT_HALL,
    INDEX_KEY,
    MovieIndex,
    MovieRecord,
    index_key,
    parse_index,
    poster_key,
    record_key,
    video_key,
)
from processor.index import (
    listed_records,
    owner_changes,
    rebuild_index,
    remove_from_index,
    remove_from_store,
    sweep_owner_removals,
    update_index,
)
from processor.s3store import S3Store
from processor.storage import open_store
from processor.store import (
    CACHE_IMMUTABLE,
    CACHE_REVALIDATE,
    JSON_TYPE,
    PARTIAL_DIR,
    S3_MIN_PART,
    FileStore,
    Store,
    StoreError,
)
from tests.listing import write_v1_store
from tests.services import S3Server, wait_until

ROOT = Path(__file__).resolve().parents[2]
BASE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 5, 2, 9, 30, tzinfo=UTC)
BAD_KEYS = ["", "/etc/passwd", "../x", "movies/../../x", "movies//x", "movies/", "./x",
            "movies/.hidden", f"{PARTIAL_DIR}/x", "movies\\x", "movies/a\nb"]


# -- fixtures and helpers ----------------------------------------------------------


@pytest.fixture(scope="module")
def shared_s3() -> Iterator[S3Server]:
    """One moto endpoint for the module (stopping one costs 0.5 s); each test gets a bucket."""
    with S3Server() as server:
        yield server


def new_bucket(server: S3Server) -> tuple[str, Any]:
    client = server.client(max_pool_connections=32)
    bucket = f"stopmo-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return bucket, client


def make_s3_store(request: pytest.FixtureRequest) -> S3Store:
    bucket, client = new_bucket(request.getfixturevalue("shared_s3"))
    prefix = "fest/2026" if request.param == "s3-prefix" else ""
    return S3Store(bucket, prefix, client=client, multipart_threshold=S3_MIN_PART)


@pytest.fixture(params=["file", "s3", "s3-prefix"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A FileStore in tmp_path, or an S3Store on its own bucket (with or without prefix)."""
    if request.param == "file":
        root = tmp_path / "store"
        root.mkdir()
        return FileStore(root)
    return make_s3_store(request)


@pytest.fixture(params=["s3", "s3-prefix"])
def s3_store(request: pytest.FixtureRequest) -> S3Store:
    """An S3Store on its own bucket, with or without prefix."""
    return make_s3_store(request)


def raw_s3_keys(store: S3Store) -> list[str]:
    """Every object in the store's bucket, prefix included."""
    listing = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def open_uploads(store: S3Store) -> list[str]:
    # Sorted here: moto lists uploads in creation order, real S3 by key.
    return sorted(u["Key"] for u in store.client.list_multipart_uploads(Bucket=store.bucket)
                  .get("Uploads", []))


def make_record(n: int, *, public: bool = True, title: str | None = "A flying cat",
                station: str = "st-1") -> MovieRecord:
    created = BASE + timedelta(minutes=n)
    movie_id = new_package_id(station, created, nonce=f"{n:04x}")
    return MovieRecord(id=movie_id, code=movie_code(movie_id), title=title, station_id=station,
                       created_at=created, duration_s=5.0, fps=10, frames=10,
                       video=video_key(movie_id), poster=poster_key(movie_id), public=public)


def publish(store: Store, record: MovieRecord, lock: Path) -> None:
    """Write the record, then the index, as the processor does."""
    store.put_bytes(record_key(record.id), record.to_json(), JSON_TYPE)
    update_index(store, record, NOW, lock)


def indexed(store: Store) -> list[str]:
    return [movie.id for movie in listed_records(store)]


def day_index(store: Store) -> MovieIndex:
    """The index of the hall main of BASE's day (where every make_record is listed)."""
    data = store.get_bytes(index_key(DEFAULT_HALL, BASE.date()))
    assert data is not None
    return parse_index(data)


# -- the store -----------------------------------------------------------------------


def test_put_get_exists_list_delete(store: Store) -> None:
    assert store.get_bytes("movies/a.json") is None
    assert not store.exists("movies/a.json")
    store.put_bytes("movies/a.json", b'{"a": 1}', JSON_TYPE)
    store.put_bytes("movies/ab.jpg", b"\xff\xd8poster", "image/jpeg")
    store.put_bytes("other/b.txt", b"b", "text/plain")
    store.put_bytes("top.txt", b"t", "text/plain")
    assert store.get_bytes("movies/a.json") == b'{"a": 1}'
    assert store.exists("movies/a.json")
    assert not store.exists("movies")  # a folder (or common prefix) is not an object
    assert store.list_keys("movies/") == ["movies/a.json", "movies/ab.jpg"]
    assert store.list_keys("movies/a") == ["movies/a.json", "movies/ab.jpg"]
    assert store.list_keys("movies/ab") == ["movies/ab.jpg"]
    assert store.list_keys("") == ["movies/a.json", "movies/ab.jpg", "other/b.txt", "top.txt"]
    assert store.list_keys("nothing/") == []

    store.put_bytes("movies/a.json", b"replaced", JSON_TYPE)
    assert store.get_bytes("movies/a.json") == b"replaced"
    store.delete("movies/a.json")
    store.delete("movies/a.json")  # missing is fine
    assert store.get_bytes("movies/a.json") is None
    assert store.list_keys("movies/") == ["movies/ab.jpg"]


def test_put_file_of_several_megabytes(store: Store, tmp_path: Path) -> None:
    video = tmp_path / "movie.mp4"
    data = os.urandom(2 * S3_MIN_PART + 1000)  # three parts on S3
    video.write_bytes(data)
    store.put_file("movies/x.mp4", video, "video/mp4")
    assert store.get_bytes("movies/x.mp4") == data
    if isinstance(store, S3Store):
        head = store.client.head_object(Bucket=store.bucket, Key=raw_s3_keys(store)[0])
        assert head["ETag"].strip('"').endswith("-3"), "expected a multipart upload"
        assert head["ContentLength"] == len(data)


def test_s3_sets_content_type_and_cache_control(s3_store: S3Store, tmp_path: Path) -> None:
    s3 = s3_store
    (tmp_path / "p.jpg").write_bytes(b"\xff\xd8poster")
    s3.put_file("movies/x.jpg", tmp_path / "p.jpg", "image/jpeg")
    s3.put_bytes("movies/x.mp4", b"video", "video/mp4")
    s3.put_bytes("movies/index/main/2026-05-01.json", b"{}", JSON_TYPE)
    expected = {"movies/x.jpg": ("image/jpeg", CACHE_IMMUTABLE),
                "movies/x.mp4": ("video/mp4", CACHE_IMMUTABLE),
                "movies/index/main/2026-05-01.json": (JSON_TYPE, CACHE_REVALIDATE)}
    for key, (content_type, cache) in expected.items():
        full = f"{s3.prefix}/{key}" if s3.prefix else key
        head = s3.client.head_object(Bucket=s3.bucket, Key=full)
        assert (head["ContentType"], head["CacheControl"]) == (content_type, cache)
    assert raw_s3_keys(s3) == sorted(f"{s3.prefix}/{k}" if s3.prefix else k for k in expected)


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused(store: Store, key: str, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    for action in (lambda: store.put_bytes(key, b"x", "text/plain"),
                   lambda: store.put_file(key, tmp_path / "f", "text/plain"),
                   lambda: store.get_bytes(key), lambda: store.exists(key),
                   lambda: store.delete(key)):
        with pytest.raises(StoreError, match="key"):
            action()
    assert store.list_keys("") == []
    with pytest.raises(StoreError, match="prefix"):
        store.list_keys("../")


def test_no_temporary_objects_after_puts(store: Store, tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(b"v" * 1000)
    store.put_file("movies/v.mp4", tmp_path / "v.mp4", "video/mp4")
    store.put_bytes("movies/v.json", b"{}", JSON_TYPE)
    store.put_bytes("movies/v.json", b"{ }", JSON_TYPE)
    with pytest.raises(StoreError, match=r"movies/w\.mp4"):
        store.put_file("movies/w.mp4", tmp_path / "missing.mp4", "video/mp4")
    store.check()
    assert store.list_keys("") == ["movies/v.json", "movies/v.mp4"]
    assert store.clean_up() == 0
    if isinstance(store, FileStore):
        files = sorted(p.relative_to(store.root).as_posix()
                       for p in store.root.rglob("*") if p.is_file())
        assert files == ["movies/v.json", "movies/v.mp4"]
    else:
        assert isinstance(store, S3Store)
        assert open_uploads(store) == []
        assert len(raw_s3_keys(store)) == 2


INTERRUPTED_PUT = """
import sys
from pathlib import Path
from processor.store import FileStore
FileStore(Path(sys.argv[1])).put_file("movies/x.mp4", Path(sys.argv[2]), "video/mp4")
"""


def test_clean_up_removes_a_put_interrupted_by_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    fifo = tmp_path / "encoder-output"
    os.mkfifo(fifo)
    # The put copies from a pipe that never ends: kill -9 it halfway.
    child = subprocess.Popen([sys.executable, "-c", INTERRUPTED_PUT, str(root), str(fifo)],
                             cwd=ROOT)
    try:
        with open(fifo, "wb") as pipe:
            pipe.write(b"half a movie" * 1000)
            pipe.flush()
            wait_until(lambda: any((root / PARTIAL_DIR).glob("*")), timeout=10,
                       message="the temporary file")
            child.kill()
            child.wait(10)
    finally:
        child.kill()
    store = FileStore(root)
    assert len(list((root / PARTIAL_DIR).iterdir())) == 1
    assert store.list_keys("") == []
    assert not store.exists("movies/x.mp4")
    assert store.clean_up() == 1
    assert list((root / PARTIAL_DIR).iterdir()) == []
    assert store.clean_up() == 0


def test_clean_up_aborts_incomplete_multipart_uploads(s3_store: S3Store) -> None:
    s3 = s3_store
    ours = f"{s3.prefix}/movies/x.mp4" if s3.prefix else "movies/x.mp4"
    upload = s3.client.create_multipart_upload(Bucket=s3.bucket, Key=ours)
    s3.client.upload_part(Bucket=s3.bucket, Key=ours, UploadId=upload["UploadId"],
                          PartNumber=1, Body=b"x" * 1024)
    if s3.prefix:  # someone else's upload in the same bucket stays
        s3.client.create_multipart_upload(Bucket=s3.bucket, Key="elsewhere/y.mp4")
    assert open_uploads(s3) == sorted([ours] + (["elsewhere/y.mp4"] if s3.prefix else []))
    assert s3.clean_up() == 1
    assert open_uploads(s3) == (["elsewhere/y.mp4"] if s3.prefix else [])
    assert s3.clean_up() == 0
    assert not s3.exists("movies/x.mp4")


def test_file_store_creates_its_root_but_not_missing_parents(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "not-mounted" / "store")
    with pytest.raises(StoreError, match="not-mounted/store: its parent folder does not exist"):
        store.check()
    with pytest.raises(StoreError, match=r"movies/a\.json: cannot write: .*not-mounted/store"):
        store.put_bytes("movies/a.json", b"{}", JSON_TYPE)
    assert not (tmp_path / "not-mounted").exists()
    assert store.list_keys("") == []
    assert store.clean_up() == 0

    fresh = FileStore(tmp_path / "store")  # e.g. the default folder in the work dir
    fresh.put_bytes("movies/a.json", b"{}", JSON_TYPE)
    assert fresh.get_bytes("movies/a.json") == b"{}"


def test_s3_check_names_a_missing_bucket(shared_s3: S3Server) -> None:
    store = S3Store("no-such-bucket", "fest", client=shared_s3.client())
    with pytest.raises(StoreError, match=r"^s3://no-such-bucket/fest: check .*404"):
        store.check()
    with pytest.raises(StoreError, match=r"^s3://no-such-bucket/fest/movies/a.json: upload "
                                         r"failed: NoSuchBucket"):
        store.put_bytes("movies/a.json", b"{}", JSON_TYPE)


def test_s3_endpoint_down_fails_fast_with_a_clear_message(
        s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    s3_server.client().create_bucket(Bucket="stopmo")
    store = open_store("s3://stopmo/fest")  # the client comes from the AWS_* variables
    store.put_bytes("movies/a.json", b"{}", JSON_TYPE)
    store.check()
    s3_server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"^s3://stopmo/fest: check .*failed: "
                                             r"EndpointConnectionError"):
            store.check()
        with pytest.raises(StoreError, match=r"^s3://stopmo/fest/movies/a.json: download "
                                             r"failed: EndpointConnectionError: Could not "
                                             r"connect to the endpoint URL"):
            store.get_bytes("movies/a.json")
        with pytest.raises(StoreError, match=r"movies/b\.json: upload failed"):
            store.put_bytes("movies/b.json", b"{}", JSON_TYPE)
        assert time.monotonic() - started < 6
    finally:
        s3_server.start()
    assert store.get_bytes("movies/a.json") == b"{}"  # back when the endpoint is


# -- open_store ----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "kind", "where"), [
    ("file:///var/lib/stopmo/store", FileStore, "/var/lib/stopmo/store"),
    ("file://localhost/srv/movies", FileStore, "/srv/movies"),
    ("file:///srv/with%20space", FileStore, "/srv/with space"),
    ("s3://festival-movies", S3Store, "festival-movies:"),
    ("s3://festival-movies/fest/2026", S3Store, "festival-movies:fest/2026"),
    ("s3://festival-movies/fest/2026/", S3Store, "festival-movies:fest/2026"),
])
def test_open_store_parses_urls(url: str, kind: type[Store], where: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    store = open_store(url)
    assert type(store) is kind
    if isinstance(store, FileStore):
        assert store.root == Path(where)
    else:
        assert isinstance(store, S3Store)
        assert f"{store.bucket}:{store.prefix}" == where
        assert store.client.meta.region_name == "eu-west-1"
        assert store.url == url.rstrip("/")


@pytest.mark.parametrize("url", [
    "", "/var/lib/stopmo", "file://relative/path", "file:relative", "http://example.org/x",
    "s3://", "s3:///prefix", "s3://Upper-Case", "s3://bucket/../up", "s3://bucket//x",
    "s3://key:secret@bucket/x", "s3://bucket/x?versioning=1", "ftp://host/x",
])
def test_open_store_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"^STORAGE_URL: expected file:///absolute/path or "
                                         r"s3://bucket/prefix, found "):
        open_store(url)


def test_open_store_empty_url_means_the_default_root(tmp_path: Path) -> None:
    store = open_store("", default_root=tmp_path)
    assert isinstance(store, FileStore)
    assert store.root == tmp_path
    assert store.url == tmp_path.as_uri()


# -- the index -----------------------------------------------------------------------


def test_update_index_adds_replaces_and_drops_private(store: Store, tmp_path: Path) -> None:
    lock = tmp_path / "index.lock"
    first, second = make_record(1), make_record(2, title=None)
    publish(store, first, lock)
    publish(store, second, lock)
    assert indexed(store) == [second.id, first.id]  # newest first

    renamed = replace(first, title="The cat who flew")
    publish(store, renamed, lock)
    index = day_index(store)
    assert [m.title for m in index.movies] == [None, "The cat who flew"]
    assert index.generated_at == NOW

    publish(store, replace(second, public=False), lock)
    assert indexed(store) == [first.id]


def test_update_index_is_idempotent(store: Store, tmp_path: Path) -> None:
    lock = tmp_path / "index.lock"
    record = make_record(1)
    publish(store, record, lock)
    key = index_key(DEFAULT_HALL, BASE.date())
    before = store.get_bytes(key)
    returned = update_index(store, record, NOW, lock)
    assert store.get_bytes(key) == before == returned.to_json()


def test_each_hall_and_day_has_its_own_index(store: Store, tmp_path: Path) -> None:
    """A hall writes only its own indexes, one a day: small, and never another unit's."""
    lock = tmp_path / "index.lock"
    today, tomorrow = make_record(1), replace(make_record(2), created_at=BASE + timedelta(days=1))
    other_hall = replace(make_record(3), hall="hall-2", festival="jff-2026")
    for record in (today, tomorrow, other_hall):
        publish(store, record, lock)
    assert sorted(k for k in store.list_keys("movies/index/")) == [
        index_key("hall-2", BASE.date()), index_key(DEFAULT_HALL, BASE.date()),
        index_key(DEFAULT_HALL, BASE.date() + timedelta(days=1))]
    assert indexed(store) == [tomorrow.id, other_hall.id, today.id]
    assert [m.id for m in day_index(store).movies] == [today.id]
    assert not remove_from_index(store, other_hall.id, NOW, lock)  # not the hall main's
    assert remove_from_index(store, other_hall.id, NOW, lock, hall="hall-2")  # no record: found
    assert indexed(store) == [tomorrow.id, today.id]
    assert not store.exists(index_key("hall-2", BASE.date()))  # an empty index goes


def test_update_index_rebuilds_a_corrupt_index_skipping_bad_records(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good, moved = make_record(1), make_record(2)
    store.put_bytes(record_key(good.id), good.to_json(), JSON_TYPE)
    store.put_bytes("movies/broken.json", b'{"id": "broken"', JSON_TYPE)
    store.put_bytes("movies/renamed.json", moved.to_json(), JSON_TYPE)  # wrong key for its id
    key = index_key(DEFAULT_HALL, BASE.date())
    store.put_bytes(key, b"<html>502 Bad Gateway</html>", JSON_TYPE)
    new = make_record(3)
    with caplog.at_level(logging.WARNING, logger="processor.store"):
        publish(store, new, tmp_path / "index.lock")
    assert indexed(store) == [new.id, good.id]
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert f"{key} is unreadable" in messages
    assert "skipping the unreadable record movies/broken.json" in messages
    assert f"skipping the record movies/renamed.json: it describes {moved.id}" in messages


def test_rebuild_index_repairs_a_stale_index(store: Store, tmp_path: Path) -> None:
    lock = tmp_path / "index.lock"
    records = [make_record(n) for n in range(3)]
    for record in records:
        publish(store, record, lock)
    hidden = replace(records[1], public=False)
    store.put_bytes(record_key(hidden.id), hidden.to_json(), JSON_TYPE)  # index not told
    store.delete(index_key(DEFAULT_HALL, BASE.date()))
    stale = replace(make_record(7), created_at=BASE + timedelta(days=3))
    store.put_bytes(stale.index_key, MovieIndex.build([stale], NOW).to_json(), JSON_TYPE)
    [index] = rebuild_index(store, NOW, lock_path=lock)  # its record is gone: so is its day
    assert [m.id for m in index.movies] == [records[2].id, records[0].id]
    assert indexed(store) == [records[2].id, records[0].id]
    assert not store.exists(stale.index_key)


def test_a_v1_store_is_read_then_folded_into_the_hall_main(store: Store,
                                                            tmp_path: Path) -> None:
    """A store written before halls: its movies/index.json is listed, a take-down leaves it,
    and `processor reindex` in the hall main moves its movies into that hall's indexes."""
    lock = tmp_path / "index.lock"
    old = [make_record(n) for n in range(3)]
    write_v1_store(store, old)  # as stopmo wrote them before halls
    new = replace(make_record(5), created_at=BASE + timedelta(days=1))
    publish(store, new, lock)
    assert indexed(store) == [new.id, old[2].id, old[1].id, old[0].id]
    remove_from_store(store, old[1].id, NOW, lock)
    assert indexed(store) == [new.id, old[2].id, old[0].id]
    other = rebuild_index(store, NOW, hall="hall-2", lock_path=lock)
    assert other == [] and store.exists(INDEX_KEY)  # another hall leaves it alone
    rebuild_index(store, NOW, lock_path=lock)
    assert not store.exists(INDEX_KEY)
    assert indexed(store) == [new.id, old[2].id, old[0].id]
    assert {m.hall for m in listed_records(store)} == {DEFAULT_HALL}


def test_concurrent_publishers_in_threads_lose_nothing(store: Store, tmp_path: Path) -> None:
    lock = tmp_path / "index.lock"
    # With an index already there, nothing is rebuilt from the records: a lost update shows.
    seed = make_record(99)
    publish(store, seed, lock)
    records = [make_record(n, station=f"st-{n % 4}") for n in range(20)]
    start = threading.Barrier(len(records))
    errors: list[BaseException] = []

    def worker(record: MovieRecord) -> None:
        try:
            start.wait()
            publish(store, record, lock)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(r,)) for r in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(indexed(store)) == sorted(r.id for r in [seed, *records])


PUBLISHER = """
import sys, time
from datetime import datetime
from pathlib import Path
from moviepkg.record import parse_record, record_key
from processor.index import update_index
from processor.store import FileStore
root, lock, go, now, *records = sys.argv[1:]
store = FileStore(Path(root))
while not Path(go).exists():
    time.sleep(0.005)
for path in records:
    record = parse_record(Path(path).read_bytes())
    store.put_bytes(record_key(record.id), record.to_json(), "application/json")
    update_index(store, record, datetime.fromisoformat(now), Path(lock))
"""


def test_concurrent_publisher_processes_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    seed = make_record(99)
    publish(FileStore(root), seed, tmp_path / "lock")
    records = [make_record(n, station=f"st-{n % 4}") for n in range(20)]
    for record in records:
        (tmp_path / f"{record.id}.json").write_bytes(record.to_json())
    go = tmp_path / "go"
    children = [
        subprocess.Popen([sys.executable, "-c", PUBLISHER, str(root), str(tmp_path / "lock"),
                          str(go), NOW.isoformat(),
                          *(str(tmp_path / f"{r.id}.json") for r in records[i::4])], cwd=ROOT)
        for i in range(4)
    ]
    time.sleep(0.5)  # let them import and wait at the start line
    go.touch()
    assert [child.wait(30) for child in children] == [0, 0, 0, 0]
    store = FileStore(root)
    assert sorted(indexed(store)) == sorted(r.id for r in [seed, *records])
    doc = json.loads((root / index_key(DEFAULT_HALL, BASE.date())).read_text())
    assert len(doc["movies"]) == 21
    assert store.clean_up() == 0


def test_a_unit_never_writes_another_halls_index(store: Store, tmp_path: Path) -> None:
    """A take-down of another hall's movie writes a removal for that hall's unit, which
    takes the entry out of its own index at its next sweep; the sweeping unit touches
    only its own hall."""
    main_lock, small_lock = tmp_path / "main.lock", tmp_path / "small.lock"
    theirs = make_record(1)  # the hall main's
    ours = replace(make_record(2), hall="small-hall")
    publish(store, theirs, main_lock)
    publish(store, ours, small_lock)
    their_index = store.get_bytes(theirs.index_key)
    remove_from_store(store, theirs.id, NOW, small_lock, hall="small-hall")
    assert store.get_bytes(theirs.index_key) == their_index  # not written by small-hall
    assert not store.exists(record_key(theirs.id)) and not store.exists(video_key(theirs.id))
    assert owner_changes(store)[theirs.id].removed  # the site hides it at once
    assert sweep_owner_removals(store, NOW, small_lock, set(), "small-hall") == []
    assert store.get_bytes(theirs.index_key) == their_index
    assert sweep_owner_removals(store, NOW, main_lock, set(), DEFAULT_HALL) == [theirs.id]
    assert indexed(store) == [ours.id]
