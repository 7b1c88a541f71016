"""Synthetic frames and demo packages for tests and demos, without any image library.

`python -m tests.demo OUTBOX [--frames N] ...` writes one and prints its path.

The frames are real baseline JPEGs made of flat 16x16 blocks: every block has
only a DC coefficient, which keeps a pure-Python encoder small and fast. The
pictures show a ball bouncing over a landscape and the frame number.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from moviepkg.writer import PackageWriter

RGB = tuple[int, int, int]
CELL = 16  # pixels per block side: one MCU with 4:2:0 sampling

# Standard luminance DC table (ITU T.81, K.3) and a one-symbol AC table: end of block.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALS = tuple(range(12))
_AC_BITS = (0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
_AC_VALS = (0x00,)
_DC_QUANT = 8  # a flat block's DC coefficient is 8 * (value - 128)


def _codes(bits: Sequence[int], vals: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Build canonical Huffman codes: symbol -> (code, length)."""
    table: dict[int, tuple[int, int]] = {}
    code, k = 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            table[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return table


_DC_CODES = _codes(_DC_BITS, _DC_VALS)
_EOB = _codes(_AC_BITS, _AC_VALS)[0x00]


class _BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self._acc = 0
        self._n = 0

    def put(self, code: int, length: int) -> None:
        self._acc = (self._acc << length) | code
        self._n += length
        while self._n >= 8:
            self._n -= 8
            byte = (self._acc >> self._n) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0x00)  # byte stuffing
        self._acc &= (1 << self._n) - 1

    def flush(self) -> bytes:
        if self._n:
            pad = 8 - self._n
            self.put((1 << pad) - 1, pad)
        return bytes(self.out)


def _put_dc(bits: _BitWriter, diff: int) -> None:
    category = abs(diff).bit_length()
    code, length = _DC_CODES[category]
    bits.put(code, length)
    if category:
        bits.put(diff if diff > 0 else diff + (1 << category) - 1, category)
    bits.put(*_EOB)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _ycbcr(rgb: RGB) -> tuple[int, int, int]:
    r, g, b = rgb
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return tuple(max(0, min(255, round(v))) - 128 for v in (y, cb, cr))  # type: ignore[return-value]


def encode_blocks(cells: Sequence[Sequence[RGB]], width: int, height: int) -> bytes:
    """Encode a grid of 16x16 flat colour cells (rows of columns) as a baseline JPEG."""
    rows, cols = math.ceil(height / CELL), math.ceil(width / CELL)
    if len(cells) < rows or any(len(row) < cols for row in cells[:rows]):
        raise ValueError(f"need {rows}x{cols} cells for {width}x{height}")
    header = b"\xff\xd8"
    header += _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    header += _segment(0xDB, b"\x00" + bytes([_DC_QUANT] + [16] * 63))
    header += _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3)
                       + b"\x01\x22\x00\x02\x11\x00\x03\x11\x00")
    header += _segment(0xC4, b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALS))
    header += _segment(0xC4, b"\x10" + bytes(_AC_BITS) + bytes(_AC_VALS))
    header += _segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00")
    bits = _BitWriter()
    prev = [0, 0, 0]
    for r in range(rows):
        for c in range(cols):
            y, cb, cr = _ycbcr(cells[r][c])
            _put_dc(bits, y - prev[0])
            for _ in range(3):
                _put_dc(bits, 0)  # the other three luma blocks of the MCU are the same
            _put_dc(bits, cb - prev[1])
            _put_dc(bits, cr - prev[2])
            prev = [y, cb, cr]
    return header + bits.flush() + b"\xff\xd9"


_DIGITS = ("111101101101111", "010110010010111", "111001111100111", "111001111001111",
           "101101111001001", "111100111001111", "111100111101111", "111001010010010",
           "111101111101111", "111101111001111")


def demo_frame(index: int, total: int, width: int = 640, height: int = 480) -> bytes:
    """Draw frame index of total: sky, hills, a bouncing ball and the frame number."""
    rows, cols = math.ceil(height / CELL), math.ceil(width / CELL)
    phase = index / max(1, total - 1)
    ball_c = 1 + phase * max(1, cols - 4)
    ball_r = rows * 0.7 - abs(math.sin(phase * math.pi * 3)) * rows * 0.5
    cells: list[list[RGB]] = []
    for r in range(rows):
        row: list[RGB] = []
        for c in range(cols):
            ground = r > rows * 0.75 + 1.5 * math.sin(c / 3)
            colour: RGB = (60, 150, 70) if ground else (90 + r * 3, 160 + r * 2, 235)
            if (c - ball_c) ** 2 + (r - ball_r) ** 2 <= 2.5 ** 2:
                colour = (230, 60, 50)
            row.append(colour)
        cells.append(row)
    for pos, digit in enumerate(f"{index:04d}"):
        for bit, on in enumerate(_DIGITS[int(digit)]):
            r, c = 1 + bit // 3, 1 + pos * 4 + bit % 3
            if on == "1" and r < rows and c < cols:
                cells[r][c] = (255, 255, 255)
    return encode_blocks(cells, width, height)


def make_demo(outbox: str | os.PathLike[str], frames: int = 20, publish: bool = True,
              station_id: str = "demo", title: str | None = "A ball goes bouncing",
              width: int = 640, height: int = 480, now: datetime | None = None) -> Path:
    """Write a complete, valid package of synthetic frames into outbox; return its path."""
    if frames < 1:
        raise ValueError(f"frames: expected at least 1, found {frames}")
    Path(outbox).mkdir(parents=True, exist_ok=True)
    writer = PackageWriter.start(outbox, station_id, now=now)
    for index in range(frames):
        writer.add_frame(demo_frame(index, frames, width, height))
    writer.finish(title, publish, now=now)
    return writer.path


def noise_jpegs(count: int, size: tuple[int, int], seed: int, quality: int) -> list[bytes]:
    """count JPEGs of noise (rsync cannot shrink them), made with Pillow."""
    import io

    from PIL import Image

    frames = []
    for i in range(count):
        image = Image.merge("RGB", [Image.effect_noise(size, seed + i) for _ in range(3)])
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        frames.append(buffer.getvalue())
    return frames


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tests.demo OUTBOX`: write a valid package, print its path."""
    import argparse
    import sys

    from moviepkg.exitcodes import ExitStatus
    from moviepkg.manifest import MAX_FRAMES

    parser = argparse.ArgumentParser(prog="python -m tests.demo",
                                     description="write a valid package of synthetic frames")
    parser.add_argument("dir", type=Path, help="the outbox folder the package is written into")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--nopublish", action="store_true")
    parser.add_argument("--station", default="demo")
    parser.add_argument("--title", default="A ball goes bouncing")
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the frames")
    args = parser.parse_args(argv)
    if not 1 <= args.frames <= MAX_FRAMES:
        print(f"error: --frames: expected 1 to {MAX_FRAMES}, found {args.frames}",
              file=sys.stderr)
        return ExitStatus.USAGE
    try:
        width, height = (int(part) for part in args.size.lower().split("x"))
        path = make_demo(args.dir, frames=args.frames, publish=not args.nopublish,
                         station_id=args.station, title=args.title, width=width, height=height)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitStatus.FAILURE
    print(path)
    return ExitStatus.OK


if __name__ == "__main__":
    raise SystemExit(main())
