"""Title card + frames -> one browser-ready MP4, checked with ffprobe afterwards.

Command lines are built by pure functions and tested without running anything;
`encode` runs them under nice/ionice, reads `-progress`, and never trusts the
exit code alone: an image pattern stops at a gap and still exits 0. Frames follow
the frame rule (`frames.py`): a frame at fault raises ContentError, never EncodeError.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

from moviepkg.atomic import fsync_dir, fsync_file

from .errors import ContentError, EncodeError
from .frames import MAX_FRAME_PIXELS, as_stored, check_frames, find_undecodable

TITLE_SECONDS = 4
Progress = Callable[[int, int], None]  # (frames done, frames in all)


@dataclass(frozen=True, slots=True)
class EncodeJob:
    """What to encode and how."""

    title_png: Path
    frames_dir: Path
    frame_count: int
    fps: int
    output: Path
    size: tuple[int, int] = (1280, 720)
    threads: int = 2
    preset: str = "veryfast"
    crf: int = 23

    @property
    def total_frames(self) -> int:
        """Frames in the finished movie: the title card's, then the package's."""
        return TITLE_SECONDS * self.fps + self.frame_count

    @property
    def duration(self) -> float:
        """Seconds in the finished movie."""
        return self.total_frames / self.fps


def ffmpeg_args(job: EncodeJob, output: Path, ffmpeg: str = "ffmpeg") -> list[str]:
    """Build the one ffmpeg command that joins the title card and the frames."""
    w, h = job.size
    # eval=frame: with -reinit_filter 0 a frame of another size reaches pad unannounced;
    # pad must place it afresh, or it paints it at the old place over green.
    fit = (f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
           f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black:eval=frame,setsar=1,format=yuv420p")
    graph = (f"[0:v]scale={w}:{h},setsar=1,format=yuv420p[t];"
             f"[1:v]{fit}[m];[t][m]concat=n=2:v=1:a=0[v]")
    return [
        # -xerror: a frame that does not decode stops ffmpeg instead of being concealed
        # (skipped, then filled in by repeating its neighbour to keep the frame rate).
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y", "-xerror",
        "-loop", "1", "-framerate", str(job.fps), "-t", str(TITLE_SECONDS),
        "-i", str(job.title_png),
        # -reinit_filter 0: frames of another size are scaled, not a reason to restart the
        # graph (which would replay the title card). -err_detect explode: a damaged frame is
        # an error, not a picture with its damage painted over; -max_pixels: no bombs.
        "-err_detect", "explode", "-max_pixels", str(MAX_FRAME_PIXELS),
        "-framerate", str(job.fps), "-start_number", "0", "-reinit_filter", "0",
        "-i", str(job.frames_dir / "%04d.jpg"),
        "-filter_complex", graph, "-map", "[v]",
        "-c:v", "libx264", "-preset", job.preset, "-crf", str(job.crf),
        "-pix_fmt", "yuv420p", "-r", str(job.fps), "-g", str(job.fps * 2),
        "-threads", str(job.threads), "-filter_complex_threads", "1",
        "-movflags", "+faststart", "-f", "mp4",
        "-progress", "pipe:1",
        str(output),
    ]


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
           popen: Callable[..., subprocess.Popen[str]] = subprocess.Popen,
           stall_seconds: float = 60.0) -> ProbeInfo:
    """Check the frames, encode job.output (via a temp name, then rename), check it.

    Raises ContentError for a frame at fault, EncodeError for anything else.
    """
    turned = check_frames(job.frames_dir, job.frame_count)
    with as_stored(job.frames_dir, job.frame_count, turned) as frames_dir:
        return _encode(replace(job, frames_dir=frames_dir), nice, progress, popen,
                       stall_seconds)


def _encode(job: EncodeJob, nice: int, progress: Progress | None,
            popen: Callable[..., subprocess.Popen[str]], stall_seconds: float) -> ProbeInfo:
    """Run ffmpeg and check what it made.

    ffmpeg reports progress twice a second; one that says nothing for stall_seconds
    is stuck (an input that never opens, such as a FIFO, makes it wait forever) and
    is killed.
    """
    job.output.parent.mkdir(parents=True, exist_ok=True)
    partial = job.output.with_name(f".{job.output.name}.{os.getpid()}.partial")
    command = die_with_parent() + low_priority(nice) + ffmpeg_args(job, partial)
    with tempfile.TemporaryFile("w+") as errors:
        proc = popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert proc.stdout is not None
        alive = threading.Event()
        stalled = threading.Event()
        filled: dict[str, int] = {}  # dup_frames, drop_frames: frames made up or thrown away

        def watch() -> None:
            while proc.poll() is None:
                if not alive.wait(stall_seconds):
                    stalled.set()
                    proc.kill()
                    return
                alive.clear()

        threading.Thread(target=watch, name="ffmpeg-stall", daemon=True).start()
        try:
            for line in proc.stdout:
                alive.set()
                pair = parse_progress(line)
                if pair and pair[0] == "frame" and progress is not None and pair[1].isdigit():
                    progress(min(int(pair[1]), job.total_frames), job.total_frames)
                elif pair and pair[0] in ("dup_frames", "drop_frames") and pair[1].isdigit():
                    filled[pair[0]] = int(pair[1])
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        errors.seek(0)
        message = errors.read().strip().splitlines()[-3:]
    try:
        if stalled.is_set():
            raise EncodeError(f"ffmpeg made no progress for {stall_seconds:.0f} s and was "
                              f"stopped: {' / '.join(message) or 'no message'}")
        if code != 0:
            text = f"ffmpeg exited with {code}: {' / '.join(message) or 'no message'}"
            if code < 0:  # killed by a signal: not the frames
                raise EncodeError(text)
            blame_frames(job, text)
        info = probe(partial)
        try:
            check_movie(info, job, sum(filled.values()))
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
    return info


@dataclass(frozen=True, slots=True)
class ProbeInfo:
    """What ffprobe and the MP4 box order say about a movie."""

    codec: str
    pix_fmt: str
    width: int
    height: int
    frames: int
    duration: float
    faststart: bool


def ffprobe_args(path: Path, ffprobe: str = "ffprobe") -> list[str]:
    """Build the ffprobe command that reads the stream and counts its packets (one a frame)."""
    return [ffprobe, "-v", "error", "-count_packets", "-select_streams", "v:0",
            "-show_entries", "stream=codec_name,pix_fmt,width,height,nb_read_packets"
            ":format=duration", "-of", "json", str(path)]


def probe(path: Path, run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
          ) -> ProbeInfo:
    """Read codec, pixel format, size, frame count and duration of a movie."""
    done = run(ffprobe_args(path), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise EncodeError(f"ffprobe cannot read {path.name}: {done.stderr.strip()[-300:]}")
    doc = json.loads(done.stdout)
    if not doc.get("streams"):
        raise EncodeError(f"{path.name}: no video stream")
    stream = doc["streams"][0]
    return ProbeInfo(codec=stream.get("codec_name", ""), pix_fmt=stream.get("pix_fmt", ""),
                     width=int(stream.get("width", 0)), height=int(stream.get("height", 0)),
                     frames=int(stream.get("nb_read_packets", 0)),
                     duration=float(doc.get("format", {}).get("duration", 0.0)),
                     faststart=moov_before_mdat(path))


def blame_frames(job: EncodeJob, failure: str) -> NoReturn:
    """Raise ContentError for the first frame that does not decode alone, else EncodeError."""
    fault = find_undecodable(job.frames_dir, job.frame_count)
    if fault is None:
        raise EncodeError(failure)
    name, why = fault
    raise ContentError(f"ffmpeg cannot decode this frame ({why})", frame=name)


def check_movie(info: ProbeInfo, job: EncodeJob, filled: int = 0) -> None:
    """Raise EncodeError unless the movie is exactly what the job asked for.

    filled counts frames ffmpeg repeated or dropped to keep the frame rate: a frame that
    vanished without an error is hidden that way, with the right count.
    """
    problems = []
    if filled:
        problems.append(f"needed {filled} frames repeated or dropped: a frame did not decode")
    if info.frames != job.total_frames:
        problems.append(f"{info.frames} frames instead of {job.total_frames} "
                        f"({TITLE_SECONDS} s x {job.fps} fps + {job.frame_count}): "
                        "a frame is missing or unreadable")
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


def top_level_boxes(path: Path) -> list[str]:
    """List the types of an MP4's top-level boxes, in file order."""
    boxes = []
    size = path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            length, kind = struct.unpack(">I4s", fh.read(8))
            if length == 1:
                length = struct.unpack(">Q", fh.read(8))[0]
            elif length == 0:
                length = size - offset
            if length < 8:
                break
            boxes.append(kind.decode("latin-1"))
            offset += length
    return boxes


def moov_before_mdat(path: Path) -> bool:
    """Tell whether the MP4 index comes before the media data (`+faststart`)."""
    boxes = top_level_boxes(path)
    return "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")

