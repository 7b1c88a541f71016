"""How close two pictures are, and a picture as the thumbnail cache keeps it: for the
station's thumbnail tests and bench/station.py."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageChops, ImageStat

from stations.thumbs import Thumbnails


def difference(a: Image.Image, b: Image.Image) -> tuple[float, float]:
    """PSNR in dB and the mean absolute difference in grey levels (0-255) of two images."""
    stat = ImageStat.Stat(ImageChops.difference(a, b))
    mse = sum(stat.sum2) / (len(stat.sum2) * a.width * a.height)
    return 10 * math.log10(255**2 / max(mse, 1e-9)), sum(stat.mean) / len(stat.mean)


def reencoded(image: Image.Image, quality: int = Thumbnails().quality) -> Image.Image:
    """image as the thumbnail cache keeps it (a JPEG), decoded again."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    with Image.open(buffer) as again:
        return again.convert("RGB")
