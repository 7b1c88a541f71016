"""A store of published movies to serve: records, index, posters, and a real MP4."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from moviepkg.ids import movie_code
from moviepkg.record import (
    INDEX_KEY,
    MovieIndex,
    MovieRecord,
    poster_key,
    record_key,
    video_key,
)
from tests.services import require_binary

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 3-second, browser-ready H.264 movie (faststart)."""
    ffmpeg = require_binary("ffmpeg")
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=320x180:rate=10:duration=3", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)],
                   check=True, timeout=60)
    return path


def make_record(n: int, title: str | None = None, public: bool = True,
                station: str = "st-1") -> MovieRecord:
    package_id = f"{station}-2026050{1 + n % 9}t{n % 24:02d}0000z-{n:04x}"
    return MovieRecord(id=package_id, code=movie_code(package_id),
                       title=title if title is not None else f"Movie number {n}",
                       station_id=station, created_at=T0 + timedelta(minutes=n),
                       duration_s=3.0, fps=10, frames=30, video=video_key(package_id),
                       poster=poster_key(package_id), public=public)


def poster_bytes(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 180), colour).save(buf, "JPEG")
    return buf.getvalue()


class StoreBuilder:
    """Writes what the processor publishes, into a folder (and, on demand, S3)."""

    def __init__(self, root: Path, clip: Path | None) -> None:
        self.root = root
        self.clip = clip
        self.records: list[MovieRecord] = []
        (root / "movies").mkdir(parents=True, exist_ok=True)

    def add(self, record: MovieRecord, index: bool = True) -> MovieRecord:
        movies = self.root / "movies"
        if self.clip is not None:
            shutil.copy(self.clip, movies / f"{record.id}.mp4")
        (movies / f"{record.id}.jpg").write_bytes(poster_bytes((40, 60, 200)))
        (movies / f"{record.id}.json").write_bytes(record.to_json())
        self.records.append(record)
        if index:
            self.write_index()
        return record

    def write_index(self) -> None:
        index = MovieIndex.build(self.records, datetime.now(UTC))
        (self.root / INDEX_KEY).write_bytes(index.to_json())

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path, clip: Path) -> StoreBuilder:
    return StoreBuilder(tmp_path / "store", clip)


def private_copy(record: MovieRecord) -> MovieRecord:
    return replace(record, public=False)


__all__ = ["T0", "StoreBuilder", "make_record", "poster_bytes", "private_copy", "record_key"]
