"""The daemon: a package renamed into the inbox until its movie is in mpv's playlist.

A real `processor run` (1280x720, 2 ffmpeg threads, nice 10, the folder store) drives a
real mpv (`--vo=null`, the processor's own command line otherwise) over its IPC socket.
Each run writes a 100-frame package beside the inbox, renames it in (as the receiver
delivers) and waits, on an mpv `observe_property playlist` connection, for the movie's
path to appear in mpv's playlist. In the same run, alternating which goes first, bare
ffmpeg encodes the same movie (the same title card and frames, the same settings), with
the card as a PNG looped 4 s (the field notes' command), and as raw pixels read once (as
the processor hands it over): the aim is arrival -> playlist <= bare encode + 0.3 s. The
daemon's own log lines (time stamped to the millisecond) split the way into steps.
Usage: python bench/daemon.py [--runs 7] [--frames 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

# bench/processor.py would shadow the `processor` package: keep this folder off the path.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))  # bench.frames

from bench.frames import camera_frames, write_package  # noqa: E402
from moviepkg.reader import read_package  # noqa: E402
from processor.screen.ipc import Event, MpvIpc  # noqa: E402
from processor.screen.mpv import mpv_args  # noqa: E402
from processor.titlecard import TitleCard, save_title_card  # noqa: E402
from tests.services import wait_until  # noqa: E402

SIZE = (1280, 720)
FPS = 10
TITLE_SECONDS = 4
AIM_SECONDS = 0.3


def bare_command(title_png: Path | None, frames: Path, output: Path, threads: int
                 ) -> list[str]:
    """The field notes' one ffmpeg command with the processor's settings, under nice 10:
    the title card a PNG looped 4 s; or (title_png None) raw pixels on stdin, once,
    repeated by the loop filter, as the processor hands it over. Spelled out here, not
    taken from the processor, so that this benchmark runs on older versions too."""
    w, h = SIZE
    fit = (f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
           f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black:eval=frame,setsar=1,format=yuv420p")
    prefix = ["nice", "-n", "10"] if shutil.which("nice") else []
    if shutil.which("ionice"):
        prefix += ["ionice", "-c", "2", "-n", "7"]
    card = f"[0:v]scale={w}:{h},setsar=1,format=yuv420p[t]"
    title = ["-loop", "1", "-framerate", str(FPS), "-t", str(TITLE_SECONDS), "-i",
             str(title_png)]
    if title_png is None:
        card = card.replace("[t]", f",loop=loop={TITLE_SECONDS * FPS - 1}:size=1:start=0,"
                                   f"setpts=N/{FPS}/TB[t]")
        title = ["-f", "rawvideo", "-pixel_format", "rgb24", "-video_size", f"{w}x{h}",
                 "-framerate", str(FPS), "-i", "pipe:0"]
    return [*prefix, "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-y", "-xerror", *title, "-err_detect", "explode", "-max_pixels", "40000000",
            "-framerate", str(FPS), "-start_number", "0", "-reinit_filter", "0",
            "-i", str(frames / "%04d.jpg"), "-filter_complex",
            f"{card};[1:v]{fit}[m];[t][m]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-c:v", "libx264",
            "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-r", str(FPS),
            "-g", str(FPS * 2), "-threads", str(threads), "-filter_complex_threads", "1",
            "-movflags", "+faststart", "-f", "mp4", str(output)]


class Playlist:
    """mpv's playlist as an observer sees it: each change and when it arrived."""

    def __init__(self, socket: Path) -> None:
        self.changed = threading.Condition()
        self.seen: dict[str, float] = {}  # file name -> monotonic time it first appeared
        self.ipc = MpvIpc(str(socket), on_event=self._event)
        self.ipc.connect()
        self.ipc.command("observe_property", 1, "playlist")

    def _event(self, event: Event) -> None:
        if event.get("event") != "property-change" or event.get("name") != "playlist":
            return
        now = time.monotonic()
        with self.changed:
            for item in event.get("data") or []:
                self.seen.setdefault(str(item.get("filename")), now)
            self.changed.notify_all()

    def wait_for(self, path: Path, timeout: float) -> float:
        """When path entered the playlist (monotonic); TimeoutError after timeout."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while str(path) not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{path.name} never reached mpv's playlist")
                self.changed.wait(left)
            return self.seen[str(path)]

    def close(self) -> None:
        self.ipc.close()


def log_lines(path: Path, package_id: str) -> list[dict[str, Any]]:
    """The daemon's JSON log lines about package_id, in order."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("package_id") == package_id:
            found.append(doc)
    return found


