"""The MP4 reader against ffprobe, on movies real ffmpeg made, and on broken files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from processor.mp4 import boxes, read_movie, sps_pix_fmt, top_level_boxes
from tests.processor.conftest import ffprobe_json
from tests.services import require_binary


def make(path: Path, *options: str, size: str = "320x240", seconds: float = 1.0,
         rate: int = 10) -> Path:
    require_binary("ffmpeg")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=size={size}:rate={rate}:duration={seconds}", *options,
                    str(path)], check=True, timeout=60)
    return path


@pytest.mark.parametrize(("options", "pix_fmt"), [
    (["-c:v", "libx264", "-pix_fmt", "yuv420p"], "yuv420p"),
    (["-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p"], "yuv420p"),
    (["-c:v", "libx264", "-pix_fmt", "yuv444p"], "yuv444p"),
    (["-c:v", "libx264", "-pix_fmt", "yuv422p"], "yuv422p"),
    (["-c:v", "libx264", "-pix_fmt", "yuv420p10le"], "yuv420p10le"),
])
def test_the_reader_agrees_with_ffprobe(tmp_path: Path, options: list[str],
                                        pix_fmt: str) -> None:
    movie = make(tmp_path / "m.mp4", *options, "-movflags", "+faststart", size="322x180",
                 seconds=2.5, rate=12)
    info = read_movie(movie)
    probed = ffprobe_json(movie)
    stream = probed["streams"][0]
    assert (info.codec, info.pix_fmt) == (stream["codec_name"], pix_fmt) == ("h264",
                                                                             stream["pix_fmt"])
    assert (info.width, info.height) == (stream["width"], stream["height"]) == (322, 180)
    assert info.frames == int(stream["nb_read_frames"]) == 30
    assert info.duration == pytest.approx(float(probed["format"]["duration"]), abs=0.001)
    assert info.faststart


def test_an_index_after_the_data_and_another_codec(tmp_path: Path) -> None:
    info = read_movie(make(tmp_path / "m.mp4", "-c:v", "libx264"))
    assert not info.faststart and top_level_boxes(tmp_path / "m.mp4")[-1] == "moov"
    other = read_movie(make(tmp_path / "o.mp4", "-c:v", "mpeg4"))
    assert other.codec == "mp4v" and other.frames == 10


def test_broken_files_are_refused(tmp_path: Path) -> None:
    movie = make(tmp_path / "m.mp4", "-c:v", "libx264", "-movflags", "+faststart")
    data = movie.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="shorter than its boxes"):
        read_movie(cut)
    no_index = tmp_path / "no-index.mp4"
    no_index.write_bytes(b"\0\0\0\x10ftypisom\0\0\0\0" + b"\0\0\0\x10mdat" + bytes(8))
    with pytest.raises(ValueError, match="no moov box"):
        read_movie(no_index)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="no moov box"):
        read_movie(empty)
    moov = data.index(b"moov") - 4
    garbled = tmp_path / "garbled.mp4"  # an inner box claims more than its parent holds
    inner = moov + 8
    garbled.write_bytes(data[:inner] + b"\x7f\xff\xff\xff" + data[inner + 4:])
    with pytest.raises(ValueError, match="runs past its end"):
        read_movie(garbled)


def test_boxes_and_sequence_parameter_sets() -> None:
    data = b"\0\0\0\x0cfree1234" + b"\0\0\0\x01mdat" + (20).to_bytes(8, "big") + b"abcd"
    assert [kind for kind, _, _ in boxes(data)] == ["free", "mdat"]
    # High profile, 4:2:0, 8 bits (as x264 writes it); an emulation prevention byte inside
    assert sps_pix_fmt(bytes.fromhex("6764001facd9405005bb011000000300100000030140f18319"
                                     "60")) == "yuv420p"
    assert sps_pix_fmt(bytes.fromhex("6742c01eda")) == "yuv420p"  # Baseline: 4:2:0 always
    with pytest.raises(ValueError, match="not a sequence parameter set"):
        sps_pix_fmt(bytes.fromhex("68ef8f"))  # a picture parameter set
