"""Title card + frames -> one browser-ready MP4, checked from its own index afterwards.

Command lines are built by pure functions and tested without running anything;
`encode` runs them under nice/ionice and starts ffmpeg before the title card is drawn:
the card reaches ffmpeg as raw pixels on its stdin, so drawing it overlaps ffmpeg's
start-up. It reads `-progress`, and never trusts the exit code alone: an image pattern
stops at a gap and still exits 0, so the finished file's frame count, duration, codec,
size and box order are read from its index (`mp4.py`) and compared with what ffmpeg
reported. Frames follow the frame rule (`frames.py`): a frame at fault raises
ContentError, never EncodeError.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

from moviepkg.atomic import fsync_dir, fsync_file

from .encoders import SOFTWARE, codec_args, default_bitrate_kbps
from .errors import ContentError, EncodeError
from .frames import MAX_FRAME_PIXELS, as_stored, check_frames, find_undecodable
from .mp4 import MovieInfo, read_movie

TITLE_SECONDS = 4
Progress = Callable[[int, int], None]  # (frames done, frames in all)
Title = Callable[[], bytes]  # the title card's pixels: RGB, 8 bits each, exactly job.size


@dataclass(frozen=True, slots=True)
class EncodeJob:
    """What to encode and how."""

    title_png: Path | None  # the title card as a picture file, unless encode is handed one
    frames_dir: Path
    frame_count: int
    fps: int
    output: Path
    size: tuple[int, int] = (1280, 720)
    threads: int = 2
    preset: str = "veryfast"  # libx264 only
    crf: int = 23  # libx264 only
    codec: str = SOFTWARE  # encoders.CODECS
    bitrate_kbps: int = 0  # hardware encoder only; 0: from size and fps

    @property
    def total_frames(self) -> int:
        """Frames in the finished movie: the title card's, then the package's."""
        return TITLE_SECONDS * self.fps + self.frame_count

    @property
    def duration(self) -> float:
        """Seconds in the finished movie."""
        return self.total_frames / self.fps


@dataclass(frozen=True, slots=True)
class Encoded:
    """A finished, checked movie and how it was made."""

    movie: MovieInfo
    codec: str
    seconds: float  # ffmpeg's run, start to exit

    @property
    def fps(self) -> float:
        """Frames encoded per second of ffmpeg's run."""
        return self.movie.frames / self.seconds if self.seconds > 0 else 0.0


