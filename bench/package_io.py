"""Write, then validate, a 300-frame package of 1920x1080 JPEGs (about 400 KB each).

Prints the writer's throughput (every frame fsynced), and the validator's
throughput against `sha256sum` over the same files in the same run, as a ratio.
Usage: python bench/package_io.py [--frames 300] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import shutil
import subprocess
import tempfile
import time

from PIL import Image, ImageDraw, ImageFilter

from moviepkg.reader import read_package
from moviepkg.writer import PackageWriter


def make_frames(count: int, distinct: int = 12) -> list[bytes]:
    """Photo-like 1920x1080 JPEGs of about 400 KB (smooth shapes plus sensor noise)."""
    rng = random.Random(7)
    frames = []
    for i in range(distinct):
        image = Image.effect_noise((1920, 1080), 40).convert("RGB")
        draw = ImageDraw.Draw(image, "RGBA")
        for _ in range(30):
            x, y = rng.randrange(1920), rng.randrange(1080)
            r = rng.randrange(40, 300)
            draw.ellipse((x - r, y - r, x + r, y + r),
                         fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256), 160))
        image = image.filter(ImageFilter.GaussianBlur(0.9 + i % 3 * 0.1))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=90)
        frames.append(buf.getvalue())
    return [frames[i % distinct] for i in range(count)]


def best_of(repeat: int, action: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        raise SystemExit("sha256sum is not installed (coreutils)")
    frames = make_frames(args.frames)
    total = sum(map(len, frames))
    mb = total / 1e6
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as outbox:
        start = time.perf_counter()
        writer = PackageWriter.start(outbox, "bench")
        for data in frames:
            writer.add_frame(data)
        writer.finish("bench", publish=True)
        write_s = time.perf_counter() - start
        names = sorted(str(p) for p in writer.path.glob("*.jpg"))

        def run_sha256sum() -> None:
            subprocess.run([sha256sum, *names], check=True, stdout=subprocess.DEVNULL)

        run_sha256sum()  # warm the page cache for both sides alike
        ours = best_of(args.repeat, lambda: read_package(writer.path))
        theirs = best_of(args.repeat, run_sha256sum)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print(f"package: {args.frames} frames of 1920x1080, {mb:.1f} MB "
          f"({total / args.frames / 1e3:.0f} KB per frame)")
    print(f"write (atomic, fsync per frame): {write_s:.2f} s, {mb / write_s:.0f} MB/s, "
          f"{args.frames / write_s:.0f} frames/s")
    print(f"validate (moviepkg.read_package): {ours:.3f} s, {mb / ours:.0f} MB/s")
    print(f"baseline (sha256sum, same files): {theirs:.3f} s, {mb / theirs:.0f} MB/s")
    print(f"ratio validate/sha256sum throughput: {theirs / ours:.2f} (aim: >= 0.8)")


if __name__ == "__main__":
    main()
