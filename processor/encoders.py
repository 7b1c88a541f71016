"""The H.264 encoders ffmpeg can use here, and `auto`, which picks one at start-up.

`libx264` (software) works everywhere. `h264_v4l2m2m` is the hardware encoder of the
processing unit's ARM board (V4L2 memory-to-memory: the Raspberry Pi 4, the Odroid
XU4): it takes a bit rate, not a quality (`-crf`) or a speed (`-preset`). `auto` makes
a 1-second test movie with the hardware encoder, once, and checks it as a real movie
is checked; if that fails it encodes with libx264 and logs ffmpeg's reason.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .mp4 import read_movie

log = logging.getLogger("stopmo.processor.encode")

SOFTWARE = "libx264"
HARDWARE = "h264_v4l2m2m"
AUTO = "auto"
CODECS = (SOFTWARE, HARDWARE)
BITS_PER_PIXEL = 0.1  # the hardware encoder's default bit rate: ~0.9 Mbit/s at 720p, 10 fps
PROBE_TIMEOUT = 30.0  # seconds for the 1-second test movie (a busy board is slow to start)
Run = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True, slots=True)
class EncoderChoice:
    """The encoder to use and why (for the log, `status` and telemetry)."""

    codec: str
    reason: str


def default_bitrate_kbps(size: tuple[int, int], fps: int) -> int:
    """The bit rate for a hardware encode of size at fps, in kbit/s."""
    return max(100, round(size[0] * size[1] * fps * BITS_PER_PIXEL / 1000))


def codec_args(codec: str, *, preset: str, crf: int, bitrate_kbps: int) -> list[str]:
    """The ffmpeg options that choose and tune the encoder."""
    if codec == SOFTWARE:
        return ["-c:v", SOFTWARE, "-preset", preset, "-crf", str(crf)]
    if codec == HARDWARE:
        return ["-c:v", HARDWARE, "-b:v", f"{bitrate_kbps}k"]
    raise ValueError(f"codec: expected one of {', '.join(CODECS)}, found {codec!r}")


def probe_args(codec: str, size: tuple[int, int], fps: int, output: Path,
               ffmpeg: str = "ffmpeg") -> list[str]:
    """Build the 1-second test encode: ffmpeg's test picture, as a movie is encoded."""
    w, h = size
    return [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate={fps}:duration=1",
            *codec_args(codec, preset="veryfast", crf=23,
                        bitrate_kbps=default_bitrate_kbps(size, fps)),
            "-pix_fmt", "yuv420p", "-r", str(fps), "-g", str(fps * 2),
            "-movflags", "+faststart", "-f", "mp4", str(output)]


def try_encoder(codec: str, size: tuple[int, int], fps: int = 10, run: Run = subprocess.run,
                timeout: float = PROBE_TIMEOUT) -> str | None:
    """Make a 1-second test movie with codec; return why it failed, or None if it works."""
    with tempfile.TemporaryDirectory(prefix="stopmo-encoder-") as tmp:
        output = Path(tmp) / "test.mp4"
        try:
            done = run(probe_args(codec, size, fps, output), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"no test movie after {timeout:.0f} s"
        except OSError as exc:  # no ffmpeg at all
            return str(exc)
        if done.returncode != 0:
            return ffmpeg_reason(done.stderr) or f"ffmpeg exited with {done.returncode}"
        try:
            info = read_movie(output)
        except (OSError, ValueError) as exc:
            return f"its test movie is unreadable: {exc}"
    problems = []
    if (info.codec, info.pix_fmt) != ("h264", "yuv420p"):
        problems.append(f"its test movie is {info.codec}/{info.pix_fmt}, not h264/yuv420p")
    if (info.width, info.height) != size:
        problems.append(f"its test movie is {info.width}x{info.height}, not {size[0]}x{size[1]}")
    if info.frames != fps:
        problems.append(f"its test movie has {info.frames} frames, not {fps}")
    return "; ".join(problems) or None


def ffmpeg_reason(stderr: str) -> str:
    """The gist of ffmpeg's error output: its first two distinct messages, tags dropped."""
    messages: list[str] = []
    for line in stderr.strip().splitlines():
        text = line.partition("] ")[2] if line.startswith("[") else line
        if text.strip() and text.strip() not in messages:
            messages.append(text.strip())
    return "; ".join(messages[:2])[:300]


def choose_encoder(setting: str, size: tuple[int, int], fps: int = 10,
                   run: Run = subprocess.run) -> EncoderChoice:
    """Resolve encode.codec: a named encoder as it is, `auto` by a test encode (logged)."""
    if setting != AUTO:
        return EncoderChoice(setting, "set in encode.codec")
    started = time.monotonic()
    why = try_encoder(HARDWARE, size, fps, run)
    took = time.monotonic() - started
    if why is None:
        log.info("encode.codec auto: the hardware encoder %s works here (test movie in "
                 "%.1f s)", HARDWARE, took, extra={"codec": HARDWARE})
        return EncoderChoice(HARDWARE, f"auto: {HARDWARE} made a test movie")
    log.warning("encode.codec auto: the hardware encoder %s cannot encode here (%s); "
                "encoding with %s", HARDWARE, why, SOFTWARE, extra={"codec": SOFTWARE})
    return EncoderChoice(SOFTWARE, f"auto: {HARDWARE} failed its test ({why})")
