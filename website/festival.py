"""The festival's look: its name and logo, friendly station names, the site's own address.

The words a visitor reads are in the templates, except the few made here (a station
without a name, a movie without a title, a length in words): gettext, looked up per
request in the visitor's language (website.languages).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext, ngettext

from moviepkg.manifest import MAX_TITLE_CHARS
from moviepkg.settings import size, station_names

# The processor's encode.size default: the size of every poster and video it publishes.
DEFAULT_MOVIE_SIZE = (1280, 720)
DEFAULT_NAME = "stopmo"
_SITE_URL_RE = re.compile(r"https?://[^\s/?#@]+")
_LOGO_URL_RE = re.compile(r"(https?://[^\s/?#@]+)?/[^\s]*")
_parse_size = size((16, 16), (3840, 2160))


@dataclass(frozen=True, slots=True)
class Festival:
    """What the pages show of the festival, checked once at start."""

    name: str = DEFAULT_NAME
    logo_url: str = ""
    station_names: Mapping[str, str] = field(default_factory=dict)
    movie_size: tuple[int, int] = DEFAULT_MOVIE_SIZE
    site_url: str = ""  # scheme://host[:port] of the public site; empty: the request's own
    hall_names: Mapping[str, str] = field(default_factory=dict)  # unit id -> "Main hall"

    def hall_name(self, hall: str) -> str:
        """The hall's friendly name, or its id."""
        return self.hall_names.get(hall) or hall

    def station_name(self, station_id: str) -> str:
        """The station's friendly name, or "Station N" for `st-N`."""
        return self.station_names.get(station_id) or station_label(station_id)

    @property
    def logo_origin(self) -> str | None:
        """The origin the logo comes from when it is not this site (for the CSP)."""
        parts = urlsplit(self.logo_url)
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else None


def station_label(station_id: str) -> str:
    """Name a station that has no friendly name: `st-3` is "Station 3"."""
    number = re.search(r"(\d+)$", station_id)
    if number:
        return str(gettext("Station %(number)d", number=int(number.group(1))))
    words = " ".join(re.split(r"[-_]+", station_id)).strip()
    return words[:1].upper() + words[1:]


def movie_title(title: str | None, code: str) -> str:
    """What a movie is called on the site: its title, or "Movie <code>"."""
    return title or str(gettext("Movie %(code)s", code=code))


def whole_seconds(seconds: float) -> int:
    """A movie's length in whole seconds, at least 1."""
    return max(1, round(seconds))


def length_text(seconds: float) -> str:
    """A movie's length as players show it: `0:07`, `2:05`."""
    whole = whole_seconds(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def length_words(seconds: float) -> str:
    """A movie's length said in words, for a screen reader: `7 seconds`, `1 minute`."""
    minutes, rest = divmod(whole_seconds(seconds), 60)
    said = str(ngettext("%(num)d second", "%(num)d seconds", rest))
    if not minutes:
        return said
    whole_minutes = str(ngettext("%(num)d minute", "%(num)d minutes", minutes))
    if not rest:
        return whole_minutes
    # Translators: a length such as "2 minutes and 5 seconds".
    return str(gettext("%(minutes)s and %(seconds)s", minutes=whole_minutes, seconds=said))


def _station_names(value: Any) -> dict[str, str]:
    """Read STATION_NAMES: a JSON object (or a dict) of station ids and names."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError('expected JSON like {"st-1": "Dragon table"}') from None
    if not isinstance(value, dict):
        raise ValueError('expected a JSON object like {"st-1": "Dragon table"}')
    return station_names(value)


def _site_url(value: Any) -> str:
    """Read SITE_URL: scheme://host[:port], no path; empty for the request's own."""
    url = str(value or "").strip().rstrip("/")
    if url and not _SITE_URL_RE.fullmatch(url):
        raise ValueError(f"expected the site's address like https://movies.example.org "
                         f"(no path), found {url!r}")
    return url


def _logo_url(value: Any) -> str:
    """Read FESTIVAL_LOGO_URL: an http(s) address or a path on this site, or empty."""
    url = str(value or "").strip()
    if url and not _LOGO_URL_RE.fullmatch(url):
        raise ValueError(f"expected an http(s) address or a path on this site, found {url!r}")
    return url


def _name(value: Any) -> str:
    """Read the festival's name (the default when empty)."""
    name = str(value or "").strip() or DEFAULT_NAME
    if len(name) > MAX_TITLE_CHARS:
        raise ValueError(f"expected at most {MAX_TITLE_CHARS} characters, found {len(name)}")
    return name


def _movie_size(value: Any) -> tuple[int, int]:
    """Read STOPMO_OUTPUT_SIZE as WIDTHxHEIGHT (the default when empty)."""
    if isinstance(value, tuple):
        return value
    return _parse_size(value) if str(value or "").strip() else DEFAULT_MOVIE_SIZE


def festival_from_config(config: Mapping[str, Any]) -> Festival:
    """Check the festival's settings; raise ValueError naming every bad one at once."""
    checks = {"STOPMO_FESTIVAL_NAME": ("FESTIVAL_NAME", _name),
              "FESTIVAL_LOGO_URL": ("FESTIVAL_LOGO_URL", _logo_url),
              "STATION_NAMES": ("STATION_NAMES", _station_names),
              "STOPMO_OUTPUT_SIZE": ("MOVIE_SIZE", _movie_size),
              "SITE_URL": ("SITE_URL", _site_url),
              "HALL_NAMES": ("HALL_NAMES", _station_names)}
    values: dict[str, Any] = {}
    problems = []
    for variable, (key, parse) in checks.items():
        try:
            values[key] = parse(config.get(key))
        except ValueError as exc:
            problems.append(f"{variable}: {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    return Festival(name=values["FESTIVAL_NAME"], logo_url=values["FESTIVAL_LOGO_URL"],
                    station_names=values["STATION_NAMES"], movie_size=values["MOVIE_SIZE"],
                    site_url=values["SITE_URL"], hall_names=values["HALL_NAMES"])
