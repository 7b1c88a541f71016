"""What an MP4 file says about its video, read from its own boxes (no ffprobe).

The movie's index (`moov`) holds every figure the encode is checked against: the
number of frames (`stsz`), the track's duration (`mdhd`), the codec and picture size
(the `avc1` sample entry) and the pixel format (the H.264 sequence parameter set in
`avcC`). Reading it takes well under a millisecond, against tens of milliseconds
for starting ffprobe. Anything malformed raises ValueError.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

_CONTAINERS = frozenset({"moov", "trak", "mdia", "minf", "stbl"})
_MAX_MOOV = 64 * 1024 * 1024  # an index for hours of video; anything larger is broken
# Profiles whose sequence parameter set names its chroma format and bit depths.
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_CHROMA = {0: "gray", 1: "yuv420p", 2: "yuv422p", 3: "yuv444p"}


@dataclass(frozen=True, slots=True)
class MovieInfo:
    """What a movie file holds: its video stream and whether its index comes first."""

    codec: str  # "h264" for an avc1/avc3 sample entry, else the entry's four letters
    pix_fmt: str  # as ffmpeg names it: yuv420p, yuv420p10le, gray...
    width: int
    height: int
    frames: int
    duration: float  # seconds, of the video track
    faststart: bool  # the index (moov) before the media data (mdat)


def boxes(data: bytes, start: int = 0, end: int | None = None
          ) -> Iterator[tuple[str, int, int]]:
    """Yield (type, payload start, box end) of the boxes between start and end."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1:
            if pos + 16 > end:
                raise ValueError("a box header is cut short")
            length, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif length == 0:
            length = end - pos
        if length < header or pos + length > end:
            raise ValueError(f"box {kind.decode('latin-1')!r} runs past its end")
        yield kind.decode("latin-1"), pos + header, pos + length
        pos += length


def top_level(path: Path) -> list[tuple[str, int, int]]:
    """List the top-level boxes of a file as (type, offset, length), reading headers only."""
    found = []
    size = path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            head = fh.read(16)
            length, kind = struct.unpack_from(">I4s", head)
            if length == 1 and len(head) == 16:
                length = struct.unpack_from(">Q", head, 8)[0]
            elif length == 0:
                length = size - offset
            if length < 8:
                break
            found.append((kind.decode("latin-1"), offset, length))
            offset += length
    return found


def read_movie(path: Path) -> MovieInfo:
    """Read the first video track's figures from the file's index; ValueError if broken."""
    top = top_level(path)
    kinds = [kind for kind, _, _ in top]
    size = path.stat().st_size
    if "moov" not in kinds or "mdat" not in kinds:
        raise ValueError(f"no {'moov' if 'moov' not in kinds else 'mdat'} box: not a "
                         "finished MP4")
    _, moov_at, moov_length = top[kinds.index("moov")]
    _, mdat_at, mdat_length = top[kinds.index("mdat")]
    if moov_at + moov_length > size or mdat_at + mdat_length > size:
        raise ValueError("the file is shorter than its boxes say (cut short)")
    if moov_length > _MAX_MOOV:
        raise ValueError(f"an index (moov) of {moov_length} bytes")
    with open(path, "rb") as fh:
        fh.seek(moov_at)
        moov = fh.read(moov_length)
    track = _video_track(moov)
    if track is None:
        raise ValueError("no video track")
    info, sample_bytes = track
    if sample_bytes > mdat_length:
        raise ValueError(f"the frames take {sample_bytes} bytes, the media data holds only "
                         f"{mdat_length}")
    return replace(info, faststart=kinds.index("moov") < kinds.index("mdat"))


def _video_track(moov: bytes) -> tuple[MovieInfo, int] | None:
    """Return the figures of the first video track in moov and its samples' total size."""
    for kind, start, end in boxes(moov):
        if kind != "moov":
            continue
        for trak, t_start, t_end in boxes(moov, start, end):
            if trak == "trak":
                found = _boxes_by_type(moov, t_start, t_end)
                if _handler(moov, found.get("hdlr")) == "vide":
                    return _track_figures(moov, found)
    return None


def _boxes_by_type(data: bytes, start: int, end: int) -> dict[str, tuple[int, int]]:
    """Map each box type under a track to its first (payload start, end), descending."""
    found: dict[str, tuple[int, int]] = {}
    for kind, b_start, b_end in boxes(data, start, end):
        found.setdefault(kind, (b_start, b_end))
        if kind in _CONTAINERS:
            for inner, span in _boxes_by_type(data, b_start, b_end).items():
                found.setdefault(inner, span)
    return found


