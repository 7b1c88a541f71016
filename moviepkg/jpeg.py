"""Just enough JPEG to trust a frame: markers and the frame header, no decoding."""

from __future__ import annotations

from dataclasses import dataclass

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
# Start-of-frame markers. Cameras write baseline, extended or progressive Huffman JPEGs
# (SOF0-2), which every decoder reads; the rare others are refused as unsupported.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2})
_UNSUPPORTED_SOF = frozenset({0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SOS = 0xDA


@dataclass(frozen=True, slots=True)
class JpegInfo:
    """What the frame header of a JPEG says."""

    width: int
    height: int
    components: int


class NotJpeg(ValueError):
    """The bytes are not a well-formed JPEG; the message says why."""


def jpeg_info(data: bytes | memoryview) -> JpegInfo:
    """Check the SOI and EOI markers and read the frame header of a JPEG."""
    view = memoryview(data)
    size = len(view)
    if size < 4 or view[:2] != SOI:
        raise NotJpeg("no JPEG start marker (FF D8)")
    if view[size - 2:] != EOI:
        raise NotJpeg("no JPEG end marker (FF D9)")
    pos = 2
    while pos < size - 2:
        if view[pos] != 0xFF:
            raise NotJpeg(f"no marker at byte {pos}")
        while pos < size and view[pos] == 0xFF:  # fill bytes may pad markers
            pos += 1
        if pos >= size - 2:
            break
        marker = view[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD8, 0xD9, 0x00):
            raise NotJpeg(f"unexpected marker FF {marker:02X} at byte {pos - 1}")
        if pos + 2 > size:
            break
        length = (view[pos] << 8) | view[pos + 1]
        if length < 2 or pos + length > size:
            raise NotJpeg(f"segment FF {marker:02X} at byte {pos - 2} has a bad length {length}")
        if marker in _SOF_MARKERS:
            if length < 8:
                raise NotJpeg(f"frame header too short ({length} bytes)")
            height = (view[pos + 3] << 8) | view[pos + 4]
            width = (view[pos + 5] << 8) | view[pos + 6]
            components = view[pos + 7]
            if width == 0 or height == 0:
                raise NotJpeg(f"frame header gives an empty image ({width}x{height})")
            if components not in (1, 3, 4):
                raise NotJpeg(f"frame header gives {components} colour components")
            return JpegInfo(width=width, height=height, components=components)
        if marker in _UNSUPPORTED_SOF:
            raise NotJpeg(f"an unsupported JPEG kind (SOF marker FF {marker:02X}: lossless, "
                          "hierarchical or arithmetic-coded)")
        if marker == _SOS:
            raise NotJpeg("scan data before any frame header")
        pos += length
    raise NotJpeg("no frame header (SOF marker)")
