"""The big screen while the processor encodes: mpv's dropped and late frames, limits on vs off.

Xvfb (1280x720) and mpv with the project's own command line (`mpv_args`, `--vo=x11`,
fullscreen, plus `--ao=null` and `--dump-stats`) loop a few 10 fps movies pushed by the
real controller (`MpvScreen`). Then, alternating, the processor's `encode` of a 300-frame
1280x720 package runs with its limits on (nice 10 + ionice, 2 ffmpeg threads) or off
(nice 0, `-threads 0` = auto), and nothing runs for an idle baseline of the same length.

Two views of each window:
- mpv's counters over IPC (frame-drop-count, decoder-frame-drop-count, ...), polled and
  their increments summed, as some restart with each file;
- mpv's own time stamp of every picture it put on the screen (`--dump-stats`): pictures
  held longer than 1.5 frame times are "late" (a visible hitch), and how long they were
  held beyond their time adds up to the "slip".
The second view exists because the counters barely see a late picture here: mpv drops a
late frame only if it showed one less than 100 ms ago (it never goes below 10 fps), and a
10 fps movie shows one every 100 ms, so only the catch-up after a long stall can count;
without audio there is no A/V sync to drop for either. A final control window stops mpv
for 0.3 s (SIGSTOP) to show what such a hitch looks like in both views.
Usage: python bench/screen.py [--rounds 3] [--frames 300] [--shared-session]
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import contextlib
import itertools
import os
import platform
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# bench/processor.py would shadow the `processor` package: keep this folder off the path.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))  # bench.frames

from bench.frames import camera_frames, write_package  # noqa: E402
from processor.encode import EncodeJob, encode  # noqa: E402
from processor.screen import ScreenMovie  # noqa: E402
from processor.screen.ipc import Event, MpvError, MpvIpc  # noqa: E402
from processor.screen.mpv import MpvScreen, mpv_args  # noqa: E402
from processor.titlecard import TitleCard, save_title_card  # noqa: E402

SIZE = (1280, 720)
FPS = 10
FRAME = 1.0 / FPS
LATE = 1.5 * FRAME  # a picture held this long or longer is a visible hitch
LOOP_FRAMES = 60  # + the 4 s title card: a 10 s movie
SETTLE = 1.0  # seconds between windows, so one's tail does not reach into the next
MARGIN = 0.3  # seconds a window's flips are looked for beyond its ends (clock alignment)
# Polled and summed: frame-drop-count and vo-delayed-frame-count restart with each file in
# the VO, decoder-frame-drop-count with each decoder, mistimed-frame-count exists only with
# --video-sync=display-*. Missing ones are reported as n/a.
COUNTERS = ("frame-drop-count", "decoder-frame-drop-count", "vo-delayed-frame-count",
            "mistimed-frame-count")
HEADS = ("VO drop", "dec drop", "VO delay", "mistimed")
POLL_SECONDS = 0.1


def photo_frames(count: int, seed: int = 5, size: tuple[int, int] = SIZE) -> list[bytes]:
    """Camera-like frames (the same mix as bench/processor.py)."""
    return camera_frames(count, size, seed=seed)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's finished children (ffmpeg and ffprobe here)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Children:
    """Child services, each in its own process group; stop() ends them all, newest first."""

    def __init__(self, new_session: bool) -> None:
        self.new_session = new_session
        self.procs: list[subprocess.Popen[bytes]] = []
        # SIGTERM to the child if this process dies, even by kill -9.
        setpriv = shutil.which("setpriv")
        self.guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []

    def start(self, argv: list[str], log: Path, env: dict[str, str] | None = None,
              pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen([*self.guard, *argv], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, pass_fds=pass_fds,
                                    start_new_session=self.new_session,
                                    process_group=None if self.new_session else 0)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)  # in case it was stopped
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self.procs.clear()


def start_xvfb(children: Children, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb on a display number it picks itself; return it and DISPLAY."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise SystemExit("Xvfb is not installed: apt-get install xvfb (or run scripts/setup)")
    read_fd, write_fd = os.pipe()
    try:
        proc = children.start([xvfb, "-displayfd", str(write_fd), "-screen", "0",
                               f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"], log,
                              pass_fds=(write_fd,))
        os.close(write_fd)
        write_fd = -1
        received = b""
        deadline = time.monotonic() + 10
        while not received.endswith(b"\n"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"Xvfb did not start: {log.read_text()[-500:]}")
            if select.select([read_fd], [], [], 0.1)[0]:
                received += os.read(read_fd, 64)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    return proc, f":{int(received)}"


def get(ipc: MpvIpc, name: str) -> Any:
    """A property's value, or None where mpv says it is unavailable or unknown."""
    try:
        return ipc.command("get_property", name)
    except MpvError:
        return None


