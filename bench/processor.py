"""`processor process` end to end against bare ffmpeg, same frames and settings; the steps.

A 100-frame 1280x720 package, several runs. Each run times, in alternating order:
- `python -m processor process` end to end (Python as installed: from bytecode);
- bare ffmpeg with the title card as a PNG looped for 4 s (`-loop 1 -t 4`), the command of
  the field notes and the issue's baseline; and bare ffmpeg with the card as raw pixels
  read once (the processor's own ffmpeg command, its card from a file instead of stdin);
- the same `process` once more in a tracing harness that times each step, for the
  per-step breakdown (self times: a step's nested steps are listed on their own; steps on
  other threads overlap the main thread's).
It prints the median ratios of wall time (aim <= 1.05) and of CPU time (a shared machine
stretches the first far more than the second), the breakdown, encode speed, peak memory,
what importing costs from source and from bytecode, and what the frame rule's decode check
adds (the header walk, plus ffmpeg's fatal-decode options) against the encode (aim < 5 %).
First, the title card's cost per movie, in this process as the daemon draws it: the first
card (fonts found, background drawn) and the next ones.
Usage: python bench/processor.py [--runs 7] [--frames 100] [--cards 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# This file is named like the package it measures: keep its folder off the import path.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))  # bench.frames

from bench.frames import camera_frames, write_package  # noqa: E402
from moviepkg.ids import movie_code  # noqa: E402
from moviepkg.reader import read_package  # noqa: E402
from processor.encode import TITLE_SECONDS, EncodeJob, ffmpeg_args, low_priority  # noqa: E402
from processor.frames import check_frames  # noqa: E402
from processor.titlecard import (  # noqa: E402
    TitleCard,
    movie_page,
    render_title_card,
    save_title_card,
)

MEASURE = ("import resource, subprocess, sys, time\n"
           "start = time.perf_counter()\n"
           "stdin = open(sys.argv[1], 'rb') if sys.argv[1] != '-' else subprocess.DEVNULL\n"
           "code = subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.DEVNULL)"
           ".returncode\n"
           "took = time.perf_counter() - start\n"
           "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
           "print(code, took, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)\n")

# Run `processor process PACKAGE` with a timer around each named function; write the spans.
# time.monotonic() is CLOCK_MONOTONIC, one clock for every process on the machine, so the
# bench can tell interpreter start-up (before the first line) and exit (after the last).
TRACE = """\
import time
STARTED = time.monotonic()
import functools, importlib, importlib.util, json, sys, threading
out, targets, package = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
import processor.cli
IMPORTED = time.monotonic()
spans = []
def timed(function, label):
    @functools.wraps(function)
    def run(*args, **kwargs):
        began = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            spans.append((label, began, time.monotonic(), threading.get_ident()))
    return run
def patch(module, path, label):
    owner = module
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
    if isinstance(original, classmethod):
        setattr(owner, name, classmethod(timed(original.__func__, label)))
    else:
        setattr(owner, name, timed(original, label))
later = {}  # modules imported only when needed (Pillow's): patched once they are
for dotted, label in targets:
    module, _, path = dotted.partition(":")
    if module in sys.modules:
        patch(sys.modules[module], path, label)
    else:
        later.setdefault(module, []).append((path, label))
class OnImport:
    def find_spec(self, name, path=None, target=None):
        if name not in later:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module
        def exec_module(module, run=run, wanted=later.pop(name)):
            run(module)
            for path, label in wanted:
                patch(module, path, label)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, OnImport())
MAIN = time.monotonic()
code = processor.cli.main(["process", package])
ENDED = time.monotonic()
with open(out, "w") as fh:
    json.dump({"started": STARTED, "imported": IMPORTED, "main": MAIN, "ended": ENDED,
               "code": code, "main_thread": threading.main_thread().ident, "spans": spans,
               "never_imported": sorted(later)}, fh)