def ffmpeg_args(job: EncodeJob, output: Path, ffmpeg: str = "ffmpeg") -> list[str]:
    """Build the one ffmpeg command that joins the title card (on stdin) and the frames."""
    w, h = job.size
    # eval=frame: with -reinit_filter 0 a frame of another size reaches pad unannounced;
    # pad must place it afresh, or it paints it at the old place over green.
    fit = (f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
           f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black:eval=frame,setsar=1,format=yuv420p")
    # The card arrives once and is converted once, then repeated (loop) for its seconds;
    # the movie is byte for byte the one `-loop 1 -t 4 -i card.png` makes, with less work.
    card = (f"scale={w}:{h},setsar=1,format=yuv420p,"
            f"loop=loop={TITLE_SECONDS * job.fps - 1}:size=1:start=0,setpts=N/{job.fps}/TB")
    graph = f"[0:v]{card}[t];[1:v]{fit}[m];[t][m]concat=n=2:v=1:a=0[v]"
    bitrate = job.bitrate_kbps or default_bitrate_kbps(job.size, job.fps)
    return [
        # -xerror: a frame that does not decode stops ffmpeg instead of being concealed
        # (skipped, then filled in by repeating its neighbour to keep the frame rate).
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y", "-xerror",
        "-f", "rawvideo", "-pixel_format", "rgb24", "-video_size", f"{w}x{h}",
        "-framerate", str(job.fps), "-i", "pipe:0",
        # -reinit_filter 0: frames of another size are scaled, not a reason to restart the
        # graph (which would replay the title card). -err_detect explode: a damaged frame is
        # an error, not a picture with its damage painted over; -max_pixels: no bombs.
        "-err_detect", "explode", "-max_pixels", str(MAX_FRAME_PIXELS),
        "-framerate", str(job.fps), "-start_number", "0", "-reinit_filter", "0",
        "-i", str(job.frames_dir / "%04d.jpg"),
        "-filter_complex", graph, "-map", "[v]",
        *codec_args(job.codec, preset=job.preset, crf=job.crf, bitrate_kbps=bitrate),
        "-pix_fmt", "yuv420p", "-r", str(job.fps), "-g", str(job.fps * 2),
        "-threads", str(job.threads), "-filter_complex_threads", "1",
        "-movflags", "+faststart", "-f", "mp4",
        "-progress", "pipe:1",
        str(output),
    ]


def picture_title(path: Path, size: tuple[int, int]) -> Title:
    """A title from a picture file (scaled to size if it is not); EncodeError if unreadable."""
    def read() -> bytes:
        from PIL import Image  # the daemon hands encode its cards drawn already

        try:
            with Image.open(path) as image:
                picture = image.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise EncodeError(f"the title card {path.name} cannot be read: {exc}") from None
        if picture.size != size:
            picture = picture.resize(size)
        return picture.tobytes()
    return read


def low_priority(nice: int) -> list[str]:
    """Prefix that runs a command with lower CPU and I/O priority (empty when nice is 0)."""
    if nice <= 0:
        return []
    prefix = []
    if shutil.which("nice"):
        prefix += ["nice", "-n", str(nice)]
    if shutil.which("ionice"):
        prefix += ["ionice", "-c", "2", "-n", "7"]
    return prefix


def die_with_parent() -> list[str]:
    """Prefix that kills the child when the daemon dies (even by kill -9)."""
    return ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


def parse_progress(line: str) -> tuple[str, str] | None:
    """Split one `key=value` line of ffmpeg's -progress output."""
    key, sep, value = line.strip().partition("=")
    return (key, value) if sep else None


def encode(job: EncodeJob, nice: int = 10, progress: Progress | None = None,
           popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
           stall_seconds: float = 60.0, title: Title | None = None) -> Encoded:
    """Check the frames, encode job.output (via a temp name, then rename), check it.

    title draws the card while ffmpeg starts (default: job.title_png, read as it is).
    Raises ContentError for a frame at fault, EncodeError for anything else; what title
    raises is raised as it is.
    """
    if title is None:
        if job.title_png is None:
            raise ValueError("encode: no title card (neither title nor job.title_png)")
        title = picture_title(job.title_png, job.size)
    turned = check_frames(job.frames_dir, job.frame_count)
    with as_stored(job.frames_dir, job.frame_count, turned) as frames_dir:
        return _encode(replace(job, frames_dir=frames_dir), title, nice, progress, popen,
                       stall_seconds)


def _feed(proc: subprocess.Popen[bytes], title: Title, size: tuple[int, int],
          failed: list[BaseException]) -> None:
    """Draw the title card and hand it to ffmpeg, which waits for it on its stdin."""
    assert proc.stdin is not None
    try:
        picture = title()
        if len(picture) != size[0] * size[1] * 3:
            raise EncodeError(f"the title card has {len(picture)} bytes of pixels, not "
                              f"{size[0] * size[1] * 3} ({size[0]}x{size[1]} RGB)")
        proc.stdin.write(picture)
    except BrokenPipeError:
        pass  # ffmpeg ended before it read the card: its exit status tells why
    except BaseException as exc:
        failed.append(exc)
        proc.kill()  # no card: no movie
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _encode(job: EncodeJob, title: Title, nice: int, progress: Progress | None,
            popen: Callable[..., subprocess.Popen[bytes]], stall_seconds: float) -> Encoded:
    """Run ffmpeg, feed it the title card, and check what it made.

    ffmpeg reports progress twice a second; one that says nothing for stall_seconds
    is stuck (an input that never opens, such as a FIFO, or a card that never comes,
    makes it wait forever) and is killed.
    """
    job.output.parent.mkdir(parents=True, exist_ok=True)
    partial = job.output.with_name(f".{job.output.name}.{os.getpid()}.partial")
    command = die_with_parent() + low_priority(nice) + ffmpeg_args(job, partial)
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as errors:
        proc = popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        failed: list[BaseException] = []  # what drawing the title card raised
        feeder = threading.Thread(target=_feed, args=(proc, title, job.size, failed),
                                  name="title-card", daemon=True)
        feeder.start()
        alive = threading.Event()
        stalled = threading.Event()
        filled: dict[str, int] = {}  # dup_frames, drop_frames: frames made up or thrown away
        reported: int | None = None  # the frames ffmpeg says it encoded

        def watch() -> None:
            while proc.poll() is None:
                if not alive.wait(stall_seconds):
                    stalled.set()
                    proc.kill()
                    return
                alive.clear()

        threading.Thread(target=watch, name="ffmpeg-stall", daemon=True).start()
        try:
            for raw in proc.stdout:
                alive.set()
                pair = parse_progress(raw.decode("utf-8", "replace"))
                if pair is None or not pair[1].isdigit():
                    continue
                if pair[0] == "frame":
                    reported = int(pair[1])
                    if progress is not None:
                        progress(min(reported, job.total_frames), job.total_frames)
                elif pair[0] in ("dup_frames", "drop_frames"):
                    filled[pair[0]] = int(pair[1])
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        seconds = time.monotonic() - started
        feeder.join(timeout=5)  # it ends once ffmpeg has the card or is gone
        errors.seek(0)
        message = errors.read().strip().splitlines()[-3:]
    try:
        if failed:
            raise failed[0]
        if stalled.is_set():
            raise EncodeError(f"ffmpeg made no progress for {stall_seconds:.0f} s and was "
                              f"stopped: {' / '.join(message) or 'no message'}")
        if code != 0:
            text = f"ffmpeg exited with {code}: {' / '.join(message) or 'no message'}"
            if code < 0:  # killed by a signal: not the frames
                raise EncodeError(text)
            blame_frames(job, text)
        try:
            info = read_movie(partial)
        except (OSError, ValueError) as exc:
            raise EncodeError(f"the encoded movie cannot be read: {exc}") from None
        try:
            check_movie(info, job, sum(filled.values()), reported)
        except EncodeError as exc:
            if info.frames != job.total_frames or any(filled.values()):
                blame_frames(job, str(exc))
            raise
        fsync_file(partial)  # on disk before any state says "encoded"
        os.replace(partial, job.output)
        fsync_dir(job.output.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Encoded(movie=info, codec=job.codec, seconds=seconds)


def blame_frames(job: EncodeJob, failure: str) -> NoReturn:
    """Raise ContentError for the first frame that does not decode alone, else EncodeError."""
    fault = find_undecodable(job.frames_dir, job.frame_count)
    if fault is None:
        raise EncodeError(failure)
    name, why = fault
    raise ContentError(f"ffmpeg cannot decode this frame ({why})", frame=name)


def check_movie(info: MovieInfo, job: EncodeJob, filled: int = 0,
                reported: int | None = None) -> None:
    """Raise EncodeError unless the movie is exactly what the job asked for.

    filled counts frames ffmpeg repeated or dropped to keep the frame rate: a frame that
    vanished without an error is hidden that way, with the right count. reported is the
    frame count of ffmpeg's own progress report, which the file must agree with.
    """
    problems = []
    if filled:
        problems.append(f"needed {filled} frames repeated or dropped: a frame did not decode")
    if info.frames != job.total_frames:
        problems.append(f"{info.frames} frames instead of {job.total_frames} "
                        f"({TITLE_SECONDS} s x {job.fps} fps + {job.frame_count}): "
                        "a frame is missing or unreadable")
    if reported is not None and reported != info.frames:
        problems.append(f"holds {info.frames} frames where ffmpeg reported {reported}")
    if abs(info.duration - job.duration) > 1.5 / job.fps:
        problems.append(f"lasts {info.duration:.2f} s instead of {job.duration:.2f} s")
    if (info.codec, info.pix_fmt) != ("h264", "yuv420p"):
        problems.append(f"is {info.codec}/{info.pix_fmt}, not h264/yuv420p")
    if (info.width, info.height) != job.size:
        problems.append(f"is {info.width}x{info.height}, not {job.size[0]}x{job.size[1]}")
    if not info.faststart:
        problems.append("has its index (moov) after the data: browsers cannot start early")
    if problems:
        raise EncodeError("the encoded movie " + "; ".join(problems))
