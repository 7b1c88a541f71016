"""The owner key (only its hash is ever written) and the owner objects the site writes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moviepkg.errors import RecordError, WriterError
from moviepkg.manifest import parse_manifest
from moviepkg.owner import (
    OwnerChange,
    OwnerObjects,
    apply_owner_changes,
    key_hash,
    key_matches,
    new_owner_key,
    owner_key_of,
    owner_url,
    parse_owner_change,
)
from moviepkg.reader import read_package
from moviepkg.record import MovieRecord, parse_record, record_from_dict
from moviepkg.writer import PackageWriter
from tests.demo import demo_frame

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def finished(tmp_path: Path, owner: str | None) -> Path:
    writer = PackageWriter.start(tmp_path, "st-2", now=T0)
    writer.add_frame(demo_frame(0, 3, 64, 48))
    writer.finish(None, publish=True, now=T0, owner_key_sha256=owner)
    return writer.path


def test_keys_are_random_and_only_their_hash_is_written(tmp_path: Path) -> None:
    keys = {new_owner_key() for _ in range(200)}
    assert len(keys) == 200 and all(len(k) == 22 for k in keys)
    key = keys.pop()
    path = finished(tmp_path, key_hash(key))
    manifest_bytes = (path / "MANIFEST").read_bytes()
    assert key.encode() not in manifest_bytes
    doc = json.loads(manifest_bytes)
    assert doc["version"] == 2 and doc["owner_key_sha256"] == key_hash(key)
    package = read_package(path)
    assert package.manifest.owner_key_sha256 == key_hash(key)
    record = MovieRecord.for_package(package, size=(1280, 720))
    assert record.owner_key_sha256 == key_hash(key)
    assert key.encode() not in record.to_json()
    assert parse_record(record.to_json()) == record


def test_the_writer_refuses_a_key_instead_of_its_hash(tmp_path: Path) -> None:
    with pytest.raises(WriterError, match="owner_key_sha256"):
        finished(tmp_path, new_owner_key())


def test_a_v1_manifest_and_a_v1_record_are_still_read(tmp_path: Path) -> None:
    path = finished(tmp_path, None)
    doc = json.loads((path / "MANIFEST").read_bytes())
    doc["version"] = 1  # what stations wrote before the owner key
    (path / "MANIFEST").write_text(json.dumps(doc))
    package = read_package(path)
    assert package.manifest.owner_key_sha256 is None
    v2 = MovieRecord.for_package(package).to_dict()
    v1 = {k: v for k, v in v2.items()
          if k not in ("owner_key_sha256", "width", "height", "festival", "hall")}
    v1["version"] = 1
    record = record_from_dict(v1)
    assert (record.owner_key_sha256, record.width, record.height) == (None, None, None)
    assert parse_manifest(json.dumps(doc).encode()).package_id == package.package_id
    with pytest.raises(RecordError, match="v1 keys"):
        record_from_dict({**v1, "owner_key_sha256": None})


def test_key_matches_only_its_own_hash() -> None:
    key, other = new_owner_key(), new_owner_key()
    assert key_matches(key, key_hash(key))
    assert not key_matches(other, key_hash(key))
    assert not key_matches(key, None)
    assert not key_matches(key_hash(key), key_hash(key))  # the hash is not a key
    assert not key_matches(key + "x", key_hash(key + "x"))  # wrong shape
    assert not key_matches(None, key_hash(key))
    assert owner_url("https://site/m/ABC123", key) == f"https://site/m/ABC123#k={key}"


def test_owner_objects_round_trip_and_bad_ones_are_named() -> None:
    change = OwnerChange("st-1-20260501t120000z-00af", "החתול של דנה", False, T0)
    key = owner_key_of(change.id)
    assert key == "owner/st-1-20260501t120000z-00af.json"
    assert parse_owner_change(change.to_json(), key) == change
    with pytest.raises(RecordError, match="id"):
        parse_owner_change(change.to_json(), "owner/st-9-20260501t120000z-00af.json")
    bad = json.loads(change.to_json())
    bad["title"] = "x" * 81
    with pytest.raises(RecordError, match="title"):
        parse_owner_change(json.dumps(bad).encode(), key)
    warned: list[str] = []
    store = {key: change.to_json(), "owner/broken.json": b"{"}
    reads: list[str] = []

    def get(k: str) -> bytes | None:
        reads.append(k)
        return store.get(k)

    objects = OwnerObjects()
    stamps = {key: "1", "owner/broken.json": "1", "owner/notes.txt": "1"}
    found = objects.read(stamps, get, lambda k, exc: warned.append(k))
    assert found == {change.id: change} and warned == ["owner/broken.json"]
    assert objects.read(stamps, get, lambda k, exc: warned.append(k)) == found
    assert reads == [key, "owner/broken.json"] and len(warned) == 1  # unchanged: not read
    renamed = OwnerChange(change.id, "Dana's cat", True, T0)
    store[key] = renamed.to_json()
    assert objects.read({**stamps, key: "2"}, get, warned.append) == {change.id: renamed}
    back = OwnerChange(change.id, "Back again", False, T0)  # a rename that raced the removal
    store[key] = back.to_json()
    assert objects.read({**stamps, key: "3"}, get, warned.append) == {change.id: renamed}
    assert objects.read({}, get, warned.append) == {}


def test_apply_owner_changes(tmp_path: Path) -> None:
    package = read_package(finished(tmp_path, None))
    record = MovieRecord.for_package(package)
    named = OwnerChange(record.id, "Our dragon", False, T0)
    assert [r.title for r in apply_owner_changes([record], {record.id: named})] == ["Our dragon"]
    cleared = OwnerChange(record.id, None, False, T0)  # the name taken away: the code again
    titled = replace(record, title="A station's title")
    assert [r.title for r in apply_owner_changes([titled], {record.id: cleared})] == [None]
    gone = OwnerChange(record.id, "Our dragon", True, T0)
    assert apply_owner_changes([record], {record.id: gone}) == []
    assert apply_owner_changes([record], {}) == [record]
