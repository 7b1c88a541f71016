"""The station kiosk: thumbnail decoding, the preview frame rate under Xvfb, memory over a day.

1. Thumbnail decode of 1920x1080 camera-like JPEGs (q90, noise and shapes, ~370 KB):
   `stations.thumbs.thumbnail` (JPEG draft mode, then a bilinear fit) against a full decode
   plus a resize to the same size, the same frames interleaved in the same run; ms per
   frame (wall and CPU) and the ratio; what the decoder alone costs at each DCT scale (the
   floor any draft decode stands on); how close the thumbnails are to a full-quality one.
2. Under Xvfb (1280x800x24), a real `Kiosk` (FakeCamera 1920x1080, keyboard buttons,
   1280x800 window): the live-view loop rate while shooting (target 15 fps, GO posted
   through the queue, captures on the worker thread, as in real use), then 600 frames shot
   straight through the flow and the Kiosk's thumbnail cache, then the 10 fps replay
   (Action.PLAY through the queue): played frames per second, the time between them, the
   time of `Kiosk._draw`, and the CPU each replayed frame costs (the kiosk's process and
   the X server). The Tk main loop runs as in `stations.kiosk.run`.
3. Resident memory over capture/delete cycles in that Kiosk (capture -> flow.captured ->
   thumbs.add, then Action.UNDO -> thumbs.drop, the Tk loop running between cycles), with a
   full thumbnail cache: RSS after 100 and after 1,000 cycles (aim: at most 10 MB growth).
4. The publish question (Action.FINISH) with that movie looping from the thumbnails at
   kiosk.fps: pictures per second and the time of `Kiosk._draw`; RSS after it.
Usage: python bench/station.py [--frames 600] [--cycles 1000] [--decode-frames 12]
"""

from __future__ import annotations

import argparse
import gc
import io
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
import tkinter as tk
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))  # tests.services: the throwaway Xvfb

import PIL  # noqa: E402
from PIL import Image  # noqa: E402

from bench.frames import camera_frames  # noqa: E402
from stations.buttons import KeyboardButtons  # noqa: E402
from stations.camera import FakeCamera  # noqa: E402
from stations.flow import Action, Command, Flow, Screen  # noqa: E402
from stations.kiosk import LIVE_FPS, Kiosk  # noqa: E402
from stations.render import Renderer, fit  # noqa: E402
from stations.thumbs import Thumbnails, fitted, thumbnail  # noqa: E402
from tests.images import difference, reencoded  # noqa: E402
from tests.services import XvfbDisplay  # noqa: E402

FRAME = (1920, 1080)
WINDOW = (1280, 800)


# --- helpers ------------------------------------------------------------------------------


def photo_frames(count: int, size: tuple[int, int] = FRAME) -> list[bytes]:
    """Camera-like 1080p frames of about 380 KB (q90)."""
    return camera_frames(count, size, seed=7, shapes=40, radius=(30, 300), step=5, noise=40,
                         blend=0.18, blur=0.7)


def full_decode(jpeg: bytes, size: tuple[int, int]) -> Image.Image:
    """The slow way: decode every pixel, then resize (Pillow's default filter, bicubic)."""
    with Image.open(io.BytesIO(jpeg)) as image:
        image.load()
        full = image.convert("RGB")
    return full.resize(size)


