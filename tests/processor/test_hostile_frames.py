"""Frames moviepkg accepts but that decode badly: a right movie, frame by frame, or the blame.

Every case runs on real ffmpeg and ffprobe. A movie that comes out is decoded again and
compared with the package's frames as Pillow decodes them (EXIF orientation ignored,
the documented rule): each movie frame must match its own frame and no other.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from moviepkg.exitcodes import ExitStatus
from moviepkg.reader import read_package
from moviepkg.writer import PackageWriter
from processor.encode import TITLE_SECONDS, EncodeJob, encode
from processor.errors import ContentError
from processor.frames import (
    as_stored,
    check_frames,
    exif_orientation,
    find_undecodable,
    read_header,
    without_exif,
)
from processor.poster import save_poster
from tests.corpus import (
    FRAME_DAMAGE,
    HOSTILE,
    HOSTILE_FRAMES,
    Spoiler,
    distinct_frame,
    exif_bytes,
    spoil_frames,
)
from tests.services import require_binary

SIZE = (320, 180)
FPS = 10
SMALL = (32, 18)  # movie frames are compared at this size: flat halves survive it
TITLE_COLOUR = (20, 20, 60)
BAD = sorted(name for name, (_, blame) in HOSTILE.items() if blame is not None)
GOOD = sorted(name for name, (_, blame) in HOSTILE.items() if blame is None)


def hostile_package(root: Path, spoil: Spoiler) -> Path:
    """A package of distinct frames, spoiled, that moviepkg still accepts."""
    root.mkdir(parents=True, exist_ok=True)
    writer = PackageWriter.start(root, "st-1")
    for index in range(HOSTILE_FRAMES):
        writer.add_frame(distinct_frame(index))
    writer.finish("Hostile frames", publish=True)
    package = spoil(writer.path)
    read_package(package)  # checksums and markers hold: only decoding can tell
    return package


def process(package: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m processor process PACKAGE` on a work dir in tmp_path."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STOPMO_", "AWS_", "STORAGE_URL"))}
    env.update(STOPMO_INBOX=str(tmp_path / "inbox"), STOPMO_WORK_DIR=str(tmp_path / "work"),
               STOPMO_OUTPUT_SIZE="640x360", STOPMO_NICE="0")
    return subprocess.run([sys.executable, "-m", "processor", "process", str(package)],
                          env=env, capture_output=True, text=True, timeout=120)


def job_for(tmp_path: Path, package: Path) -> EncodeJob:
    title = tmp_path / "title.png"
    Image.new("RGB", SIZE, TITLE_COLOUR).save(title)
    return EncodeJob(title_png=title, frames_dir=package, frame_count=HOSTILE_FRAMES, fps=FPS,
                     output=tmp_path / "movies" / "movie.mp4", size=SIZE, threads=1,
                     preset="ultrafast")


def small(image: Image.Image) -> bytes:
    """Letterbox to the movie size like the encoder, then shrink for comparing."""
    boxed = ImageOps.pad(image.convert("RGB"), SIZE, color=(0, 0, 0))
    return boxed.resize(SMALL, Image.Resampling.BOX).tobytes()


def expected_pictures(job: EncodeJob) -> list[bytes]:
    with Image.open(job.title_png) as title:
        card = small(title)
    frames = []
    for index in range(job.frame_count):
        with Image.open(job.frames_dir / f"{index:04d}.jpg") as image:  # not exif_transpose'd
            frames.append(small(image))
    return [card] * (TITLE_SECONDS * job.fps) + frames


def movie_pictures(movie: Path) -> list[bytes]:
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(movie), "-vf",
                           f"scale={SMALL[0]}:{SMALL[1]}:flags=area", "-f", "rawvideo",
                           "-pix_fmt", "rgb24", "-"], capture_output=True, check=True, timeout=60)
    step = SMALL[0] * SMALL[1] * 3
    return [done.stdout[i:i + step] for i in range(0, len(done.stdout), step)]


def distance(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def solid_green(picture: bytes) -> bool:
    r, g, b = (sum(picture[c::3]) / (len(picture) / 3) for c in range(3))
    return g > 90 and r < 40 and b < 40  # what ffmpeg shows for a picture it never decoded


@pytest.mark.parametrize("case", GOOD)
def test_odd_but_sound_frames_make_the_right_movie(case: str, tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, hostile_package(tmp_path / "outbox", HOSTILE[case][0]))
    info = encode(job, nice=0).movie
    assert info.frames == TITLE_SECONDS * FPS + HOSTILE_FRAMES
    got, want = movie_pictures(job.output), expected_pictures(job)
    assert len(got) == len(want)
    distinct = want[TITLE_SECONDS * FPS - 1:]  # the title card once, then every frame
    for number, picture in enumerate(got):
        assert not solid_green(picture), f"movie frame {number} is solid green"
        assert distance(picture, want[number]) < 12, f"movie frame {number} is not its frame"
        nearest = min(distinct, key=lambda candidate: distance(picture, candidate))
        assert nearest == want[number], f"movie frame {number} looks like another frame"


@pytest.mark.parametrize("case", BAD)
def test_frames_that_do_not_decode_are_blamed_by_name(case: str, tmp_path: Path) -> None:
    require_binary("ffmpeg")
    spoil, blame = HOSTILE[case]
    assert blame is not None
    job = job_for(tmp_path, hostile_package(tmp_path / "outbox", spoil))
    with pytest.raises(ContentError) as raised:
        encode(job, nice=0)
    frame, words = blame
    assert raised.value.frame == frame
    assert str(raised.value).startswith(f"{frame}: ") and words in str(raised.value)
    assert not job.output.exists()
    assert not any(job.output.parent.glob(".*")), "no partial movie is left behind"


@pytest.mark.parametrize("case", BAD)
def test_process_quarantines_at_once_with_the_frame_in_reason(case: str, tmp_path: Path) -> None:
    require_binary("ffmpeg")
    package = hostile_package(tmp_path / "elsewhere", HOSTILE[case][0])
    done = process(package, tmp_path)
    assert (done.returncode, done.stdout) == (ExitStatus.INVALID, "quarantined\n"), done.stderr
    frame, words = HOSTILE[case][1] or ("", "")
    reason = (tmp_path / "work" / "quarantine" / package.name / "REASON").read_text()
    assert reason.startswith(f"{frame}: ") and words in reason
    assert not (tmp_path / "work" / "store" / "movies" / f"{package.name}.mp4").exists()


def test_process_publishes_a_package_with_exif_rotated_frames(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    package = hostile_package(tmp_path / "elsewhere", HOSTILE["exif-rotated"][0])
    done = process(package, tmp_path)
    assert (done.returncode, done.stdout) == (ExitStatus.OK, "published\n"), done.stderr


@pytest.mark.parametrize("damage", ["12-bit", "second-frame-header-bomb", "no-scan"])
def test_a_poster_frame_pillow_cannot_decode_is_content(damage: str, tmp_path: Path) -> None:
    spoil = spoil_frames(FRAME_DAMAGE[damage], HOSTILE_FRAMES // 2)
    package = read_package(hostile_package(tmp_path / "outbox", spoil))
    with pytest.raises(ContentError, match=r"^0004\.jpg: Pillow cannot decode") as raised:
        save_poster(package, tmp_path / "poster.jpg", SIZE)
    assert raised.value.frame == "0004.jpg"
    assert not (tmp_path / "poster.jpg").exists()


def test_a_poster_frame_that_cannot_be_read_is_not_content(tmp_path: Path) -> None:
    package = read_package(hostile_package(tmp_path / "outbox", lambda p: p))
    (package.path / "0004.jpg").unlink()  # the disk, not the package: retried
    with pytest.raises(FileNotFoundError):
        save_poster(package, tmp_path / "poster.jpg", SIZE)


# --- the header walk and its helpers ---------------------------------------------------


def test_the_header_walk_reads_sound_frames() -> None:
    header = read_header(distinct_frame(1, size=(333, 251), progressive=True))
    assert (header.width, header.height, header.components, header.orientation) == (
        333, 251, 3, 1)
    assert read_header(distinct_frame(2, mode="L")).components == 1
    assert read_header(distinct_frame(2, mode="CMYK")).components == 4
    assert read_header(distinct_frame(3, exif=exif_bytes(6))).orientation == 6


@pytest.mark.parametrize(("damage", "words"), [
    ("12-bit", "12-bit"), ("second-frame-header-bomb", "second frame header"),
    ("no-scan", "no image data"), ("empty-scan", "no image data"),
])
def test_the_header_walk_refuses_what_ffmpeg_would_get_wrong(damage: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        read_header(FRAME_DAMAGE[damage](distinct_frame(0)))


def test_exif_orientation_in_both_byte_orders() -> None:
    big = (b"MM\0\x2a\0\0\0\x08" + b"\0\x01" + b"\x01\x12\0\x03\0\0\0\x01\0\x08\0\0"
           + b"\0\0\0\0")
    little = (b"II\x2a\0\x08\0\0\0" + b"\x01\0" + b"\x12\x01\x03\0\x01\0\0\0\x06\0\0\0"
              + b"\0\0\0\0")
    assert (exif_orientation(big), exif_orientation(little)) == (8, 6)
    assert exif_orientation(b"junk") == 1 and exif_orientation(b"II\x2a\0\xff\0\0\0") == 1


def test_without_exif_keeps_the_picture(tmp_path: Path) -> None:
    data = distinct_frame(5, exif=exif_bytes(6))
    stripped = without_exif(data)
    assert b"Exif\0\0" in data and b"Exif\0\0" not in stripped
    assert read_header(stripped).orientation == 1
    with Image.open(io.BytesIO(data)) as a, Image.open(io.BytesIO(stripped)) as b:
        assert a.tobytes() == b.tobytes()


def test_turned_frames_are_staged_and_the_package_is_untouched(tmp_path: Path) -> None:
    package = hostile_package(tmp_path / "outbox", HOSTILE["exif-rotated"][0])
    turned = check_frames(package, HOSTILE_FRAMES)
    assert turned == ["0003.jpg", "0005.jpg"]
    with as_stored(package, HOSTILE_FRAMES, turned) as folder:
        assert folder != package and check_frames(folder, HOSTILE_FRAMES) == []
        assert (folder / "0000.jpg").resolve() == (package / "0000.jpg").resolve()
    assert not folder.exists()
    read_package(package)  # checksums still hold
    with as_stored(package, HOSTILE_FRAMES, []) as same:
        assert same == package


def test_find_undecodable_says_nothing_of_sound_frames_or_a_gap(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    package = hostile_package(tmp_path / "outbox", HOSTILE["cmyk"][0])
    assert find_undecodable(package, HOSTILE_FRAMES) is None
    (package / "0006.jpg").unlink()  # a file gone is not a frame that does not decode
    assert find_undecodable(package, HOSTILE_FRAMES) is None