"""
# What the tracing harness times: function (module:attribute) and the step it is.
STEPS = [
    ("processor.cli:load_settings", "settings"),
    ("processor.cli:open_store", "open the store"),
    ("processor.cli:default_fonts", "fonts looked for"),
    ("processor.cli:Pipeline.__init__", "pipeline set-up"),
    ("processor.pipeline:Pipeline.clean_up", "clean up leftovers"),
    ("processor.pipeline:read_package", "validate: sha256 and markers of every frame"),
    ("processor.pipeline:folder_stamp", "folder stamps (validated once)"),
    ("processor.pipeline:move_or_copy", "move into the work dir"),
    ("processor.state:StateStore.save", "state saves (fsync)"),
    ("processor.pipeline:Pipeline.encoder", "encoder choice"),
    ("processor.encode:check_frames", "frame rule: header walk"),
    ("processor.encode:_encode", "ffmpeg, start to exit"),
    ("processor.encode:_feed", "title card thread: Pillow import, then waits for ffmpeg"),
    ("processor.titlecard:render_title_card", "title card: draw"),
    ("processor.encode:read_movie", "check the movie from its index"),
    ("processor.encode:fsync_file", "movie fsync"),
    ("processor.poster:save_poster", "poster"),
    ("processor.movie:MovieRecord.for_package", "movie record"),
    ("processor.pipeline:Pipeline._show", "to the screen"),
    ("processor.publishing:PublishQueue.publish", "publish to the folder store"),
]


def photo_frames(count: int, size: tuple[int, int] = (1280, 720)) -> list[bytes]:
    """Camera-like frames for this benchmark."""
    return camera_frames(count, size)


def measure(command: list[str], env: dict[str, str], stdin: Path | None = None
            ) -> tuple[float, int, float]:
    """Run command; return (seconds, peak RSS in KB, CPU seconds) of it and its children."""
    done = subprocess.run([sys.executable, "-c", MEASURE, str(stdin or "-"), *command],
                          env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    code, took, peak, cpu = done.stdout.split()
    if code != "0":
        raise SystemExit(f"{command[:3]} failed with {code}: {done.stderr[-2000:]}")
    return float(took), int(peak), float(cpu)


CARD_TITLES = ("Benchmark movie", "הסרט של נועה על הדרקון", "فيلم نور عن التنين", None)
LANGUAGES = ("en", "he", "ar", "he")


def card_times(count: int, folder: Path) -> tuple[float, list[float], list[float]]:
    """Draw count title cards as the pipeline does, to raw pixels for ffmpeg (with a logo;
    every other one PUBLISH, with its code and QR code); return the CPU seconds of the first
    card and of the later PUBLISH and NOPUBLISH ones."""
    from PIL import Image

    logo = folder / "logo.png"
    Image.new("RGBA", (600, 300), (250, 120, 30, 255)).save(logo)
    when = datetime(2026, 12, 2, 13, 42, tzinfo=UTC)
    first, public, private = 0.0, list[float](), list[float]()
    for n in range(count):
        code = movie_code(f"bench-{n}") if n % 2 else ""
        card = TitleCard(CARD_TITLES[n % 4], f"st-{n % 12 + 1}", when + timedelta(minutes=n),
                         "Jerusalem Film Festival", logo, language=LANGUAGES[n % 4],
                         station_name="Dragon table" if n % 3 else "", code=code,
                         page_url=movie_page("https://movies.example.org", code))
        started = time.process_time()
        render_title_card(card).tobytes()
        took = time.process_time() - started
        if n == 0:
            first = took
        else:
            (public if code else private).append(took)
    return first, public, private


def without_decode_check(args: list[str]) -> list[str]:
    """The same ffmpeg command without the options that make decode errors fatal."""
    out: list[str] = []
    skip = 0
    for arg in args:
        if skip:
            skip -= 1
        elif arg in ("-err_detect", "-max_pixels"):
            skip = 1
        elif arg != "-xerror":
            out.append(arg)
    return out


def raw_title_args(job: EncodeJob) -> list[str]:
    """The processor's own ffmpeg command (its card then read from a file on stdin)."""
    return [arg for arg in ffmpeg_args(job, job.output) if arg not in ("-progress", "pipe:1")]


