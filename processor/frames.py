"""The frame rule: every frame really decodes, once, in order, or the package is at fault.

moviepkg checks markers and the first frame header only. Before ffmpeg runs, a cheap
walk over every frame's markers (no decoding) refuses what ffmpeg would decode wrongly
or dangerously; ffmpeg itself then treats decode errors as fatal, and when it fails,
`find_undecodable` decodes the frames alone to name the one at fault.
EXIF orientation is ignored: frames are shown as stored, like the poster.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from moviepkg.reader import Limits

from .errors import ContentError

MAX_FRAME_PIXELS = Limits().max_frame_pixels
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SOS, _EOI, _APP1 = 0xDA, 0xD9, 0xE1
# After a scan header: the next marker that is not stuffing (FF 00), a restart or fill.
# (No `\xff+`: a repeated first byte makes the search 20 times slower.)
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_ORIENTATION_TAG = 0x0112
_EXIF = b"Exif\0\0"


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """What a frame's markers say, read without decoding it."""

    width: int
    height: int
    components: int
    orientation: int  # EXIF orientation; 1 (as stored) when there is none


def read_header(data: bytes, max_pixels: int = MAX_FRAME_PIXELS) -> FrameHeader:
    """Walk a JPEG's markers; raise ValueError unless it is one 8-bit picture with image data."""
    size: tuple[int, int, int] | None = None
    scans, orientation, pos = 0, 1, 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if marker in _SOF:
            if size is not None:  # ffmpeg would resize its picture to it: a memory bomb
                raise ValueError("a second frame header (SOF) in one frame")
            size = _frame_header(data[pos + 4:end], max_pixels)
        elif marker == _APP1 and data.startswith(_EXIF, pos + 4):
            orientation = exif_orientation(data[pos + 10:end])
        elif marker == _SOS:
            if size is None:
                raise ValueError("image data before any frame header")
            found = _NEXT_MARKER.search(data, end)
            if found is None or found.start() == end:
                raise ValueError("a scan with no image data")
            scans += 1
            pos = found.start()
            continue
        pos = end
    if size is None:
        raise ValueError("no frame header (SOF)")
    if scans == 0:  # ffmpeg shows an undecoded (green) picture without a word
        raise ValueError("a frame header but no image data (no scan)")
    return FrameHeader(*size, orientation=orientation)


def _frame_header(body: bytes, max_pixels: int) -> tuple[int, int, int]:
    if len(body) < 6:
        raise ValueError("frame header too short")
    precision, height, width, components = struct.unpack_from(">BHHB", body)
    if precision != 8:  # neither Pillow (the poster) nor browsers read 12-bit JPEG
        raise ValueError(f"{precision}-bit samples; only 8-bit JPEG is supported")
    if width * height > max_pixels or not width or not height:
        raise ValueError(f"frame header declares {width}x{height} pixels "
                         f"(at most {max_pixels} allowed)")
    if components not in (1, 3, 4):
        raise ValueError(f"frame header gives {components} colour components")
    return width, height, components


def exif_orientation(tiff: bytes) -> int:
    """Read the Orientation tag of IFD0 from EXIF (TIFF) bytes; 1 when absent or unreadable."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    ifd = struct.unpack_from(order + "I", tiff, 4)[0]
    if ifd + 2 > len(tiff):
        return 1
    for at in range(ifd + 2, ifd + 2 + 12 * struct.unpack_from(order + "H", tiff, ifd)[0], 12):
        if at + 12 > len(tiff):
            break
        tag, kind = struct.unpack_from(order + "HH", tiff, at)
        if tag == _ORIENTATION_TAG:  # ffmpeg reads it whatever its type: so do we
            value = struct.unpack_from(order + ("H" if kind == 3 else "I"), tiff, at + 8)[0]
            return int(value) if 1 <= value <= 8 else 1
    return 1


def frame_name(index: int) -> str:
    """The file name of frame number index."""
    return f"{index:04d}.jpg"


def check_frames(folder: Path, count: int, max_pixels: int = MAX_FRAME_PIXELS) -> list[str]:
    """Check every frame's markers; return the frames with an EXIF orientation to ignore.

    Raises ContentError naming the first bad frame; OSError (reading) is left alone.
    """
    turned = []
    for index in range(count):
        name = frame_name(index)
        try:
            header = read_header((folder / name).read_bytes(), max_pixels)
        except (ValueError, IndexError, struct.error) as exc:
            raise ContentError(str(exc) or "unreadable markers", frame=name) from None
        if header.orientation != 1:
            turned.append(name)
    return turned


def without_exif(data: bytes) -> bytes:
    """Drop a JPEG's EXIF segments (ffmpeg would turn the picture and restart its filters)."""
    out, pos = [data[:2]], 2
    while (pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] != _SOS
           and data[pos + 1] not in _STANDALONE and data[pos + 1] != 0xFF):
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if not (data[pos + 1] == _APP1 and data.startswith(_EXIF, pos + 4)):
            out.append(data[pos:end])
        pos = end
    out.append(data[pos:])
    return b"".join(out)


@contextmanager
def as_stored(folder: Path, count: int, turned: list[str]) -> Iterator[Path]:
    """Yield a folder of the frames in which none carries an EXIF orientation.

    That is the package itself when no frame does; otherwise a temp folder of links,
    with copies stripped of EXIF for the turned frames (the package stays untouched,
    so its checksums still hold).
    """
    if not turned:
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="stopmo-frames-") as tmp:
        staged = Path(tmp)
        for index in range(count):
            name = frame_name(index)
            if name in turned:
                (staged / name).write_bytes(without_exif((folder / name).read_bytes()))
            else:
                os.symlink(os.path.abspath(folder / name), staged / name)
        yield staged


def decode_args(folder: Path, count: int, ffmpeg: str = "ffmpeg") -> list[str]:
    """Build the ffmpeg command that decodes the frames alone, one checksum line per frame."""
    return [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-err_detect", "explode", "-max_pixels", str(MAX_FRAME_PIXELS),
            "-framerate", "1", "-start_number", "0", "-i", str(folder / "%04d.jpg"),
            "-frames:v", str(count), "-map", "0:v", "-fps_mode", "passthrough",
            "-f", "framecrc", "-"]


def find_undecodable(folder: Path, count: int,
                     run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
                     ) -> tuple[str, str] | None:
    """Decode every frame alone; return (first frame ffmpeg cannot decode, why) or None.

    Without -xerror ffmpeg skips a frame it cannot decode; with passthrough timing no
    other frame fills its place, so the missing timestamp is the frame's number. None
    means every frame decodes (or ffmpeg itself failed): the fault lies elsewhere.
    """
    done = run(decode_args(folder, count), capture_output=True, text=True,
               timeout=max(120, count))
    if done.returncode != 0:
        return None
    decoded = set()
    for line in done.stdout.splitlines():
        fields = line.split(",")
        if len(fields) > 1 and not line.startswith("#") and fields[1].strip().isdigit():
            decoded.add(int(fields[1]))
    missing = next((i for i in range(count) if i not in decoded), None)
    if missing is None or not (folder / frame_name(missing)).exists():
        return None  # all decode, or a file went missing: not the content's fault
    lines = done.stderr.splitlines()
    # The decoder's own words ("[mjpeg @ 0x..] overread 8") say most; else ffmpeg's summary.
    why = [line.partition("] ")[2] for line in lines if line.startswith("[")] + \
        [line.rpartition(": ")[2] for line in lines]
    return frame_name(missing), next((w for w in why if w), "no picture came out of it")
