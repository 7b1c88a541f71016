"""Where published movies live: STORAGE_URL, the bucket-name rule and the key rules.

Every program reads the same STORAGE_URL (the processor writes the store, the
website reads it); this module parses and checks it, once. The key layout
(movies/<id>.mp4 ...) is in `record`. Each program keeps its own I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

MOVIES_PREFIX = "movies/"
URL_HELP = "expected file:///absolute/path or s3://bucket/prefix"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def key_problem(key: str) -> str | None:
    """Say what is wrong with a store key, or None if it is a clean relative key."""
    if not key:
        return "empty key"
    if key.startswith("/"):
        return "absolute key"
    if any(ord(ch) < 32 or ch == "\\" for ch in key):
        return "control character or backslash in key"
    for part in key.split("/"):
        if part in ("", ".", ".."):
            return f"empty, '.' or '..' part in key {key!r}"
        if part.startswith("."):
            return f"hidden part {part!r} in key (reserved for temporary files)"
    return None


@dataclass(frozen=True, slots=True)
class StorageLocation:
    """A parsed STORAGE_URL: a local folder, or an S3 bucket with an optional key prefix."""

    scheme: str  # "file" or "s3"
    folder: Path | None = None
    bucket: str = ""
    prefix: str = ""  # without slashes at either end; "" for the bucket's root


def storage_location(url: str) -> StorageLocation:
    """Parse STORAGE_URL for a program that opens it: a ValueError names the variable."""
    try:
        return parse_storage_url(url)
    except ValueError as exc:
        raise ValueError(f"STORAGE_URL: {exc}") from None


def parse_storage_url(url: str) -> StorageLocation:
    """Parse STORAGE_URL; raise ValueError naming what was expected and found."""
    text = url.strip() if isinstance(url, str) else ""
    parts = urlsplit(text)
    if not parts.query and not parts.fragment:
        if parts.scheme == "file" and parts.netloc in ("", "localhost") \
                and parts.path[:1] == "/":
            return StorageLocation("file", folder=Path(unquote(parts.path)))
        if parts.scheme == "s3" and _BUCKET_RE.fullmatch(parts.netloc):
            prefix = parts.path.removeprefix("/").removesuffix("/")
            if not prefix or key_problem(prefix) is None:
                return StorageLocation("s3", bucket=parts.netloc, prefix=prefix)
    raise ValueError(f"{URL_HELP}, found {url!r}")
