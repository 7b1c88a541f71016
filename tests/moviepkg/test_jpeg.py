"""The JPEG header reader against images made by a real encoder (Pillow)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from moviepkg.jpeg import NotJpeg, jpeg_info
from tests.demo import demo_frame


@pytest.mark.parametrize(("size", "mode", "options"), [
    ((1920, 1080), "RGB", {}),
    ((333, 17), "RGB", {"progressive": True}),
    ((64, 64), "L", {}),
    ((40, 30), "CMYK", {}),
    ((100, 80), "RGB", {"exif": b"Exif\x00\x00" + b"\x00" * 64, "optimize": True}),
])
def test_reads_dimensions_of_real_jpegs(size: tuple[int, int], mode: str,
                                        options: dict[str, object]) -> None:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "JPEG", **options)
    info = jpeg_info(buf.getvalue())
    assert (info.width, info.height) == size
    assert info.components == len(mode)


def test_demo_frames_decode_with_a_real_decoder() -> None:
    data = demo_frame(3, 10, 250, 130)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size == (250, 130) == (jpeg_info(data).width, jpeg_info(data).height)
    assert image.getpixel((245, 125))[1] > 100  # green ground in the corner


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "start marker"),
    (b"\xff\xd8\xff\xd9", "no frame header"),
    (b"\xff\xd8\x00\x00\xff\xd9", "no marker at byte 2"),
    (b"\xff\xd8\xff\xda\x00\x02\xff\xd9", "scan data before any frame header"),
    (b"\xff\xd8\xff\xc0\x00\x0b\x08\x00\x00\x00\x10\x03\x00\xff\xd9", "empty image"),
])
def test_refuses_broken_jpegs(data: bytes, reason: str) -> None:
    with pytest.raises(NotJpeg, match=reason):
        jpeg_info(data)