def at(lines: list[dict[str, Any]], starts: str) -> float | None:
    """The wall-clock time (epoch seconds) of the first line whose message starts so."""
    for doc in lines:
        if str(doc.get("msg", "")).startswith(starts):
            return datetime.fromisoformat(str(doc["ts"]).replace("Z", "+00:00")).timestamp()
    return None


def ffmpeg_seconds(lines: list[dict[str, Any]]) -> float | None:
    """ffmpeg's own run as the daemon logs it ("encoded 140 frames in 1.02 s ...")."""
    for doc in lines:
        words = str(doc.get("msg", "")).split()
        if words[:1] == ["encoded"] and "in" in words:
            return float(words[words.index("in") + 1])
    return None


def encode_bare(png: list[str], raw: list[str], pixels: bytes) -> tuple[float, float]:
    """Run both bare commands; return their wall times."""
    started = time.monotonic()
    subprocess.run(png, check=True, stdout=subprocess.DEVNULL)
    middle = time.monotonic()
    subprocess.run(raw, input=pixels, check=True, stdout=subprocess.DEVNULL)
    return middle - started, time.monotonic() - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("mpv") or not shutil.which("ffmpeg"):
        raise SystemExit("needs mpv and ffmpeg")
    frames = camera_frames(args.frames, SIZE)
    figures: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inbox, work, staging = root / "inbox", root / "work", root / "staging"
        inbox.mkdir()
        socket = root / "mpv.sock"
        mpv = subprocess.Popen([*mpv_args(socket, fullscreen=False, vo="null"), "--ao=null"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = {key: value for key, value in os.environ.items()
               if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("STOPMO_")}
        env.update(PYTHONPYCACHEPREFIX=str(root / "pycache"), STOPMO_INBOX=str(inbox),
                   STOPMO_WORK_DIR=str(work), STORAGE_URL=(root / "store").as_uri(),
                   STOPMO_SCREEN="mpv", STOPMO_MPV_SOCKET=str(socket),
                   STOPMO_OUTPUT_SIZE=f"{SIZE[0]}x{SIZE[1]}",
                   STOPMO_FFMPEG_THREADS=str(args.threads))
        log = root / "daemon.log"
        daemon = None
        playlist = None
        try:
            wait_until(socket.exists, 10, message="mpv's socket")
            with open(log, "ab") as out:  # JSON lines: not a terminal
                daemon = subprocess.Popen([sys.executable, "-m", "processor", "run"], env=env,
                                          cwd=ROOT, stdout=out, stderr=out)
            wait_until(lambda: "watching" in log.read_text(errors="replace"), 60,
                       message="the daemon")
            playlist = Playlist(socket)
            wait_until(lambda: any("idle-card" in name for name in playlist.seen), 30,
                       message="the idle card in mpv's playlist")
            for run in range(-1, args.runs):  # run -1 warms the caches up: not counted
                package = write_package(staging / str(run), frames)
                package_id = package.name
                card = TitleCard("Benchmark movie", "bench",
                                 read_package(package).manifest.created_at)
                title = save_title_card(card, root / f"title-{run}.png", SIZE)
                with Image.open(title) as picture:
                    pixels = picture.convert("RGB").tobytes()
                copy = shutil.copytree(package, root / f"bare-{run}")  # the same frames
                png = bare_command(title, copy, root / f"bare-{run}.mp4", args.threads)
                raw = bare_command(None, copy, root / f"raw-{run}.mp4", args.threads)


                movie = work / "movies" / f"{package_id}.mp4"
                bare_first = run % 2 == 0
                bare_s, raw_s = encode_bare(png, raw, pixels) if bare_first else (0.0, 0.0)
                wall = time.time()
                started = time.monotonic()
                os.rename(package, inbox / package_id)
                listed = playlist.wait_for(movie, 120)
                took = listed - started
                state = work / "state" / f"{package_id}.json"
                wait_until(lambda path=state: path.exists()  # type: ignore[misc]
                           and json.loads(path.read_text())["step"] == "done", 60,
                           message="published")
                if not bare_first:
                    bare_s, raw_s = encode_bare(png, raw, pixels)
                if run < 0:
                    continue
                lines = log_lines(log, package_id)
                received, encoding = at(lines, "received"), at(lines, "encoding")
                encoded, screen = at(lines, "encoded"), at(lines, "to the big screen next")
                ffmpeg = ffmpeg_seconds(lines)
                listed_wall = wall + took
                steps = {
                    "rename -> received (watch, validate, move in)": received and received - wall,
                    "received -> encode starts (queue, worker, lock)":
                        encoding and received and encoding - received,
                    "ffmpeg, start to exit (its own log)": ffmpeg,
                    "rest of the encode step (frame walk, checks, record)":
                        encoded and encoding and ffmpeg and encoded - encoding - ffmpeg,
                    "encoded -> handed to the screen": screen and encoded and screen - encoded,
                    "handed to the screen -> in mpv's playlist": screen and listed_wall - screen,
                }
                for label, value in steps.items():
                    if value is not None:
                        figures[label].append(value)
                figures["arrival"].append(took)
                figures["bare"].append(bare_s)
                figures["raw"].append(raw_s)
                figures["over"].append(took - bare_s)
                figures["over_raw"].append(took - raw_s)
                print(f"run {run + 1}: arrival -> playlist {took:.2f} s; bare ffmpeg, PNG card "
                      f"{bare_s:.2f} s (difference {took - bare_s:+.2f} s), raw card "
                      f"{raw_s:.2f} s ({took - raw_s:+.2f} s)", flush=True)
        finally:
            if playlist is not None:
                playlist.close()
            if daemon is not None:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(60)
            mpv.terminate()
            mpv.wait(10)
    median = {key: statistics.median(values) for key, values in figures.items()}
    total = args.frames + TITLE_SECONDS * FPS
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, ffmpeg threads {args.threads}; mpv --vo=null")
    print(f"package: {args.frames} frames {SIZE[0]}x{SIZE[1]} -> {total} frames with the "
          f"title card")
    print(f"median arrival (rename into the inbox) -> in mpv's playlist: "
          f"{median['arrival']:.2f} s")
    print(f"median bare ffmpeg, same movie, card as a PNG looped 4 s: {median['bare']:.2f} s; "
          f"card as raw pixels once (as the processor hands it over): {median['raw']:.2f} s")
    print(f"median difference, run by run: {median['over']:+.2f} s against the PNG command "
          f"(aim <= +{AIM_SECONDS} s; runs {min(figures['over']):+.2f} to "
          f"{max(figures['over']):+.2f}), {median['over_raw']:+.2f} s against the raw-pixels "
          f"command (runs {min(figures['over_raw']):+.2f} to {max(figures['over_raw']):+.2f})")
    print(f"steps (median of {args.runs} runs, from the daemon's log, ms):")
    for label, values in figures.items():
        if label not in ("arrival", "bare", "raw", "over", "over_raw"):
            print(f"  {statistics.median(values) * 1e3:8.0f}  {label}")


if __name__ == "__main__":
    main()
