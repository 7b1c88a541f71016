"""The encoder: command lines as data, then real ffmpeg and ffprobe."""

from __future__ import annotations

import io
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from processor.encode import (
    EncodeJob,
    ProbeInfo,
    check_movie,
    encode,
    ffmpeg_args,
    low_priority,
    moov_before_mdat,
    parse_progress,
    top_level_boxes,
)
from processor.errors import EncodeError
from tests.demo import make_demo
from tests.services import require_binary


def job_for(tmp_path: Path, frames: int = 12, fps: int = 10, size: tuple[int, int] = (640, 360),
            frame_size: tuple[int, int] = (640, 480)) -> EncodeJob:
    package = make_demo(tmp_path / "outbox", frames=frames, width=frame_size[0],
                        height=frame_size[1])
    title = tmp_path / "title.png"
    Image.new("RGB", size, (20, 20, 60)).save(title)
    return EncodeJob(title_png=title, frames_dir=package, frame_count=frames, fps=fps,
                     output=tmp_path / "out" / "movie.mp4", size=size, threads=2)


def test_ffmpeg_args_are_one_invocation_with_the_settings(tmp_path: Path) -> None:
    job = EncodeJob(Path("/t/title.png"), Path("/p"), 30, 12, Path("/o/m.mp4"), (1280, 720), 3)
    args = ffmpeg_args(job, Path("/o/.m.partial"))
    joined = " ".join(args)
    assert args[0] == "ffmpeg" and args[-1] == "/o/.m.partial"
    assert "-loop 1 -framerate 12 -t 4 -i /t/title.png" in joined
    assert "-framerate 12 -start_number 0 -reinit_filter 0 -i /p/%04d.jpg" in joined
    # decode errors are fatal, not concealed; no frame may be a memory bomb
    assert "-xerror" in args and "-err_detect explode -max_pixels 40000000 -framerate" in joined
    assert "color=black:eval=frame" in joined  # a frame of another size is placed afresh
    assert "-threads 3" in joined and "-movflags +faststart" in joined
    assert "-pix_fmt yuv420p" in joined and "-r 12" in joined
    assert "pad=1280:720:(ow-iw)/2:(oh-ih)/2" in joined
    assert "concat=n=2:v=1:a=0" in joined
    assert job.total_frames == 78 and job.duration == 6.5


def test_low_priority_prefix() -> None:
    assert low_priority(0) == []
    assert low_priority(10)[:3] == ["nice", "-n", "10"]


def test_parse_progress() -> None:
    assert parse_progress("frame=42\n") == ("frame", "42")
    assert parse_progress("garbage") is None


def test_real_encode_is_browser_ready(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=12, fps=10)
    seen: list[int] = []
    info = encode(job, nice=10, progress=lambda done, total: seen.append(done))
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 640, 360)
    assert info.frames == 52 and abs(info.duration - 5.2) < 0.05
    assert info.faststart and moov_before_mdat(job.output)
    assert top_level_boxes(job.output)[0] == "ftyp"
    assert seen and seen[-1] == 52
    assert [p.name for p in job.output.parent.iterdir()] == ["movie.mp4"]


def test_other_fps_and_odd_frame_sizes_are_padded(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=5, fps=5, frame_size=(333, 251))
    info = encode(job, nice=0)
    assert (info.width, info.height, info.frames) == (640, 360, 25)


def test_a_gap_fails_loudly_and_leaves_no_movie(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=12)
    (job.frames_dir / "0006.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"0006\.jpg"):  # the frame check reads it
        encode(job, nice=0)
    assert not job.output.parent.exists() or list(job.output.parent.iterdir()) == []


def test_a_frame_gone_while_ffmpeg_runs_fails_the_count(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=12)

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        (job.frames_dir / "0006.jpg").unlink()  # -xerror: a gap stops ffmpeg (no short movie)
        return subprocess.Popen(command, **kwargs)

    # The environment's fault, not the frame's: EncodeError (retried), not ContentError.
    with pytest.raises(EncodeError, match=r"exited with 1: .*Could not open file.*0006\.jpg"):
        encode(job, nice=0, popen=popen)
    assert list(job.output.parent.iterdir()) == []


def test_ffmpeg_error_is_reported(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = replace(job_for(tmp_path, frames=3), preset="no-such-preset")
    with pytest.raises(EncodeError, match="ffmpeg exited with"):
        encode(job, nice=0)
    assert list(job.output.parent.iterdir()) == []


@pytest.mark.slow  # waits for the stall watchdog
def test_a_stuck_ffmpeg_is_stopped(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=3)
    job.title_png.unlink()
    os.mkfifo(job.title_png)  # nobody writes: ffmpeg waits to open it forever
    with pytest.raises(EncodeError, match="no progress for 2 s"):
        encode(job, nice=0, stall_seconds=2)
    assert list(job.output.parent.iterdir()) == []


def test_frames_of_different_sizes_make_one_movie(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    from moviepkg.writer import PackageWriter

    writer = PackageWriter.start(tmp_path, "s1")
    for i in range(6):
        buf = io.BytesIO()
        Image.new("RGB", (640, 480) if i % 2 else (320, 200), (40 * i, 0, 0)).save(buf, "JPEG")
        writer.add_frame(buf.getvalue())
    writer.finish("mixed", publish=True)
    title = tmp_path / "title.png"
    Image.new("RGB", (640, 360)).save(title)
    info = encode(EncodeJob(title, writer.path, 6, 10, tmp_path / "m.mp4", (640, 360)), nice=0)
    assert info.frames == 46  # the title card is not replayed when the size changes


def test_frames_made_up_to_keep_the_rate_fail_the_check() -> None:
    job = EncodeJob(Path("/t.png"), Path("/p"), 30, 10, Path("/o/m.mp4"), (640, 360))
    info = ProbeInfo("h264", "yuv420p", 640, 360, 70, 7.0, True)
    check_movie(info, job)
    with pytest.raises(EncodeError, match="needed 2 frames repeated or dropped"):
        check_movie(info, job, filled=2)  # the right count, but a frame was concealed


def test_an_unreadable_title_card_is_not_the_frames_fault(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=3)
    job.title_png.write_bytes(b"not a png")  # -xerror: ffmpeg stops instead of spinning
    with pytest.raises(EncodeError, match=r"ffmpeg exited with 1: .*PNG"):
        encode(job, nice=0, stall_seconds=20)
    assert list(job.output.parent.iterdir()) == []