class Counters:
    """Poll mpv's counters in a thread; sum their increments (a counter that falls restarted).

    Also notes, on this process's clock, when each file started (for the flip analysis).
    """

    def __init__(self, socket: Path) -> None:
        self.file_starts: list[float] = []
        self.ipc = MpvIpc(str(socket), on_event=self._event)
        self.ipc.connect()
        self.totals = dict.fromkeys(COUNTERS, 0)
        self.seen: set[str] = set()
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()  # one poll at a time, or an old value looks like a reset
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counters", daemon=True)
        self._thread.start()

    def _event(self, event: Event) -> None:
        if event.get("event") == "start-file":
            self.file_starts.append(time.monotonic())

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.poll()

    def poll(self) -> None:
        with self._lock:
            for name in COUNTERS:
                value = get(self.ipc, name)
                if not isinstance(value, int):
                    continue  # between files, or never there
                self.seen.add(name)
                last = self._last.get(name)
                if last is not None:
                    self.totals[name] += value - last if value >= last else value
                self._last[name] = value

    def snapshot(self) -> dict[str, int]:
        self.poll()  # up to date at this moment, not POLL_SECONDS ago
        with self._lock:
            return dict(self.totals)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.ipc.close()


@dataclass
class Window:
    """What happened on the screen during one measured stretch of time."""

    round: int
    condition: str
    start: float  # time.monotonic()
    seconds: float
    frames: int  # frames encoded (0 when not encoding)
    counts: dict[str, int]  # increments of mpv's counters
    ffmpeg_cpu: float  # CPU seconds of ffmpeg (and ffprobe)
    player_cpu: float  # CPU seconds of mpv + Xvfb
    shown: int = 0  # pictures mpv put on the screen (from --dump-stats)
    late: int = 0  # of which held >= LATE (file changes excluded)
    longest: float = 0.0  # longest a picture was held, seconds (file changes excluded)
    slip: float = 0.0  # seconds pictures were held beyond their time
    changes: list[float] = field(default_factory=list)  # hold at each file change, seconds

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.frames else 0.0


def measure(counters: Counters, player_pids: list[int], run: Callable[[], int],
            condition: str, round_no: int) -> Window:
    """Run `run()` (returns frames encoded) and note what mpv's counters did meanwhile."""
    before = counters.snapshot()
    player0 = sum(cpu_seconds(pid) for pid in player_pids)
    ffmpeg0 = children_cpu()
    start = time.monotonic()
    frames = run()
    seconds = time.monotonic() - start
    after = counters.snapshot()
    return Window(round_no, condition, start, seconds, frames,
                  {name: after[name] - before[name] for name in before},
                  children_cpu() - ffmpeg0,
                  sum(cpu_seconds(pid) for pid in player_pids) - player0)


def read_flips(stats: Path) -> tuple[list[float], float]:
    """mpv's time of each picture flip and of its last stats line, seconds on mpv's clock."""
    flips, last = [], 0.0
    for line in stats.read_text(errors="replace").splitlines():
        parts = line.split()
        if not parts or not parts[0].isdigit():
            continue
        last = int(parts[0]) / 1e6
        if parts[1:3] == ["start", "video-flip"]:
            flips.append(last)
    return flips, last


def add_flips(windows: list[Window], flips: list[float], offset: float,
              file_starts: list[float]) -> None:
    """Fill in each window's pictures from mpv's flips (mpv clock = ours + offset)."""
    # The first picture of each file ends the hold at a file change.
    firsts = {bisect.bisect_right(flips, t + offset) for t in file_starts}
    for window in windows:
        lo, hi = window.start + offset - MARGIN, window.start + window.seconds + offset + MARGIN
        for index, (prev, flip) in enumerate(itertools.pairwise(flips), start=1):
            if not lo <= flip <= hi:
                continue
            window.shown += 1
            held = flip - prev
            if index in firsts:
                window.changes.append(held)
                continue
            window.longest = max(window.longest, held)
            if held >= LATE:
                window.late += 1
                window.slip += held - FRAME


