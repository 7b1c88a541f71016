"""Small thumbnails of the movie being shot, kept in memory for the 10 fps replay.

Each frame is decoded once, straight at a reduced scale: JPEG draft mode lets the
decoder scale by 1/2, 1/4 or 1/8 while it decodes, which skips most of a full decode's
work. The replay's thumbnails take the smallest scale that still gives three quarters
of their size, and keep what the decoder gives when it fits (480x270 from a 1920x1080
frame, for 640x360): the renderer scales every picture to the screen anyway, so scaling
it up here would cost work and bytes but add no detail. A picture still larger is fitted
down with a bilinear filter (less than a halving is left). About four times cheaper than
a full decode and resize; what the replay shows stays within a grey level of what a
full-quality thumbnail would show (tests/stations/test_thumbs.py). Kept as small JPEGs,
a 600-frame movie costs a few MB and memory stays flat all day.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from pathlib import Path

from PIL import Image

REPLAY_SHARE = 3 / 4  # the replay's thumbnails: at least this share of their size, each side


def fitted(frame: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """frame's size made to fit in size, keeping its shape (never enlarged)."""
    scale = min(1.0, size[0] / frame[0], size[1] / frame[1])
    return max(1, round(frame[0] * scale)), max(1, round(frame[1] * scale))


def thumbnail(jpeg: bytes, size: tuple[int, int], share: float = 1.0) -> Image.Image:
    """Decode a JPEG straight to a picture that fits in `size`, keeping its shape.

    With share 1 it is as large as fits; with less, any size down to that share of it
    (each side) will do, so the decoder's own scale is kept when it falls in between.
    """
    with Image.open(io.BytesIO(jpeg)) as image:
        target = fitted(image.size, size)
        # The decoder takes the smallest DCT scale giving at least what is asked.
        drafted = image.draft("RGB", (max(1, int(target[0] * share)),
                                      max(1, int(target[1] * share))))
        image.load()
        small: Image.Image = image
        if small.width > target[0] or small.height > target[1]:
            box = drafted[1] if drafted else None  # the area the decoder scaled, exactly
            small = small.resize(target, Image.Resampling.BILINEAR, box=box)
        return small.convert("RGB") if small.mode != "RGB" else small


class Thumbnails:
    """Frame index -> small JPEG, at most `limit` of them."""

    def __init__(self, size: tuple[int, int] = (640, 360), limit: int = 1000,
                 quality: int = 80, share: float = REPLAY_SHARE) -> None:
        self.size = size  # the largest; the decoder's scale down to `share` of it is kept
        self.share = share
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
        image = thumbnail(jpeg, self.size, self.share)
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
