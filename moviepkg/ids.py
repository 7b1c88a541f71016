"""Package ids, station ids and the short movie code people type or scan."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

PACKAGE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
STATION_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
# The id pattern allows only lowercase, so the stamp is written 20260501t120000z.
_STAMP_FORMAT = "%Y%m%dt%H%M%Sz"
_STATION_PACKAGE_RE = re.compile(
    r"^(?P<station>[a-z0-9][a-z0-9-]{0,40})-(?P<stamp>\d{8}t\d{6}z)-(?P<nonce>[0-9a-f]{4})$"
)

# No 0/O, 1/I/L, U/V: nothing that reads as something else on a screen or in
# handwriting. 29 symbols, 6 of them: about 5.9e8 codes.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
CODE_LENGTH = 6


def is_package_id(value: str) -> bool:
    """Tell whether value is a valid package id."""
    return bool(PACKAGE_ID_RE.fullmatch(value))


def is_station_id(value: str) -> bool:
    """Tell whether value is a valid station id (short enough to build package ids)."""
    return bool(STATION_ID_RE.fullmatch(value))


def new_package_id(station_id: str, now: datetime, nonce: str | None = None) -> str:
    """Build `<station_id>-<yyyymmddthhmmssz>-<4 lowercase hex>` for a new package."""
    if not is_station_id(station_id):
        raise ValueError(
            f"station_id: expected lowercase letters, digits and dashes (at most 41), "
            f"found {station_id!r}"
        )
    if now.tzinfo is None:
        raise ValueError("now: expected an aware UTC datetime, found a naive one")
    nonce = secrets.token_hex(2) if nonce is None else nonce
    if not re.fullmatch(r"[0-9a-f]{4}", nonce):
        raise ValueError(f"nonce: expected 4 lowercase hex digits, found {nonce!r}")
    stamp = now.astimezone(UTC).strftime(_STAMP_FORMAT)
    return f"{station_id}-{stamp}-{nonce}"


def split_package_id(package_id: str) -> tuple[str, datetime] | None:
    """Return (station_id, creation time) of a station-built id, or None for other ids."""
    match = _STATION_PACKAGE_RE.fullmatch(package_id)
    if match is None:
        return None
    try:
        when = datetime.strptime(match["stamp"], _STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return match["station"], when


def movie_code(package_id: str) -> str:
    """Return the short, deterministic, case-insensitive code of a movie."""
    digest = int.from_bytes(hashlib.sha256(package_id.encode("utf-8")).digest()[:8], "big")
    base = len(CODE_ALPHABET)
    chars = []
    for _ in range(CODE_LENGTH):
        digest, rest = divmod(digest, base)
        chars.append(CODE_ALPHABET[rest])
    return "".join(chars)


def normalize_code(text: str) -> str | None:
    """Turn what a person typed into a code, or None if it cannot be one.

    Case, spaces and dashes are ignored.
    """
    cleaned = "".join(ch for ch in text.strip().upper() if ch not in " -_.")
    if len(cleaned) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned
