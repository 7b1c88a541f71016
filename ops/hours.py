"""Opening hours: when alerts may make a noise, in the festival's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

_RANGE_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Daily ranges like 09:30-18:00 (one may cross midnight); no ranges: always open."""

    ranges: tuple[tuple[time, time], ...] = ()

    @property
    def always(self) -> bool:
        """Whether the installation never closes."""
        return not self.ranges

    def open_since(self, now: datetime, zone: str) -> datetime | None:
        """The start of the opening period that holds now, or None when closed.

        Always open: the start of today, in the festival's time zone.
        """
        local = now.astimezone(ZoneInfo(zone))
        if self.always:
            return local.replace(hour=0, minute=0, second=0, microsecond=0)
        for start, end in self.ranges:
            for day in (local.date(), local.date() - timedelta(days=1)):
                begin = datetime.combine(day, start, tzinfo=local.tzinfo)
                finish = datetime.combine(day, end, tzinfo=local.tzinfo)
                if end <= start:
                    finish += timedelta(days=1)
                if begin <= local < finish:
                    return begin
        return None

    def is_open(self, now: datetime, zone: str) -> bool:
        """Whether now falls within opening hours."""
        return self.open_since(now, zone) is not None

    def __str__(self) -> str:
        return ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in self.ranges) or "always"


def parse_hours(value: Any) -> OpeningHours:
    """Read `always` or `HH:MM-HH:MM[, HH:MM-HH:MM…]` (a TOML list of ranges too)."""
    items = value if isinstance(value, list) else str(value).split(",")
    words = [str(item).strip() for item in items if str(item).strip()]
    if words in ([], ["always"]):
        return OpeningHours()
    ranges: list[tuple[time, time]] = []
    for word in words:
        found = _RANGE_RE.fullmatch(word.replace(" ", ""))
        try:
            if found is None:
                raise ValueError
            h1, m1, h2, m2 = (int(part) for part in found.groups())
            start, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise ValueError(f"expected always or ranges like 09:30-18:00, found {word!r}"
                             ) from None
        if start == end:
            raise ValueError(f"expected a range that is not empty, found {word!r}")
        ranges.append((start, end))
    return OpeningHours(tuple(ranges))
