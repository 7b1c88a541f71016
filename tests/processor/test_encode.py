"""The encoder: command lines as data, then real ffmpeg and ffprobe."""

from __future__ import annotations

import io
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from processor.encode import (
    EncodeJob,
    check_movie,
    encode,
    ffmpeg_args,
    low_priority,
    parse_progress,
)
from processor.errors import EncodeError
from processor.mp4 import MovieInfo, moov_before_mdat, top_level_boxes
from tests.demo import make_demo
from tests.processor.conftest import ffprobe_json
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
    # the title card comes as raw pixels on stdin, once, and is repeated for 4 s (48 frames)
    assert "-f rawvideo -pixel_format rgb24 -video_size 1280x720 -framerate 12 -i pipe:0" \
        in joined
    assert "format=yuv420p,loop=loop=47:size=1:start=0,setpts=N/12/TB[t]" in joined
    assert "-framerate 12 -start_number 0 -reinit_filter 0 -i /p/%04d.jpg" in joined
    # decode errors are fatal, not concealed; no frame may be a memory bomb
    assert "-xerror" in args and "-err_detect explode -max_pixels 40000000 -framerate" in joined
    assert "color=black:eval=frame" in joined  # a frame of another size is placed afresh
    assert "-threads 3" in joined and "-movflags +faststart" in joined
    assert "-c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p" in joined and "-r 12" in joined
    assert "-b:v" not in args
    assert "pad=1280:720:(ow-iw)/2:(oh-ih)/2" in joined
    assert "concat=n=2:v=1:a=0" in joined
    assert job.total_frames == 78 and job.duration == 6.5


def test_the_hardware_encoder_gets_a_bit_rate_not_a_quality() -> None:
    job = EncodeJob(None, Path("/p"), 30, 10, Path("/o/m.mp4"), (1280, 720),
                    codec="h264_v4l2m2m")
    joined = " ".join(ffmpeg_args(job, Path("/o/.m.partial")))
    assert "-c:v h264_v4l2m2m -b:v 922k -pix_fmt yuv420p" in joined  # 0.1 bit a pixel
    assert "-preset" not in joined and "-crf" not in joined
    assert "-b:v 2500k" in " ".join(ffmpeg_args(replace(job, bitrate_kbps=2500), Path("/o/x")))
    with pytest.raises(ValueError, match="codec"):
        ffmpeg_args(replace(job, codec="mpeg2video"), Path("/o/x"))


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
    encoded = encode(job, nice=10, progress=lambda done, total: seen.append(done))
    info = encoded.movie
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 640, 360)
    assert info.frames == 52 and abs(info.duration - 5.2) < 0.05
    assert info.faststart and moov_before_mdat(job.output)
    assert top_level_boxes(job.output)[0] == "ftyp"
    assert seen and seen[-1] == 52
    assert [p.name for p in job.output.parent.iterdir()] == ["movie.mp4"]
    assert encoded.codec == "libx264" and encoded.seconds > 0 and encoded.fps > 0
    # What the file's own index said is what ffprobe finds, decoding every frame.
    probed = ffprobe_json(job.output)
    stream = probed["streams"][0]
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert int(stream["nb_read_frames"]) == info.frames
    assert abs(float(probed["format"]["duration"]) - info.duration) < 0.01


def test_the_title_on_stdin_makes_the_movie_a_looped_picture_makes(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=6, fps=10)
    encode(job, nice=0)
    assert job.title_png is not None
    # The command of the field notes: the card as a picture file, looped for 4 s.
    w, h = job.size
    fit = (f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:"
           f"(oh-ih)/2,setsar=1,format=yuv420p")
    looped = tmp_path / "looped.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-framerate", "10", "-t", "4",
                    "-i", str(job.title_png), "-framerate", "10", "-start_number", "0",
                    "-i", str(job.frames_dir / "%04d.jpg"), "-filter_complex",
                    f"[0:v]scale={w}:{h},setsar=1,format=yuv420p[t];[1:v]{fit}[m];"
                    "[t][m]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-r", "10",
                    "-g", "20", "-threads", "2", str(looped)], check=True, timeout=60)

    def pictures(movie: Path) -> list[str]:
        done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(movie), "-f", "framemd5",
                               "-"], capture_output=True, text=True, check=True, timeout=60)
        return [line.rsplit(",", 1)[1].strip() for line in done.stdout.splitlines()
                if not line.startswith("#")]

    assert pictures(job.output) == pictures(looped)  # every picture, and its timing
    assert len(pictures(job.output)) == 46


