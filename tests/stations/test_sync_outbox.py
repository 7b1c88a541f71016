"""The outbox as the sync agent sees it: what is ready, archiving to sent/, pruning."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moviepkg.writer import PackageWriter
from stations.outbox import DAY, Outbox
from tests.services import skip_or_fail
from tests.stations.conftest import T0, add_package


def test_finished_packages_oldest_first_and_unfinished_apart(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    late = add_package(outbox, minutes=30)
    early = add_package(outbox, minutes=1)
    shooting = PackageWriter.start(outbox, "st-1", now=T0)
    (outbox / ".sync.lock").write_text("1\n")
    (outbox / ".hidden-dir").mkdir()
    (outbox / "stray.txt").write_text("x")
    box = Outbox(outbox, tmp_path / "sent")
    assert box.finished() == [early, late]
    assert box.unfinished() == [shooting.path]


def test_archive_moves_and_restarts_the_retention_clock(tmp_path: Path) -> None:
    package = add_package(tmp_path / "outbox")
    files = sorted(p.name for p in package.iterdir())
    box = Outbox(tmp_path / "outbox", tmp_path / "sent", clock=lambda: 1_000_000.0)
    target = box.archive(package)
    assert target == tmp_path / "sent" / package.name and not package.exists()
    assert sorted(p.name for p in target.iterdir()) == files
    assert target.stat().st_mtime == 1_000_000.0


@pytest.fixture
def other_file_system(tmp_path: Path) -> Iterator[Path]:
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == tmp_path.stat().st_dev:
        skip_or_fail("no second file system (/dev/shm) to archive across")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        yield Path(folder)


def test_archive_across_file_systems_copies_then_deletes(tmp_path: Path,
                                                          other_file_system: Path) -> None:
    package = add_package(tmp_path / "outbox")
    before = {p.name: p.read_bytes() for p in package.iterdir()}
    box = Outbox(tmp_path / "outbox", other_file_system / "sent")
    target = box.archive(package)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert not package.exists() and sorted(os.listdir(target.parent)) == [package.name]


def test_prune_by_age_then_by_free_space_never_the_outbox(tmp_path: Path) -> None:
    now = time.time()
    box = Outbox(tmp_path / "outbox", tmp_path / "sent", clock=lambda: now)
    waiting = add_package(tmp_path / "outbox", minutes=0)
    sent = []
    for age_days in (20, 10, 3, 1):
        package = box.archive(add_package(tmp_path / "outbox", minutes=age_days + 1))
        os.utime(package, (now - age_days * DAY, now - age_days * DAY))
        sent.append(package)
    assert box.prune(retention_days=14, min_free_bytes=0) == [sent[0].name]
    free = {"bytes": 100}

    def disk_free(path: Path) -> int:
        return free["bytes"] + 50 * (3 - len(os.listdir(tmp_path / "sent")))

    box.disk_free = disk_free
    assert box.prune(retention_days=14, min_free_bytes=190) == [sent[1].name, sent[2].name]
    assert [p.name for p in box._packages(tmp_path / "sent")] == [sent[3].name]
    assert waiting.exists()
    assert box.prune(retention_days=14, min_free_bytes=10**9) == [sent[3].name]
    assert waiting.exists()  # low disk never costs an undelivered movie


def test_last_capture_is_the_newest_frame_in_outbox_or_sent(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox", tmp_path / "sent")
    assert box.last_capture() is None
    old = box.archive(add_package(tmp_path / "outbox", minutes=0))
    os.utime(old / "0001.jpg", (1_700_000_000, 1_700_000_000))
    for frame in old.glob("*.jpg"):
        if frame.name != "0001.jpg":
            os.utime(frame, (1_600_000_000, 1_600_000_000))
    assert box.last_capture() == datetime.fromtimestamp(1_700_000_000, UTC)
    shooting = PackageWriter.start(tmp_path / "outbox", "st-1", now=T0)
    shooting.add_frame((old / "0000.jpg").read_bytes())
    assert box.last_capture() == datetime.fromtimestamp(
        (shooting.path / "0000.jpg").stat().st_mtime, UTC)
