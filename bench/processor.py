"""`processor process` end to end against one bare ffmpeg command, same frames, same settings.

A 100-frame 1280x720 package, several runs; prints the median ratio (aim <= 1.15),
the encode speed in frames per second, peak memory, and what the frame rule's decode
check adds (the header walk, plus ffmpeg's fatal-decode options) against the encode
time of the same run (aim < 5 %). First, the title card's cost per movie, in this process
as the daemon renders it: the first card (fonts found, background drawn) and the next ones.
Usage: python bench/processor.py [--runs 5] [--frames 100] [--cards 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# This file is named like the package it measures: keep its folder off the import path.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))  # bench.frames

from bench.frames import camera_frames  # noqa: E402
from moviepkg.ids import movie_code  # noqa: E402
from moviepkg.reader import read_package  # noqa: E402
from moviepkg.writer import PackageWriter  # noqa: E402
from processor.encode import TITLE_SECONDS, EncodeJob, ffmpeg_args, low_priority  # noqa: E402
from processor.frames import check_frames  # noqa: E402
from processor.titlecard import TitleCard, movie_page, save_title_card  # noqa: E402

MEASURE = ("import resource, subprocess, sys, time\n"
           "start = time.perf_counter()\n"
           "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
           "took = time.perf_counter() - start\n"
           "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
           "print(code, took, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)\n")


def photo_frames(count: int, size: tuple[int, int] = (1280, 720)) -> list[bytes]:
    """Camera-like frames for this benchmark."""
    return camera_frames(count, size)


def measure(command: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Run command; return (seconds, peak RSS in KB, CPU seconds) of it and its children."""
    done = subprocess.run([sys.executable, "-c", MEASURE, *command], env=env,
                          capture_output=True, text=True, check=True)
    code, took, peak, cpu = done.stdout.split()
    if code != "0":
        raise SystemExit(f"{command[:3]} failed with {code}")
    return float(took), int(peak), float(cpu)


CARD_TITLES = ("Benchmark movie", "הסרט של נועה על הדרקון", "فيلم نور عن التنين", None)
LANGUAGES = ("en", "he", "ar", "he")


def card_times(count: int, folder: Path) -> tuple[float, list[float], list[float]]:
    """Render and save count title cards as the pipeline does (with a logo; every other one
    PUBLISH, with its code and QR code); return the CPU seconds of the first card and of
    the later PUBLISH and NOPUBLISH ones."""
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
        save_title_card(card, folder / f"card-{n}.png")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cards", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        first, public, private = card_times(args.cards, Path(tmp))
    print(f"title card (CPU time, render + PNG, 1280x720, with a logo): first "
          f"{first * 1e3:.1f} ms (fonts found, background drawn); then per movie: PUBLISH "
          f"(code + QR code) median {statistics.median(public) * 1e3:.1f} ms, NOPUBLISH "
          f"median {statistics.median(private) * 1e3:.1f} ms ({args.cards} cards)", flush=True)
    frames = photo_frames(args.frames)
    ratios, ours, bare, peaks_ours, peaks_bare = [], [], [], [], []
    walks, plain, checked_cpu, check_ratios = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for run in range(args.runs):
            outbox = root / f"outbox-{run}"
            outbox.mkdir()
            writer = PackageWriter.start(outbox, "bench")
            for data in frames:
                writer.add_frame(data)
            writer.finish("Benchmark movie", publish=True)
            package = read_package(writer.path)
            title = root / f"title-{run}.png"
            save_title_card(TitleCard("Benchmark movie", "bench",
                                      package.manifest.created_at), title)
            job = EncodeJob(title_png=title, frames_dir=writer.path, frame_count=args.frames,
                            fps=10, output=root / f"bare-{run}.mp4", threads=args.threads)
            env = {**os.environ, "STOPMO_INBOX": str(root / "inbox"),
                   "STOPMO_WORK_DIR": str(root / f"work-{run}"),
                   "STOPMO_FFMPEG_THREADS": str(args.threads),
                   "STORAGE_URL": (root / f"store-{run}").as_uri()}
            checked = low_priority(10) + ffmpeg_args(job, job.output)
            unchecked = without_decode_check([*checked[:-1], str(root / f"plain-{run}.mp4")])
            if run % 2:  # alternate which goes first, so neither always finds a warm cache
                _, _, plain_cpu = measure(unchecked, env)
                bare_s, bare_peak, bare_cpu = measure(checked, env)
            else:
                bare_s, bare_peak, bare_cpu = measure(checked, env)
                _, _, plain_cpu = measure(unchecked, env)
            started = time.process_time()
            check_frames(writer.path, args.frames)
            walk_cpu = time.process_time() - started
            ours_s, ours_peak, _ = measure([sys.executable, "-m", "processor", "process",
                                         str(writer.path)], env)
            bare.append(bare_s)
            ours.append(ours_s)
            ratios.append(ours_s / bare_s)
            peaks_bare.append(bare_peak)
            peaks_ours.append(ours_peak)
            # CPU time, not wall time: the machine may be shared, and the check's cost is
            # a few per cent, well inside the wall-clock noise of one encode.
            walks.append(walk_cpu)
            plain.append(plain_cpu)
            checked_cpu.append(bare_cpu)
            check_ratios.append((walk_cpu + bare_cpu - plain_cpu) / plain_cpu)
            print(f"run {run + 1}: processor {ours_s:.2f} s, bare ffmpeg {bare_s:.2f} s, "
                  f"ratio {ours_s / bare_s:.3f}; decode check: header walk "
                  f"{walk_cpu * 1e3:.1f} ms CPU, ffmpeg {bare_cpu:.2f} s CPU with fatal decode "
                  f"errors, {plain_cpu:.2f} s without", flush=True)
    total = args.frames + TITLE_SECONDS * 10
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, ffmpeg threads {args.threads}")
    print(f"package: {args.frames} frames 1280x720 "
          f"({sum(map(len, frames)) / args.frames / 1e3:.0f} KB each) -> "
          f"{total} frames with the title card")
    print(f"median processor process (end to end, to the folder store): "
          f"{statistics.median(ours):.2f} s")
    print(f"median bare ffmpeg (same title, frames, settings): {statistics.median(bare):.2f} s")
    print(f"median ratio: {statistics.median(ratios):.3f} (aim <= 1.15)")
    print(f"encode speed (bare ffmpeg): {total / statistics.median(bare):.0f} frames/s; "
          f"end to end: {total / statistics.median(ours):.0f} frames/s")
    print(f"decode check (CPU time): header walk {statistics.median(walks) * 1e3:.1f} ms "
          f"({statistics.median(walks) / statistics.median(plain):.2%} of the encode); ffmpeg "
          f"{statistics.median(checked_cpu):.2f} s with fatal decode errors, "
          f"{statistics.median(plain):.2f} s without; added cost, median of runs: "
          f"{statistics.median(check_ratios):+.2%} of the encode (aim < 5 %)")
    print(f"peak memory: processor and its children {max(peaks_ours) / 1024:.0f} MB, "
          f"bare ffmpeg {max(peaks_bare) / 1024:.0f} MB")


if __name__ == "__main__":
    main()