def test_other_fps_and_odd_frame_sizes_are_padded(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=5, fps=5, frame_size=(333, 251))
    info = encode(job, nice=0).movie
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

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
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

    def late() -> bytes:  # a title card that does not come in time: ffmpeg waits for it
        time.sleep(4)
        return bytes(640 * 360 * 3)

    with pytest.raises(EncodeError, match="no progress for 2 s"):
        encode(job, nice=0, stall_seconds=2, title=late)
    assert list(job.output.parent.iterdir()) == []


def test_a_title_card_that_fails_stops_ffmpeg_and_says_why(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=3)

    def broken() -> bytes:
        raise OSError("font file vanished")

    started = time.monotonic()
    with pytest.raises(OSError, match="font file vanished"):  # as it is: retried
        encode(job, nice=0, title=broken)
    assert time.monotonic() - started < 10  # ffmpeg was stopped, not left waiting
    assert list(job.output.parent.iterdir()) == []
    with pytest.raises(EncodeError, match=r"has 3 bytes of pixels, not 691200 \(640x360 RGB\)"):
        encode(job, nice=0, title=lambda: b"abc")


def test_a_short_movie_that_ffmpeg_calls_a_success_is_caught(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=12)

    def short(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # stops after 30 of the 52 frames, and exits 0
        return subprocess.Popen([*command[:-1], "-frames:v", "30", command[-1]], **kwargs)

    with pytest.raises(EncodeError, match="30 frames instead of 52"):
        encode(job, nice=0, popen=short)
    assert list(job.output.parent.iterdir()) == []


class CutShort(subprocess.Popen[bytes]):
    """ffmpeg, whose movie loses its second half once it has finished (a disk fault)."""

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        movie = Path(str(self.args[-1]))  # type: ignore[index]
        data = movie.read_bytes()
        movie.write_bytes(data[:len(data) // 2])
        return code


def test_a_broken_movie_is_caught(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=12)
    with pytest.raises(EncodeError, match="cannot be read: the file is shorter than its boxes"):
        encode(job, nice=0, popen=CutShort)
    assert list(job.output.parent.iterdir()) == []


def test_the_movie_must_agree_with_ffmpegs_report() -> None:
    job = EncodeJob(None, Path("/p"), 30, 10, Path("/o/m.mp4"), (640, 360))
    info = MovieInfo("h264", "yuv420p", 640, 360, 70, 7.0, True)
    check_movie(info, job, reported=70)
    with pytest.raises(EncodeError, match="holds 70 frames where ffmpeg reported 71"):
        check_movie(info, job, reported=71)


def test_the_hardware_command_is_sound_ffmpeg(tmp_path: Path) -> None:
    """Everything but the encoder itself, which needs the board: run with libx264 in its
    place (it takes -b:v too), the movie passes every check."""
    require_binary("ffmpeg")
    job = replace(job_for(tmp_path, frames=6), codec="h264_v4l2m2m")

    def software(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        assert "h264_v4l2m2m" in command and "-b:v" in command
        swapped = ["libx264" if arg == "h264_v4l2m2m" else arg for arg in command]
        return subprocess.Popen(swapped, **kwargs)

    encoded = encode(job, nice=0, popen=software)
    assert encoded.codec == "h264_v4l2m2m" and encoded.movie.frames == 46


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
    info = encode(EncodeJob(title, writer.path, 6, 10, tmp_path / "m.mp4", (640, 360)),
                  nice=0).movie
    assert info.frames == 46  # the title card is not replayed when the size changes


def test_frames_made_up_to_keep_the_rate_fail_the_check() -> None:
    job = EncodeJob(Path("/t.png"), Path("/p"), 30, 10, Path("/o/m.mp4"), (640, 360))
    info = MovieInfo("h264", "yuv420p", 640, 360, 70, 7.0, True)
    check_movie(info, job)
    with pytest.raises(EncodeError, match="needed 2 frames repeated or dropped"):
        check_movie(info, job, filled=2)  # the right count, but a frame was concealed


def test_an_unreadable_title_card_is_not_the_frames_fault(tmp_path: Path) -> None:
    require_binary("ffmpeg")
    job = job_for(tmp_path, frames=3)
    assert job.title_png is not None
    job.title_png.write_bytes(b"not a png")
    with pytest.raises(EncodeError, match=r"the title card title\.png cannot be read"):
        encode(job, nice=0, stall_seconds=20)
    assert list(job.output.parent.iterdir()) == []