def screen_is_drawn(display: str) -> str:
    """Grab the X screen and say whether the movie is on it (Pillow with XCB)."""
    try:
        from PIL import ImageGrab, features
        if not features.check("xcb"):
            return "not checked (Pillow has no XCB)"
        shot = ImageGrab.grab(xdisplay=display)
    except Exception as exc:  # only a diagnostic
        return f"not checked ({exc})"
    colours = shot.convert("RGB").getcolors(1 << 20)
    count = len(colours) if colours is not None else 1 << 20
    verdict = "drawn" if count > 1000 else "BLANK?"
    return f"{shot.size[0]}x{shot.size[1]}, {count} colours ({verdict})"


def idler(seconds: float) -> Callable[[], int]:
    """A step that encodes nothing for seconds."""
    def run() -> int:
        time.sleep(seconds)
        return 0
    return run


def stopper(pid: int, seconds: float) -> Callable[[], int]:
    """The control: stop mpv for `seconds` in the middle of a 2 s window."""
    def run() -> int:
        time.sleep(0.8)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
        time.sleep(1.2 - seconds)
        return 0
    return run


def telemetry_on(root: Path, screen: MpvScreen) -> list[Any]:
    """A real broker, and the screen's and the box's reporters sampling every second."""
    from moviepkg.broker import TelemetrySettings
    from moviepkg.reporting import open_reporter
    from moviepkg.sysinfo import system_state
    from processor.telemetry import screen_fields
    from tests.services import MosquittoServer

    broker = MosquittoServer(root / "broker").start()
    atexit.register(broker.stop)
    settings = TelemetrySettings(url=broker.url, device="processor")
    found = [open_reporter(settings, "processor", "screen", state_seconds=1.0,
                           sample=lambda: screen_fields(screen.status())),
             open_reporter(settings, "processor", "system", state_seconds=1.0,
                           sample=lambda: system_state(root))]
    print("   telemetry on: the screen and the box report every second to mosquitto", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="encodes per condition")
    parser.add_argument("--frames", type=int, default=300, help="frames in the package")
    parser.add_argument("--loop-movies", type=int, default=3)
    parser.add_argument("--telemetry", action="store_true",
                        help="report the screen and the box to a real mosquitto meanwhile, as "
                             "the daemon does (state sampled every second)")
    parser.add_argument("--shared-session", action="store_true",
                        help="run Xvfb and mpv in this session (one autogroup with ffmpeg); "
                             "by default each is its own session, as separate services are")
    args = parser.parse_args()
    for tool in ("mpv", "ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (run scripts/setup)")

    children = Children(new_session=not args.shared_session)
    reporting: list[Any] = []
    screen: MpvScreen | None = None
    counters: Counters | None = None
    windows: list[Window] = []
    with tempfile.TemporaryDirectory(prefix="stopmo-screen-") as tmp:
        root = Path(tmp)
        stats = root / "mpv-stats.txt"
        try:
            # -- movies for the loop and the package to encode, made before anything plays
            prep = time.monotonic()
            frames = photo_frames(args.frames)
            package = write_package(root / "outbox", frames)
            title = save_title_card(TitleCard("Benchmark movie", "bench", datetime.now(UTC)),
                                    root / "title.png", SIZE)
            movies = root / "movies"
            loop: list[ScreenMovie] = []
            for k in range(args.loop_movies):
                name = f"Loop movie {k + 1}"
                folder = write_package(root / "loop", photo_frames(LOOP_FRAMES, seed=11 + k),
                                       title=name)
                card = save_title_card(TitleCard(name, "bench", datetime.now(UTC)),
                                       root / f"title-{k}.png", SIZE)
                path = movies / f"{folder.name}.mp4"
                encode(EncodeJob(card, folder, LOOP_FRAMES, FPS, path), nice=0)
                loop.append(ScreenMovie(folder.name, path, name, True))
            print(f"prepared {args.frames} + {args.loop_movies}x{LOOP_FRAMES} frames and "
                  f"{args.loop_movies} loop movies in {time.monotonic() - prep:.1f} s",
                  flush=True)

            # -- the screen: Xvfb, mpv as the TV runs it, the real controller
            xvfb, display = start_xvfb(children, root / "xvfb.log")
            socket = root / "mpv.sock"
            argv = [*mpv_args(socket, fullscreen=True, vo="x11"), "--ao=null",
                    f"--dump-stats={stats}"]
            mpv_log = root / "mpv.log"
            launched = time.monotonic()
            mpv = children.start(argv, mpv_log, env={**os.environ, "DISPLAY": display})
            deadline = time.monotonic() + 10
            while counters is None:
                try:
                    counters = Counters(socket)
                except OSError:
                    if mpv.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"mpv did not start: {mpv_log.read_text()[-500:]}"
                                         ) from None
                    time.sleep(0.05)
            ipc = counters.ipc
            screen = MpvScreen(socket, root / "no-movies-yet", recent=30)
            if args.telemetry:
                reporting = telemetry_on(root, screen)
            for movie in loop:
                screen.show(movie)
            deadline = time.monotonic() + 15
            while not (get(ipc, "vo-configured") and get(ipc, "estimated-vf-fps")
                       and len(screen.status()["playlist"]) == len(loop)):
                if time.monotonic() > deadline:
                    raise SystemExit(f"mpv is not playing the loop: {screen.status()}; "
                                     f"{mpv_log.read_text()[-500:]}")
                time.sleep(0.1)
            time.sleep(1.0)  # let playback settle
            params = get(ipc, "video-params") or {}
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
                  f"{platform.system()} {platform.release()}, Python "
                  f"{platform.python_version()}, this process nice {os.nice(0)}")
            print(f"mpv: {get(ipc, 'mpv-version')}, vo {get(ipc, 'current-vo')}, "
                  f"vo-configured {get(ipc, 'vo-configured')}, "
                  f"{params.get('w')}x{params.get('h')} {params.get('pixelformat')}, "
                  f"hwdec {get(ipc, 'hwdec-current')}, fullscreen {get(ipc, 'fullscreen')}, "
                  f"video-sync {get(ipc, 'video-sync')}, framedrop {get(ipc, 'framedrop')}")
            print(f"mpv rates: container-fps {get(ipc, 'container-fps')}, "
                  f"estimated-vf-fps {get(ipc, 'estimated-vf-fps')}, "
                  f"estimated-display-fps {get(ipc, 'estimated-display-fps')}, "
                  f"display-fps {get(ipc, 'display-fps')}")
            status = screen.status()
            print(f"loop (MpvScreen): connected {status['connected']}, "
                  f"{len(status['playlist'])} movies, playing {status['playing']}")
            print(f"X screen {display}: {screen_is_drawn(display)}")
            autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled")
            sessions = "share this session" if args.shared_session else "each in its own session"
            print(f"sessions: Xvfb and mpv {sessions}; sched_autogroup_enabled "
                  f"{autogroup.read_text().strip() if autogroup.exists() else 'n/a'}",
                  flush=True)

            player_pids = [xvfb.pid, mpv.pid]
            out = root / "out"
            runs = 0

            def encoder(nice: int, threads: int) -> Callable[[], int]:
                def run() -> int:
                    nonlocal runs
                    runs += 1
                    job = EncodeJob(title, package, args.frames, FPS, out / f"{runs}.mp4",
                                    threads=threads)
                    encode(job, nice=nice)
                    job.output.unlink()
                    return job.total_frames
                return run

            on, off = encoder(nice=10, threads=2), encoder(nice=0, threads=0)
            warm = measure(counters, player_pids, on, "warm-up", 0)
            print(f"warm-up encode (limits on, not counted): {warm.seconds:.2f} s", flush=True)
            for r in range(1, args.rounds + 1):
                idle_for = statistics.mean([w.seconds for w in windows if w.frames]
                                           or [warm.seconds])
                order = [("ON", on), ("OFF", off)]
                if r % 2 == 0:
                    order.reverse()
                for condition, run in [("idle", idler(idle_for)), *order]:
                    time.sleep(SETTLE)
                    window = measure(counters, player_pids, run, condition, r)
                    windows.append(window)
                    counts = ", ".join(f"{h} {cell(window, n, counters.seen)}"
                                       for h, n in zip(HEADS, COUNTERS, strict=True))
                    print(f"  round {r} {condition:<4} {window.seconds:5.2f} s; {counts}",
                          flush=True)
            time.sleep(SETTLE)
            windows.append(measure(counters, player_pids, stopper(mpv.pid, 0.3), "stop", 0))
            time.sleep(SETTLE)
            # Quit mpv so it writes all its stats; its last line is about now on its clock.
            counters.poll()
            seen = set(counters.seen)
            file_starts = list(counters.file_starts)
            for reporter in reporting:
                reporter.stop()
            screen.close()
            screen = None
            quit_at = time.monotonic()
            with contextlib.suppress(MpvError):
                ipc.command("quit")
            mpv.wait(10)
        finally:
            if counters is not None:
                counters.close()
            if screen is not None:
                screen.close()
            children.stop()
        flips, last = read_flips(stats)
    guessed = 10.0 - launched  # mpv's clock reads 10 s when it starts
    offset = last - quit_at
    if not -1.0 < offset - guessed <= 0.01:
        offset = guessed  # quit did not land as expected: fall back to the start time
    print(f"mpv clock: {len(flips)} pictures flipped; its clock started "
          f"{(guessed - offset) * 1e3:.0f} ms after launch (aligned by its quit)")
    add_flips(windows, flips, offset, file_starts)
    report(windows, seen, args)