def _handler(data: bytes, span: tuple[int, int] | None) -> str:
    if span is None or span[1] - span[0] < 12:
        return ""
    return data[span[0] + 8:span[0] + 12].decode("latin-1")


def _track_figures(data: bytes, found: dict[str, tuple[int, int]]) -> tuple[MovieInfo, int]:
    """Read the track's figures (faststart aside) and its samples' total size."""
    for needed in ("mdhd", "stsd", "stsz"):
        if needed not in found:
            raise ValueError(f"the video track has no {needed} box")
    start, _ = found["mdhd"]
    if data[start] == 1:
        timescale, duration = struct.unpack_from(">IQ", data, start + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, start + 12)
    if not timescale:
        raise ValueError("a video track with a time scale of 0")
    start, end = found["stsd"]
    entry = next(boxes(data, start + 8, end), None)  # version, flags, entry count first
    if entry is None:
        raise ValueError("the video track describes no sample format")
    kind, e_start, e_end = entry
    width, height = struct.unpack_from(">HH", data, e_start + 24)
    codec, pix_fmt = kind, ""
    if kind in ("avc1", "avc3"):
        codec = "h264"
        avcc = next(((s, e) for k, s, e in boxes(data, e_start + 78, e_end) if k == "avcC"),
                    None)
        if avcc is None:
            raise ValueError("an H.264 track without its configuration (avcC)")
        pix_fmt = _avcc_pix_fmt(data[avcc[0]:avcc[1]])
    start, end = found["stsz"]
    same_size, count = struct.unpack_from(">II", data, start + 4)
    if same_size:
        sample_bytes = same_size * count
    else:
        if start + 12 + 4 * count > end:
            raise ValueError("the frame size table is cut short")
        sample_bytes = sum(struct.unpack_from(f">{count}I", data, start + 12))
    return (MovieInfo(codec, pix_fmt, width, height, count, duration / timescale,
                      faststart=False), sample_bytes)


def _avcc_pix_fmt(avcc: bytes) -> str:
    """Name the pixel format of the first sequence parameter set in an avcC box."""
    if len(avcc) < 8 or not avcc[5] & 0x1F:
        raise ValueError("an avcC box without a sequence parameter set")
    length = struct.unpack_from(">H", avcc, 6)[0]
    return sps_pix_fmt(avcc[8:8 + length])


def sps_pix_fmt(nal: bytes) -> str:
    """Read chroma format and bit depth from an H.264 sequence parameter set NAL unit."""
    if len(nal) < 4 or nal[0] & 0x1F != 7:
        raise ValueError("not a sequence parameter set")
    rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention bytes
    profile = rbsp[0]
    if profile not in _HIGH_PROFILES:
        return "yuv420p"  # Baseline, Main, Extended: always 4:2:0, 8 bits
    bits = _Bits(rbsp[3:])
    bits.ue()  # seq_parameter_set_id
    chroma = bits.ue()
    if chroma == 3:
        bits.bit()  # separate_colour_plane_flag
    depth = 8 + max(bits.ue(), bits.ue())  # luma, chroma
    name = _CHROMA.get(chroma, f"chroma{chroma}")
    return name if depth == 8 else f"{name}{depth}le"


class _Bits:
    """Read an H.264 bit string: single bits and unsigned Exp-Golomb numbers."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        if self.pos >= 8 * len(self.data):
            raise ValueError("a sequence parameter set cut short")
        value = self.data[self.pos >> 3] >> (7 - (self.pos & 7)) & 1
        self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while not self.bit():
            zeros += 1
            if zeros > 31:
                raise ValueError("a malformed number in a sequence parameter set")
        value = 1
        for _ in range(zeros):
            value = value << 1 | self.bit()
        return value - 1


def top_level_boxes(path: Path) -> list[str]:
    """List the types of an MP4's top-level boxes, in file order."""
    return [kind for kind, _, _ in top_level(path)]


def moov_before_mdat(path: Path) -> bool:
    """Tell whether the MP4 index comes before the media data (`+faststart`)."""
    kinds = top_level_boxes(path)
    return "moov" in kinds and "mdat" in kinds and kinds.index("moov") < kinds.index("mdat")
