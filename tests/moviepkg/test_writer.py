"""The station's writer: frames, delete, finish, reopen after a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moviepkg.errors import WriterError
from moviepkg.ids import PACKAGE_ID_RE
from moviepkg.reader import read_package
from moviepkg.writer import PackageWriter, clean_title, unfinished_packages
from tests.demo import demo_frame

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def frame(i: int) -> bytes:
    return demo_frame(i, 10, 64, 48)


def test_start_add_finish_reads_back(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "station-3", now=T0, nonce="00af")
    assert writer.package_id == "station-3-20260501t120000z-00af"
    assert PACKAGE_ID_RE.fullmatch(writer.package_id)
    for i in range(4):
        assert writer.add_frame(frame(i)) == i
    writer.finish("  Our   cat\tjumps ", publish=False, now=T0 + timedelta(minutes=2))
    package = read_package(writer.path)
    assert not package.publish
    assert package.manifest.title == "Our cat jumps"
    assert package.manifest.created_at == T0
    assert package.manifest.finished_at == T0 + timedelta(minutes=2)
    assert [f.name for f in package.frames] == ["0000.jpg", "0001.jpg", "0002.jpg", "0003.jpg"]
    assert (writer.path / "0002.jpg").read_bytes() == frame(2)
    assert sorted(p.name for p in writer.path.iterdir()) == [
        "0000.jpg", "0001.jpg", "0002.jpg", "0003.jpg", "MANIFEST", "NOPUBLISH"]


def test_delete_last_frame(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "s1", now=T0)
    for i in range(3):
        writer.add_frame(frame(i))
    assert writer.delete_last_frame() == 2
    writer.add_frame(frame(7))
    writer.finish(None, publish=True, now=T0)
    package = read_package(writer.path)
    assert package.manifest.title is None
    assert (writer.path / "0002.jpg").read_bytes() == frame(7)


def test_delete_with_no_frames_is_refused(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "s1", now=T0)
    with pytest.raises(WriterError, match="no frame to delete"):
        writer.delete_last_frame()


def test_finish_without_frames_is_refused(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "s1", now=T0)
    with pytest.raises(WriterError, match="at least one frame"):
        writer.finish("x", publish=True)
    assert writer.discard_if_empty()
    assert not writer.path.exists()


def test_bad_jpeg_from_camera_is_refused(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "s1", now=T0)
    with pytest.raises(WriterError, match="bad JPEG"):
        writer.add_frame(b"not a jpeg at all")
    assert list(writer.path.iterdir()) == []


def test_nothing_after_finish(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "s1", now=T0)
    writer.add_frame(frame(0))
    writer.finish("done", publish=True, now=T0)
    with pytest.raises(WriterError, match="already finished"):
        writer.add_frame(frame(1))
    with pytest.raises(WriterError, match="already finished"):
        PackageWriter.reopen(writer.path)


def test_clock_jumping_back_never_breaks_the_package(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "s1", now=T0)
    writer.add_frame(frame(0))
    manifest = writer.finish("x", publish=True, now=T0 - timedelta(days=400))
    assert manifest.finished_at == T0
    read_package(writer.path)


def test_reopen_after_crash_keeps_frames_and_cleans_leftovers(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "s1", now=T0)
    for i in range(3):
        writer.add_frame(frame(i))
    # What a crash can leave: a half-written temp frame and a MANIFEST without its flag.
    (writer.path / ".0003.jpg.1234abcd.tmp").write_bytes(frame(3)[:100])
    (writer.path / "MANIFEST").write_text("{}")
    assert unfinished_packages(tmp_path) == [writer.path]
    again = PackageWriter.reopen(writer.path)
    assert (again.package_id, again.station_id, again.created_at) == (writer.package_id, "s1", T0)
    assert again.frame_count == 3
    assert sorted(p.name for p in writer.path.iterdir()) == ["0000.jpg", "0001.jpg", "0002.jpg"]
    again.add_frame(frame(3))
    again.finish("after the storm", publish=True, now=T0)
    assert len(read_package(writer.path).frames) == 4
    assert unfinished_packages(tmp_path) == []


def test_reopen_refuses_a_gap(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "s1", now=T0)
    for i in range(3):
        writer.add_frame(frame(i))
    (writer.path / "0001.jpg").unlink()
    with pytest.raises(WriterError, match="not contiguous"):
        PackageWriter.reopen(writer.path)


def test_manifest_is_utf8_json_in_write_order(tmp_path: Path) -> None:
    writer = PackageWriter.start(tmp_path, "s1", now=T0)
    writer.add_frame(frame(0))
    writer.finish("שלום עולם مرحبا", publish=True, now=T0)
    doc = json.loads((writer.path / "MANIFEST").read_bytes().decode("utf-8"))
    assert doc["title"] == "שלום עולם مرحبا"
    assert list(doc)[:2] == ["format", "version"]
    manifest_time = (writer.path / "MANIFEST").stat().st_mtime_ns
    assert (writer.path / "PUBLISH").stat().st_mtime_ns >= manifest_time


@pytest.mark.parametrize(("raw", "clean"), [
    ("", None), ("   ", None), (None, None), ("a\nb", "a b"), ("x" * 100, "x" * 80),
    ("  hi  there ", "hi there"),
])
def test_clean_title(raw: str | None, clean: str | None) -> None:
    assert clean_title(raw) == clean


def test_station_id_must_be_valid(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="station_id"):
        PackageWriter.start(tmp_path, "Station One", now=T0)
