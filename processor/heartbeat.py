"""A station's heartbeat: a small, flat JSON object, checked before anything trusts it."""

from __future__ import annotations

import json
from typing import Any

MAX_STATUS_BYTES = 64 * 1024
MAX_STATUS_DEPTH = 4  # a heartbeat is flat; deep nesting only serves to crash a parser


class BadStatus(ValueError):
    """The heartbeat is not one the processor keeps; the message says why, in one line."""


def parse_status(data: bytes, station_id: str) -> dict[str, Any]:
    """Return the heartbeat of station_id in data, or raise BadStatus."""
    if len(data) > MAX_STATUS_BYTES:
        raise BadStatus(f"status is larger than {MAX_STATUS_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadStatus(f"status is not UTF-8 (byte {exc.start})") from None
    # Checked before parsing: json's decoder recurses once per level and would overflow.
    if nesting(text) > MAX_STATUS_DEPTH:
        raise BadStatus(f"status is nested deeper than {MAX_STATUS_DEPTH} levels")
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # also integers too long to convert, NaN and Infinity
        raise BadStatus(f"status is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("station_id") != station_id:
        raise BadStatus(f"status must be a JSON object with station_id {station_id!r}")
    return doc


def nesting(text: str) -> int:
    """How deep arrays and objects nest in JSON text (brackets inside strings aside)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")