def looped_png_args(job: EncodeJob, title_png: Path) -> list[str]:
    """The bare command of the field notes: the card as a PNG file looped for its seconds,
    then the frames, with the processor's filters, x264 settings and decode checks."""
    args = raw_title_args(job)
    args[args.index("rawvideo") - 1:args.index("pipe:0") + 1] = [
        "-loop", "1", "-framerate", str(job.fps), "-t", str(TITLE_SECONDS), "-i", str(title_png)]
    graph = args.index("-filter_complex") + 1
    loop = f",loop=loop={TITLE_SECONDS * job.fps - 1}:size=1:start=0,setpts=N/{job.fps}/TB"
    if loop not in args[graph]:
        raise SystemExit(f"the processor's filter graph changed: {args[graph]}")
    args[graph] = args[graph].replace(loop, "")
    return args


@dataclass(slots=True)
class _Span:
    label: str
    start: float
    end: float
    thread: int
    inner: float = 0.0  # time of the steps nested in it


def self_times(spans: list[list[Any]], main_thread: int) -> dict[str, float]:
    """Each step's own time in one traced run (its nested steps taken out), in seconds."""
    own: dict[str, float] = defaultdict(float)
    stack: list[_Span] = []

    def close(span: _Span) -> None:
        suffix = "" if span.thread == main_thread else " [own thread]"
        own[span.label + suffix] += span.end - span.start - span.inner

    for label, start, end, thread in sorted(spans, key=lambda s: (s[3], s[1], -s[2])):
        while stack and (stack[-1].thread != thread or stack[-1].end <= start):
            close(stack.pop())
        if stack:
            stack[-1].inner += end - start
        stack.append(_Span(label, start, end, thread))
    while stack:
        close(stack.pop())
    return own


