"""From the station's finish press to the big screen and to the website, the whole way.

Starts the local festival (scripts/festival, headless: mpv without video
output) in a temporary folder, lets its first movie through, then shoots
100-frame movies with the scripted station and times, from the moment the
finish press was handled (the package is complete in the outbox):
(a) the movie in mpv's own playlist (asked over its IPC socket), and
(b) the movie listed by the website's /api/movies (through the Redis cache,
whose max age in the festival is 5 s: a parent never waits longer for it);
also when its record landed in the store (published).
The path: sync agent (scan every 0.5 s) -> rsync over SSH on loopback ->
receiver (validate, fsync, rename) -> processor (debounce 0.5 s, title card,
ffmpeg, ffprobe check, publish) -> mpv / store -> website.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.festival import Festival


def timeline(festival: Festival, package_id: str, finished_at: float,
             timeout: float = 120) -> dict[str, float]:
    """Poll the screen, the store and the website together; seconds after the finish press."""
    record = festival.store / "movies" / f"{package_id}.json"
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < 3:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{package_id}: only {sorted(seen)} after {timeout} s")
        if "screen" not in seen and festival.in_playlist(package_id):
            seen["screen"] = time.time() - finished_at
        if "store" not in seen and record.exists():
            seen["store"] = record.stat().st_mtime - finished_at
        if "website" not in seen and package_id in festival.website_ids(strict=False):
            seen["website"] = time.time() - finished_at
        time.sleep(0.02)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="frames per movie (100)")
    parser.add_argument("--runs", type=int, default=5, help="movies timed (5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stopmo-bench-e2e-") as tmp:
        festival = Festival(Path(tmp) / "var", frames=10)
        started = time.time()
        with festival:
            wait_first = time.time()
            while not festival.website_ids(strict=False):
                if time.time() - wait_first > 120:
                    raise TimeoutError("the festival's first movie never reached the website")
                time.sleep(0.1)
            startup = time.time() - started
            results = []
            for run in range(args.runs):
                shot = festival.shoot(frames=args.frames)
                seen = timeline(festival, shot["package_id"], shot["finished_at"])
                results.append(seen)
                print(f"run {run + 1}: screen {seen['screen']:.2f} s, store "
                      f"{seen['store']:.2f} s, website {seen['website']:.2f} s", flush=True)
                time.sleep(1)  # let the cache age differ from run to run
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print(f"festival start to first movie (10 frames) on the website: {startup:.1f} s")
    for key, label in (("screen", "(a) in mpv's playlist"), ("store", "published in the store"),
                       ("website", "(b) listed by the website")):
        values = [r[key] for r in results]
        print(f"{args.frames} frames, finish press -> {label}: median "
              f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    main()