def cell(window: Window, name: str, seen: set[str]) -> str:
    return str(window.counts[name]) if name in seen else "n/a"


HEADER = (f"{'round':>5} {'cond':<5} {'seconds':>7} {'enc fps':>7} {'ffmpeg':>6} {'player':>6} "
          f"{' '.join(f'{h:>8}' for h in HEADS)} {'shown':>5} {'late':>4} {'longest':>7} "
          f"{'slip':>5}  changes")


def row(window: Window, seen: set[str]) -> str:
    fps = f"{window.fps:7.0f}" if window.frames else f"{'-':>7}"
    cpu = f"{window.ffmpeg_cpu / window.seconds * 100:5.0f}%" if window.frames else f"{'-':>6}"
    drops = " ".join(f"{cell(window, name, seen):>8}" for name in COUNTERS)
    changes = ", ".join(f"{held * 1e3:.0f}" for held in window.changes) or "-"
    return (f"{window.round or '-':>5} {window.condition:<5} {window.seconds:7.2f} {fps} {cpu} "
            f"{window.player_cpu / window.seconds * 100:5.0f}% {drops} {window.shown:>5} "
            f"{window.late:>4} {window.longest * 1e3:5.0f}ms {window.slip:5.2f}  {changes}")


def report(windows: list[Window], seen: set[str], args: argparse.Namespace) -> None:
    print()
    print("ON   = the processor's default: encode(nice=10) -> nice -n 10 ionice -c2 -n7, "
          "ffmpeg -threads 2")
    print("OFF  = encode(nice=0) -> no nice/ionice, ffmpeg -threads 0 (auto: all cores)")
    print("stop = control: mpv stopped (SIGSTOP) for 0.3 s")
    print(f"package: {args.frames} frames 1280x720 + 4 s title card at {FPS} fps. "
          "ffmpeg, player: CPU as % of one core (player = mpv + Xvfb).")
    print(f"counters: increments over IPC. shown: pictures flipped; late: held >= "
          f"{LATE * 1e3:.0f} ms; longest: longest held; slip: seconds held beyond {FRAME * 1e3:.0f}"
          f" ms; changes: ms held at a file change (not in late/longest)")
    print(HEADER)
    for window in windows:
        print(row(window, seen))
    print()
    summary: dict[str, tuple[int, int]] = {}
    for condition in ("idle", "ON", "OFF"):
        chosen = [w for w in windows if w.condition == condition]
        if not chosen:
            continue
        seconds = sum(w.seconds for w in chosen)
        dropped = sum(w.counts[n] for w in chosen
                      for n in ("frame-drop-count", "decoder-frame-drop-count") if n in seen)
        late = sum(w.late for w in chosen)
        summary[condition] = dropped, late
        speed = (f"encode median {statistics.median(w.seconds for w in chosen):.2f} s, "
                 f"{statistics.median(w.fps for w in chosen):.0f} frames/s, ffmpeg CPU "
                 f"{sum(w.ffmpeg_cpu for w in chosen) / seconds * 100:.0f}%; "
                 if chosen[0].frames else "")
        print(f"{condition:<4}: {len(chosen)} windows, {seconds:.1f} s; {speed}"
              f"dropped {dropped}; pictures {sum(w.shown for w in chosen)}, late {late}, "
              f"longest {max(w.longest for w in chosen) * 1e3:.0f} ms, "
              f"slip {sum(w.slip for w in chosen):.2f} s")
    on, off, idle = (summary.get(c, (-1, -1)) for c in ("ON", "OFF", "idle"))
    print(f"dropped (VO + decoder) / late pictures: limits ON {on[0]} / {on[1]}, "
          f"OFF {off[0]} / {off[1]}, idle {idle[0]} / {idle[1]} -> aim (none dropped with "
          f"the limits on): {'MET' if on[0] == 0 else 'NOT met'}; none late with the limits "
          f"on: {'yes' if on[1] == 0 else 'no'}")


if __name__ == "__main__":
    main()