def import_times(env: dict[str, str], runs: int) -> tuple[float, float, float]:
    """Median wall seconds of `python -c pass` and of importing processor.cli, from source
    (no bytecode written) and from bytecode."""
    def timed(code: str, environ: dict[str, str]) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=environ, cwd=ROOT, check=True)
        return time.perf_counter() - started

    source = {**env, "PYTHONDONTWRITEBYTECODE": "1",
              "PYTHONPYCACHEPREFIX": env["PYTHONPYCACHEPREFIX"] + "-none"}
    bare = statistics.median(timed("pass", env) for _ in range(runs))
    compiled = statistics.median(timed("import processor.cli", env) for _ in range(runs))
    uncompiled = statistics.median(timed("import processor.cli", source) for _ in range(runs))
    return bare, compiled, uncompiled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cards", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        first, public, private = card_times(args.cards, Path(tmp))
    print(f"title card (CPU time, render to raw pixels, 1280x720, with a logo): first "
          f"{first * 1e3:.1f} ms (fonts found, background drawn); then per movie: PUBLISH "
          f"(code + QR code) median {statistics.median(public) * 1e3:.1f} ms, NOPUBLISH "
          f"median {statistics.median(private) * 1e3:.1f} ms ({args.cards} cards)", flush=True)
    frames = photo_frames(args.frames)
    figures: dict[str, list[float]] = defaultdict(list)
    steps: dict[str, list[float]] = defaultdict(list)
    peaks_ours, peaks_bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # As installed (pip compiles to bytecode): this machine's PYTHONDONTWRITEBYTECODE
        # would make every run compile the processor's modules again (see import times).
        base_env = {key: value for key, value in os.environ.items()
                    if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("STOPMO_")}
        base_env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        for run in range(-1, args.runs):  # run -1 writes the bytecode: not counted
            package = write_package(root / f"outbox-{run}", frames)  # for bare ffmpeg
            taken = write_package(root / f"outbox-taken-{run}", frames)  # moved by `process`
            traced = write_package(root / f"outbox-traced-{run}", frames)
            created_at = read_package(package).manifest.created_at
            card = TitleCard("Benchmark movie", "bench", created_at)
            title_png = save_title_card(card, root / f"title-{run}.png")
            title_raw = root / f"title-{run}.rgb"
            title_raw.write_bytes(render_title_card(card).tobytes())
            job = EncodeJob(title_png=None, frames_dir=package, frame_count=args.frames,
                            fps=10, output=root / f"bare-{run}.mp4", threads=args.threads)
            env = {**base_env, "STOPMO_INBOX": str(root / "inbox"),
                   "STOPMO_WORK_DIR": str(root / f"work-{run}"),
                   "STOPMO_FFMPEG_THREADS": str(args.threads),
                   "STORAGE_URL": (root / f"store-{run}").as_uri()}
            nice = low_priority(10)
            png = nice + looped_png_args(job, title_png)
            raw = nice + raw_title_args(job)
            plain = without_decode_check(raw)
            ours = [sys.executable, "-m", "processor", "process", str(taken)]
            trace_out = root / f"trace-{run}.json"
            tracer = [sys.executable, "-c", TRACE, str(trace_out), json.dumps(STEPS),
                      str(traced)]
            started_cpu = time.process_time()
            check_frames(package, args.frames)
            walk_cpu = time.process_time() - started_cpu
            timings: dict[str, tuple[float, int, float]] = {}
            order = [("png", png, None), ("raw", raw, title_raw), ("plain", plain, title_raw),
                     ("ours", ours, None)]
            for name, command, stdin in (order if run % 2 else order[::-1]):
                timings[name] = measure(command, env, stdin)
            env["STOPMO_WORK_DIR"] = str(root / f"work-traced-{run}")
            env["STORAGE_URL"] = (root / f"store-traced-{run}").as_uri()
            started = time.monotonic()
            subprocess.run(tracer, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            finished = time.monotonic()
            if run < 0:
                continue
            trace = json.loads(trace_out.read_text())
            if trace["code"] != 0 or trace["never_imported"]:
                raise SystemExit(f"the traced run failed with {trace['code']} (modules never "
                                 f"imported: {trace['never_imported']})")
            own = self_times(trace["spans"], trace["main_thread"])
            own["Python start-up (to the first line)"] = trace["started"] - started
            own["imports (processor.cli and what it imports)"] = \
                trace["imported"] - trace["started"]
            own["exit (interpreter shutdown)"] = finished - trace["ended"]
            timed_main = sum(v for k, v in own.items() if "[own thread]" not in k and k not in (
                "Python start-up (to the first line)",
                "imports (processor.cli and what it imports)", "exit (interpreter shutdown)"))
            own["the rest of main (untimed)"] = trace["ended"] - trace["main"] - timed_main
            own["TOTAL (traced run)"] = finished - started
            for label, value in own.items():
                steps[label].append(value)
            ours_s, png_s, raw_s = timings["ours"][0], timings["png"][0], timings["raw"][0]
            ours_cpu, png_cpu, raw_cpu = (timings[k][2] for k in ("ours", "png", "raw"))
            for key, value in (("ours", ours_s), ("png", png_s), ("raw", raw_s),
                               ("cpu_png", ours_cpu / png_cpu), ("cpu_raw", ours_cpu / raw_cpu),
                               ("cpu_over", ours_cpu - raw_cpu),
                               ("ratio_png", ours_s / png_s), ("ratio_raw", ours_s / raw_s),
                               ("walk", walk_cpu), ("checked_cpu", timings["raw"][2]),
                               ("plain_cpu", timings["plain"][2]),
                               ("check", (walk_cpu + timings["raw"][2] - timings["plain"][2])
                                / timings["plain"][2]),
                               ("fixed", own["TOTAL (traced run)"]
                                - own["ffmpeg, start to exit"])):
                figures[key].append(value)
            peaks_ours.append(timings["ours"][1])
            peaks_bare.append(max(timings["png"][1], timings["raw"][1]))
            print(f"run {run + 1}: processor {ours_s:.2f} s; bare ffmpeg, PNG card {png_s:.2f} s "
                  f"(ratio {ours_s / png_s:.3f}), raw card {raw_s:.2f} s (ratio "
                  f"{ours_s / raw_s:.3f}); traced run {own['TOTAL (traced run)']:.2f} s, of "
                  f"which ffmpeg {own['ffmpeg, start to exit']:.2f} s", flush=True)
        bare, compiled, uncompiled = import_times(base_env, 9)
    median = {key: statistics.median(values) for key, values in figures.items()}
    total = args.frames + TITLE_SECONDS * 10
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, ffmpeg threads {args.threads}")
    print(f"package: {args.frames} frames 1280x720 "
          f"({sum(map(len, frames)) / args.frames / 1e3:.0f} KB each) -> "
          f"{total} frames with the title card")
    print(f"median processor process (end to end, to the folder store): {median['ours']:.2f} s")
    print(f"median bare ffmpeg, card as a PNG looped 4 s (the issue's baseline): "
          f"{median['png']:.2f} s")
    print(f"median bare ffmpeg, card as raw pixels once (the processor's command): "
          f"{median['raw']:.2f} s")
    print(f"median ratio: {median['ratio_png']:.3f} against the PNG command (aim <= 1.05), "
          f"{median['ratio_raw']:.3f} against the raw-pixels command "
          f"(runs: {min(figures['ratio_png']):.3f}-{max(figures['ratio_png']):.3f} and "
          f"{min(figures['ratio_raw']):.3f}-{max(figures['ratio_raw']):.3f})")
    print(f"CPU time (a shared machine stretches wall clocks, much less CPU time): processor "
          f"(Python and ffmpeg) / bare ffmpeg, median {median['cpu_png']:.3f} against the PNG "
          f"command, {median['cpu_raw']:.3f} against the raw-pixels command; the processor "
          f"spends {median['cpu_over'] * 1e3:.0f} ms of CPU more than the latter")
    print(f"per-step breakdown of `processor process` (tracing harness, median of {args.runs} "
          f"runs, ms; self times; [own thread] overlaps the main thread):")
    for label, values in sorted(steps.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {statistics.median(values) * 1e3:8.1f}  {label}")
    print(f"fixed time around ffmpeg (traced run minus ffmpeg's run): median "
          f"{median['fixed'] * 1e3:.0f} ms")
    print(f"import processor.cli (process start to end, median of 9): {compiled * 1e3:.0f} ms "
          f"from bytecode, {uncompiled * 1e3:.0f} ms compiling from source "
          f"(PYTHONDONTWRITEBYTECODE=1, as on this machine's shell); python -c pass "
          f"{bare * 1e3:.0f} ms")
    print(f"encode speed (bare ffmpeg, raw card): {total / median['raw']:.0f} frames/s; "
          f"end to end: {total / median['ours']:.0f} frames/s")
    print(f"decode check (CPU time): header walk {median['walk'] * 1e3:.1f} ms "
          f"({median['walk'] / median['plain_cpu']:.2%} of the encode); ffmpeg "
          f"{median['checked_cpu']:.2f} s with fatal decode errors, "
          f"{median['plain_cpu']:.2f} s without; added cost, median of runs: "
          f"{median['check']:+.2%} of the encode (aim < 5 %)")
    print(f"peak memory: processor and its children {max(peaks_ours) / 1024:.0f} MB, "
          f"bare ffmpeg {max(peaks_bare) / 1024:.0f} MB")


if __name__ == "__main__":
    main()
