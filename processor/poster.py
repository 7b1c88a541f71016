"""The poster: a still from the middle of the movie, at the output size."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image, ImageOps

from moviepkg.atomic import write_atomic
from moviepkg.reader import Package


def save_poster(package: Package, path: Path, size: tuple[int, int]) -> Path:
    """Write the middle frame, letterboxed to size, as a JPEG (atomically)."""
    frame = package.frames[len(package.frames) // 2]
    with Image.open(package.path / frame.name) as image:
        image.draft("RGB", size)
        poster = ImageOps.pad(image.convert("RGB"), size, color=(0, 0, 0))
    buf = io.BytesIO()
    poster.save(buf, "JPEG", quality=85, optimize=True, progressive=True)
    write_atomic(path, buf.getvalue())
    return Path(os.fspath(path))
