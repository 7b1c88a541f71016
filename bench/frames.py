"""Camera-like JPEG frames for the benchmarks (shapes that move a little, plus sensor noise),
and the movie packages made of them."""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from moviepkg.writer import PackageWriter


def camera_frames(count: int, size: tuple[int, int], *, seed: int = 5, shapes: int = 25,
                  radius: tuple[int, int] = (30, 200), step: int = 3, noise: int = 25,
                  blend: float = 0.15, blur: float = 0.8, noises: int = 1,
                  quality: int = 90) -> list[bytes]:
    """Make `count` frames of `size`; each benchmark keeps its own mix for its figures."""
    rng = random.Random(seed)
    drawn = [(rng.randrange(size[0]), rng.randrange(size[1]), rng.randrange(*radius),
              tuple(rng.randrange(256) for _ in range(3))) for _ in range(shapes)]
    grains = [Image.effect_noise(size, noise).convert("RGB") for _ in range(noises)]
    frames = []
    for i in range(count):
        image = Image.new("RGB", size, (200, 190, 170))
        draw = ImageDraw.Draw(image)
        for x, y, r, colour in drawn:
            x += i * step
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        image = Image.blend(image, grains[i % noises], blend).filter(ImageFilter.GaussianBlur(blur))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        frames.append(buffer.getvalue())
    return frames


def write_package(outbox: Path, frames: list[bytes], station: str = "bench",
                  title: str = "Benchmark movie") -> Path:
    """Write a finished PUBLISH package of frames into outbox, as a station does; return
    its folder."""
    outbox.mkdir(parents=True, exist_ok=True)
    writer = PackageWriter.start(outbox, station)
    for data in frames:
        writer.add_frame(data)
    writer.finish(title, publish=True)
    return writer.path
