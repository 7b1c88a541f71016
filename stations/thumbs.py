"""Small thumbnails of the movie being shot, kept in memory for the 10 fps replay.

Each frame is decoded once in JPEG draft mode (the decoder skips to a reduced
scale, several times faster than decoding in full and resizing) and kept as a
small JPEG, so a 600-frame movie costs a few MB and memory stays flat all day.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from pathlib import Path

from PIL import Image


def thumbnail(jpeg: bytes, size: tuple[int, int]) -> Image.Image:
    """Decode a JPEG straight to about `size` (draft mode), then fit it exactly."""
    with Image.open(io.BytesIO(jpeg)) as image:
        image.draft("RGB", size)
        small = image.convert("RGB")
    small.thumbnail(size)
    return small


class Thumbnails:
    """Frame index -> small JPEG, at most `limit` of them."""

    def __init__(self, size: tuple[int, int] = (640, 360), limit: int = 1000,
                 quality: int = 80) -> None:
        self.size = size
        self.limit = limit
        self.quality = quality
        self._frames: OrderedDict[int, bytes] = OrderedDict()
        self.last: Image.Image | None = None  # the newest frame, for the onion skin

    def __len__(self) -> int:
        return len(self._frames)

    def clear(self) -> None:
        """Forget every frame (a new movie starts)."""
        self._frames.clear()
        self.last = None

    def add(self, index: int, jpeg: bytes) -> Image.Image:
        """Keep a thumbnail of frame `index`; return it decoded."""
        image = thumbnail(jpeg, self.size)
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=self.quality)
        self._frames[index] = buf.getvalue()
        self._frames.move_to_end(index)
        while len(self._frames) > self.limit:
            self._frames.popitem(last=False)
        self.last = image
        return image

    def drop(self, index: int) -> None:
        """Forget frame `index` (it was deleted); the onion skin shows the one before."""
        self._frames.pop(index, None)
        self.last = self.get(index - 1) if index > 0 else None

    def get(self, index: int) -> Image.Image | None:
        """The thumbnail of frame `index`, if kept."""
        data = self._frames.get(index)
        if data is None:
            return None
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")

    def rebuild(self, frames: list[Path]) -> None:
        """After a restart: thumbnails of the frames on disk."""
        self.clear()
        for index, path in enumerate(frames):
            self.add(index, path.read_bytes())
