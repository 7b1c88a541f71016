"""The published movie record and the index of public movies."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moviepkg.errors import RecordError
from moviepkg.ids import movie_code
from moviepkg.reader import read_package
from moviepkg.record import MovieIndex, MovieRecord, parse_index, parse_record
from tests.demo import make_demo

NOW = datetime(2026, 5, 3, tzinfo=UTC)


@pytest.fixture
def record(package: Path) -> MovieRecord:
    return MovieRecord.for_package(read_package(package))


def test_record_for_package(record: MovieRecord, package: Path) -> None:
    assert record.id == package.name
    assert record.duration_s == 4.3  # 4 s title card + 3 frames at 10 fps
    assert record.video == f"movies/{package.name}.mp4"
    assert record.poster == f"movies/{package.name}.jpg"
    assert parse_record(record.to_json()) == record


def _broken(record: MovieRecord, key: str, value: Any) -> bytes:
    doc = json.loads(record.to_json())
    doc[key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("key", "value", "words"), [
    ("code", "AAAAAA", "record code"),
    ("video", "../../etc/passwd", "record video"),
    ("public", "yes", "record public"),
    ("duration_s", -1, "record duration_s"),
    ("fps", 99, "record fps"),
    ("created_at", "May 1st", "record created_at"),
    ("version", 3, "record version"),
    ("version", 1, "the v1 keys"),
    ("extra", 1, "the v2 keys"),
    ("owner_key_sha256", "secret", "record owner_key_sha256"),
    ("width", 0, "record width"),
    ("height", 1.5, "record height"),
])
def test_record_rejects(record: MovieRecord, key: str, value: Any, words: str) -> None:
    with pytest.raises(RecordError, match=words):
        parse_record(_broken(record, key, value))


def test_index_is_public_only_newest_first(record: MovieRecord) -> None:
    older = replace(record, id="a-older", code=movie_code("a-older"),
                    created_at=record.created_at - timedelta(days=1),
                    video="movies/a-older.mp4", poster="movies/a-older.jpg")
    hidden = replace(older, public=False)
    index = MovieIndex.build([older, record, hidden], NOW)
    assert [m.id for m in index.movies] == [record.id]  # hidden replaced older: one per id
    index = MovieIndex.build([older, record], NOW)
    assert [m.id for m in index.movies] == [record.id, "a-older"]
    assert parse_index(index.to_json()) == index


def test_index_rejects_private_entries_and_wrong_order(record: MovieRecord) -> None:
    doc = json.loads(MovieIndex.build([record], NOW).to_json())
    doc["movies"][0]["public"] = False
    with pytest.raises(RecordError, match=r"index movies\[0\] public"):
        parse_index(json.dumps(doc).encode())
    later = replace(record, id="z-later", code=movie_code("z-later"), video="movies/z-later.mp4",
                    poster="movies/z-later.jpg", created_at=record.created_at + timedelta(1))
    doc = json.loads(MovieIndex.build([record, later], NOW).to_json())
    doc["movies"].reverse()
    with pytest.raises(RecordError, match="newest first"):
        parse_index(json.dumps(doc).encode())


def test_index_rejects_garbage() -> None:
    with pytest.raises(RecordError, match="JSON"):
        parse_index(b"<html>")


def test_nopublish_package_makes_a_private_record(tmp_path: Path) -> None:
    path = make_demo(tmp_path, frames=2, publish=False, width=32, height=32)
    assert MovieRecord.for_package(read_package(path)).public is False
