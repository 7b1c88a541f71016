"""UTC timestamps as the package and the record write them: ISO 8601 ending in Z."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# The festival's time zone, for every date a person reads (title card, website, status).
# The one default; programs read STOPMO_TIMEZONE (or their settings file) to change it.
DEFAULT_TIMEZONE = "Asia/Jerusalem"
TIMEZONE_ENV = "STOPMO_TIMEZONE"
_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def format_utc(when: datetime, millis: bool = False) -> str:
    """Format an aware datetime as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, UTC), or with
    milliseconds (`...:SS.mmmZ`) where durations between moments matter (telemetry)."""
    if when.tzinfo is None:
        raise ValueError("expected an aware datetime, found a naive one")
    utc = when.astimezone(UTC)
    if millis:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    """Parse `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; raise ValueError for anything else."""
    if not _UTC_RE.fullmatch(text):
        raise ValueError(f"not a UTC timestamp like 2026-05-01T12:00:00Z: {text!r}")
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def utc_now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)
