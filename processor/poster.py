"""The poster: a still from the middle of the movie, at the output size."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image, ImageOps

from moviepkg.atomic import write_atomic
from moviepkg.reader import Package

from .errors import ContentError


def save_poster(package: Package, path: Path, size: tuple[int, int]) -> Path:
    """Write the middle frame, letterboxed to size, as a JPEG (atomically).

    Like the movie, it ignores any EXIF orientation. A frame Pillow cannot decode
    raises ContentError; failing to read or write a file stays an OSError (retried).
    """
    frame = package.frames[len(package.frames) // 2]
    data = (package.path / frame.name).read_bytes()  # read first: its OSErrors are ours
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            image.draft("RGB", size)
            poster = ImageOps.pad(image.convert("RGB"), size, color=(0, 0, 0))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ContentError(f"Pillow cannot decode it for the poster ({exc})",
                           frame=frame.name) from None
    buf = io.BytesIO()
    poster.save(buf, "JPEG", quality=85, optimize=True, progressive=True)
    write_atomic(path, buf.getvalue())
    return Path(os.fspath(path))