def decode_at(jpeg: bytes, scale: int) -> Image.Image:
    """The decoder alone at one DCT scale (1, 2, 4, 8): no conversion, no resize."""
    with Image.open(io.BytesIO(jpeg)) as image:
        image.draft("RGB", (image.width // scale, image.height // scale))
        image.load()
        return image


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb() -> float:
    """Resident memory of this process (VmRSS), in MB, after a full collection."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS in /proc/self/status")


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def ms(values: list[float]) -> str:
    """p50 / p95 / max of durations in seconds, as milliseconds."""
    return (f"p50 {pct(values, 50) * 1e3:.1f} ms, p95 {pct(values, 95) * 1e3:.1f} ms, "
            f"max {max(values) * 1e3:.1f} ms")


def rate(stamps: list[float]) -> float:
    """Events per second over a list of time stamps."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def gaps(stamps: list[float]) -> list[float]:
    """Time between consecutive stamps."""
    return [b - a for a, b in itertools.pairwise(stamps)]


# --- 1. thumbnail decoding ----------------------------------------------------------------


def bench_decode(count: int, rounds: int) -> None:
    frames = photo_frames(count)
    size, share = Thumbnails().size, Thumbnails().share  # the Kiosk's thumbnails
    out = thumbnail(frames[0], size, share).size
    draft: list[float] = []
    full: list[float] = []
    draft_cpu: list[float] = []
    full_cpu: list[float] = []
    for r in range(rounds):
        for i, jpeg in enumerate(frames):
            order = (True, False) if (i + r) % 2 == 0 else (False, True)
            for use_draft in order:  # interleaved, alternating which goes first
                start, cpu = time.perf_counter(), time.process_time()
                image = thumbnail(jpeg, size, share) if use_draft else full_decode(jpeg, out)
                took, used = time.perf_counter() - start, time.process_time() - cpu
                assert image.size == out
                (draft if use_draft else full).append(took)
                (draft_cpu if use_draft else full_cpu).append(used)
    scales: dict[int, list[float]] = {1: [], 2: [], 4: [], 8: []}
    for _ in range(rounds):
        for jpeg in frames:
            for scale, spent in scales.items():
                cpu = time.process_time()
                decode_at(jpeg, scale)
                spent.append(time.process_time() - cpu)
    quality, shown = [], []
    stage = Renderer(WINDOW).stage
    for jpeg in frames[:4]:
        with Image.open(io.BytesIO(jpeg)) as image:
            whole = image.convert("RGB")
        best = whole.resize(out, Image.Resampling.LANCZOS)
        ours = thumbnail(jpeg, size, share)
        quality.append((difference(best, ours), difference(best, full_decode(jpeg, out))))
        # What the replay shows: the kept q80 JPEG, scaled to the stage by the renderer.
        on_stage = fit(reencoded(ours), stage)
        ideal = whole.resize(on_stage.size, Image.Resampling.LANCZOS)
        full_quality = fit(reencoded(whole.resize(size, Image.Resampling.LANCZOS)), stage)
        shown.append((difference(ideal, on_stage), difference(ideal, full_quality)))
    cache = Thumbnails()
    add: list[float] = []
    get: list[float] = []
    for i, jpeg in enumerate(frames):
        start = time.perf_counter()
        cache.add(i, jpeg)
        add.append(time.perf_counter() - start)
    for _ in range(rounds):
        for i in range(len(frames)):
            start = time.perf_counter()
            cache.get(i)
            get.append(time.perf_counter() - start)
    kept = sum(len(cache._frames[i]) for i in range(len(frames))) / len(frames)
    d, f = statistics.median(draft), statistics.median(full)
    dc, fc = statistics.median(draft_cpu), statistics.median(full_cpu)
    print(f"1. thumbnail decode, {count} frames {FRAME[0]}x{FRAME[1]} q90 "
          f"({sum(map(len, frames)) / count / 1e3:.0f} KB each) -> {out[0]}x{out[1]}, "
          f"{rounds} rounds, median per frame:")
    print(f"   draft mode (stations.thumbs.thumbnail): {d * 1e3:.1f} ms ({dc * 1e3:.1f} ms CPU)")
    print(f"   full decode + resize (open, load, resize): {f * 1e3:.1f} ms "
          f"({fc * 1e3:.1f} ms CPU)")
    print(f"   ratio full/draft: {f / d:.2f}x (CPU: {fc / dc:.2f}x)")
    least = int(fitted(FRAME, size)[0] * share)  # the DCT scale the kiosk decodes at:
    used = max(scale for scale in scales if -(-FRAME[0] // scale) >= least)
    print("   the decoder alone, CPU per frame at DCT scale "
          + ", ".join(f"1/{scale}: {statistics.median(spent) * 1e3:.1f} ms"
                      for scale, spent in scales.items())
          + f" (the kiosk's thumbnails: 1/{used}; full/draft if nothing but decoding "
          f"cost: {fc / statistics.median(scales[used]):.2f}x)")
    worst_draft = min(q[0][0] for q in quality), max(q[0][1] for q in quality)
    worst_full = min(q[1][0] for q in quality), max(q[1][1] for q in quality)
    print(f"   against a full decode + Lanczos resize (worst of 4 frames): draft "
          f"{worst_draft[0]:.1f} dB PSNR, {worst_draft[1]:.2f} grey levels off on average; "
          f"full + bicubic {worst_full[0]:.1f} dB, {worst_full[1]:.2f}")
    ours_shown = min(q[0][0] for q in shown), max(q[0][1] for q in shown)
    best_shown = min(q[1][0] for q in shown), max(q[1][1] for q in shown)
    print(f"   on the {stage[0]}x{stage[1]} stage (the kept q{Thumbnails().quality} JPEG as the "
          f"replay shows it) against the frame scaled straight to it: these thumbnails "
          f"{ours_shown[0]:.1f} dB, {ours_shown[1]:.2f} grey levels; full-quality "
          f"{size[0]}x{size[1]} ones {best_shown[0]:.1f} dB, {best_shown[1]:.2f}")
    print(f"   Thumbnails.add (draft decode + q{cache.quality} re-encode): "
          f"{statistics.median(add) * 1e3:.1f} ms; Thumbnails.get (replay decode): "
          f"{statistics.median(get) * 1e3:.2f} ms; kept thumbnail {kept / 1e3:.0f} KB",
          flush=True)


# --- 2. and 3. the Kiosk under Xvfb -------------------------------------------------------


class TimedKiosk(Kiosk):
    """The real Kiosk, recording when each picture is drawn and how long drawing takes."""

    def __init__(self, root: tk.Tk, flow: Flow, camera: FakeCamera) -> None:
        self.draws: list[tuple[float, float, Screen, bool]] = []  # start, took, screen, played
        self.ticks: list[tuple[float, float, Screen]] = []  # start, took, screen before
        self.draw_cpu: list[float] = []  # the Tk thread's CPU in each _draw
        super().__init__(root, flow, camera, KeyboardButtons(), "https://movies.test",
                         size=WINDOW, fullscreen=False)

    def _tick(self) -> None:
        screen = self.flow.screen
        start = time.perf_counter()
        super()._tick()
        self.ticks.append((start, time.perf_counter() - start, screen))

    def _draw(self) -> None:
        screen, index = self.flow.screen, self._play_index
        start, cpu = time.perf_counter(), time.thread_time()
        super()._draw()
        played = screen is Screen.PLAYING and self._play_index > index
        self.draws.append((start, time.perf_counter() - start, screen, played))
        self.draw_cpu.append(time.thread_time() - cpu)


def run_loop(root: tk.Tk, until: Callable[[], bool], timeout: float,
             every: Callable[[], None] | None = None) -> None:
    """Run Tk's main loop (as the station does) until `until()` holds; check every 5 ms."""
    deadline = time.monotonic() + timeout
    timed_out = False

    def check() -> None:
        nonlocal timed_out
        if every is not None:
            every()
        if until():
            root.quit()
        elif time.monotonic() > deadline:
            timed_out = True
            root.quit()
        else:
            root.after(5, check)

    root.after(5, check)
    root.mainloop()
    if timed_out:
        raise SystemExit(f"the kiosk did not get there in {timeout:.0f} s")


def live_rate(kiosk: TimedKiosk, seconds: float, press_every: float | None) -> None:
    """Run the shooting screen for `seconds`; press GO every `press_every` s if given."""
    flow = kiosk.flow
    start_frames = flow.frames
    begin = time.perf_counter()
    last_press = begin - (press_every or 0)

    def press() -> None:
        nonlocal last_press
        now = time.perf_counter()
        if press_every is not None and now - last_press >= press_every:
            kiosk.post(Action.GO)  # as a button does; the capture runs on the worker thread
            last_press = now

    first = len(kiosk.draws)
    run_loop(kiosk.root, lambda: time.perf_counter() - begin >= seconds, seconds + 30, press)
    run_loop(kiosk.root, lambda: not flow.busy and kiosk.inbox.empty(), 30)
    draws = [d for d in kiosk.draws[first:] if d[2] is Screen.SHOOTING]
    stamps = [d[0] for d in draws]
    what = (f"GO every {press_every:.1f} s, {flow.frames - start_frames} captures"
            if press_every else "no presses")
    print(f"   live view ({what}): {rate(stamps):.1f} fps (target {LIVE_FPS}); "
          f"between pictures {ms(gaps(stamps))}; _draw {ms([d[1] for d in draws])}",
          flush=True)


def bench_question(kiosk: TimedKiosk, seconds: float) -> None:
    """The publish question for `seconds`, the movie looping in it at kiosk.fps."""
    flow = kiosk.flow
    first = len(kiosk.draws)
    kiosk.post(Action.FINISH)
    run_loop(kiosk.root, lambda: flow.screen is Screen.FINISH, 10)
    begin = time.perf_counter()
    run_loop(kiosk.root, lambda: time.perf_counter() - begin >= seconds, seconds + 30)
    draws = [d for d in kiosk.draws[first:] if d[2] is Screen.FINISH][1:]  # the first lays out
    stamps = [d[0] for d in draws]
    print(f"4. the publish question, a {flow.frames}-frame movie looping at {flow.fps} fps: "
          f"{rate(stamps):.2f} pictures/s; between them {ms(gaps(stamps))}; "
          f"_draw {ms([d[1] for d in draws])}; RSS {rss_mb():.1f} MB", flush=True)


def bench_kiosk(frames: int, cycles: int, live_seconds: float, tmp: Path,
                question_seconds: float = 10.0) -> None:
    os.environ.pop("NOTIFY_SOCKET", None)  # never ping a real systemd from a benchmark
    with XvfbDisplay(tmp / "xvfb") as xvfb:
        os.environ["DISPLAY"] = xvfb.display
        root = tk.Tk()
        kiosk: TimedKiosk | None = None
        try:
            flow = Flow(tmp / "outbox", "bench", frame_limit=frames)
            camera = FakeCamera(size=FRAME, preview_size=(640, 360))
            kiosk = TimedKiosk(root, flow, camera)
            kiosk.start()
            run_loop(root, lambda: kiosk is not None and kiosk.frames_drawn > 3, 10)
            kiosk.post(Action.GO)  # attract -> shooting
            run_loop(root, lambda: flow.screen is Screen.SHOOTING, 10)
            print(f"2. Kiosk {WINDOW[0]}x{WINDOW[1]} under Xvfb {xvfb.width}x{xvfb.height}x24, "
                  f"FakeCamera {FRAME[0]}x{FRAME[1]}, thumbnails of at most "
                  f"{kiosk.thumbs.size[0]}x{kiosk.thumbs.size[1]}:")
            live_rate(kiosk, live_seconds, press_every=0.5)
            live_rate(kiosk, live_seconds / 2, press_every=None)

            start = time.perf_counter()
            while flow.frames < frames:  # what `_act` + the worker + `_drain` do, minus waits
                if flow.handle(Action.GO) is not Command.CAPTURE:
                    raise SystemExit(f"no capture at frame {flow.frames}: {flow.screen}")
                jpeg = camera.capture()
                index = flow.captured(jpeg)
                if index < 0:
                    raise SystemExit(f"capture failed: {flow.error}")
                kiosk.thumbs.add(index, jpeg)
                if index % 10 == 0:
                    root.update()
            shot = time.perf_counter() - start
            kept = kiosk.thumbs.get(0)
            print(f"   shot to {flow.frames} frames ({len(kiosk.thumbs)} thumbnails cached, "
                  f"{kept.size[0] if kept else 0}x{kept.size[1] if kept else 0}) in "
                  f"{shot:.1f} s", flush=True)

            first, first_tick = len(kiosk.draws), len(kiosk.ticks)
            play_fps = flow.fps  # the replay runs at kiosk.fps
            assert xvfb.process is not None
            kiosk.post(Action.PLAY)
            run_loop(root, lambda: flow.screen is Screen.PLAYING, 10)
            cpu, x_cpu = time.process_time(), cpu_seconds(xvfb.process.pid)
            run_loop(root, lambda: flow.screen is not Screen.PLAYING, frames / play_fps * 3)
            cpu, x_cpu = time.process_time() - cpu, cpu_seconds(xvfb.process.pid) - x_cpu
            played = [d for d in kiosk.draws[first:] if d[3]]
            draw_cpu = [c for d, c in zip(kiosk.draws[first:], kiosk.draw_cpu[first:],
                                          strict=True) if d[3]]
            stamps = [d[0] for d in played]
            between = gaps(stamps)
            late = sum(1 for g in between if g > 1.5 / play_fps)
            print(f"   replay of {frames} frames: {len(played)} played in "
                  f"{stamps[-1] - stamps[0]:.1f} s = {rate(stamps):.2f} fps (target {play_fps}, "
                  f"ideal {(frames - 1) / play_fps:.1f} s)")
            print(f"   between played frames {ms(between)}; {late} longer than "
                  f"{1.5 / play_fps * 1e3:.0f} ms")
            print(f"   Kiosk._draw of a played frame {ms([d[1] for d in played])}")
            print(f"   CPU per replayed frame: the kiosk's process "
                  f"{cpu / len(played) * 1e3:.1f} ms "
                  f"(_draw alone p50 {pct(draw_cpu, 50) * 1e3:.1f} ms), the X server "
                  f"{x_cpu / len(played) * 1e3:.1f} ms; at {play_fps} fps "
                  f"{(cpu + x_cpu) / (stamps[-1] - stamps[0]) * 100:.0f}% of one core")
            work = [t[1] for t in kiosk.ticks[first_tick:] if t[2] is Screen.PLAYING]
            print(f"   whole _tick while playing {ms(work)}; the next tick is scheduled "
                  f"{1000 // play_fps} ms after the last one was due", flush=True)

            # 3. memory: capture/delete cycles with a full cache, the Tk loop running between
            kiosk._act(Action.UNDO)
            rss: dict[int, float] = {0: rss_mb()}
            drawn = kiosk.frames_drawn
            start = time.perf_counter()
            for cycle in range(1, cycles + 1):
                if flow.handle(Action.GO) is not Command.CAPTURE:
                    raise SystemExit(f"no capture in cycle {cycle}: {flow.screen}")
                jpeg = camera.capture()
                index = flow.captured(jpeg)
                kiosk.thumbs.add(index, jpeg)
                root.update()
                kiosk._act(Action.UNDO)  # flow.handle(UNDO) -> delete_last_frame, thumbs.drop
                root.update()
                if flow.screen is not Screen.SHOOTING or flow.frames != frames - 1:
                    raise SystemExit(f"cycle {cycle}: {flow.screen}, {flow.frames} frames")
                if cycle % 100 == 0:
                    rss[cycle] = rss_mb()
            took = time.perf_counter() - start
            print(f"3. {cycles} capture/delete cycles in the Kiosk at {frames - 1}/{frames} "
                  f"frames ({took / cycles * 1e3:.0f} ms each, "
                  f"{kiosk.frames_drawn - drawn} live-view pictures drawn meanwhile):")
            print("   RSS every 100 cycles (MB): "
                  + ", ".join(f"{rss[c]:.1f}" for c in sorted(rss)))
            if 100 in rss and cycles in rss:
                growth = rss[cycles] - rss[100]
                print(f"   RSS after 100: {rss[100]:.1f} MB, after {cycles}: {rss[cycles]:.1f} MB,"
                      f" growth {growth:+.1f} MB (aim <= 10 MB)", flush=True)
            bench_question(kiosk, question_seconds)
        finally:
            if kiosk is not None:
                kiosk.close()
            root.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600, help="the movie for the replay")
    parser.add_argument("--cycles", type=int, default=1000, help="capture/delete cycles")
    parser.add_argument("--decode-frames", type=int, default=12)
    parser.add_argument("--decode-rounds", type=int, default=5)
    parser.add_argument("--live-seconds", type=float, default=6.0)
    parser.add_argument("--question-seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.platform()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, Pillow {PIL.__version__}, Tk {tk.TkVersion}",
          flush=True)
    began = time.perf_counter()
    bench_decode(args.decode_frames, args.decode_rounds)
    with tempfile.TemporaryDirectory(prefix="stopmo-bench-station-") as tmp:
        bench_kiosk(args.frames, args.cycles, args.live_seconds, Path(tmp),
                    args.question_seconds)
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
