"""Processor settings: defaults, then a TOML file, then the environment; checked once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from moviepkg.broker import TelemetrySettings, telemetry_keys
from moviepkg.record import DEFAULT_HALL, is_name
from moviepkg.settings import (
    Key,
    absolute_path,
    choice,
    int_range,
    load_values,
    number,
    size,
    station_names,
    text,
    timezone,
)
from moviepkg.storage import parse_storage_url
from moviepkg.times import DEFAULT_TIMEZONE, TIMEZONE_ENV

from .encoders import AUTO, CODECS
from .errors import ConfigError

DEFAULT_CONFIG = Path("/etc/stopmo/processor.toml")
SCREENS = ("none", "fake", "mpv")
LANGUAGES = ("he", "ar", "en")  # of the title card (titlecard.py)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the processor needs to know, checked."""

    inbox: Path = Path("/var/lib/stopmo/inbox")
    work_dir: Path = Path("/var/lib/stopmo/work")
    storage_url: str = ""  # empty: file://<work_dir>/store
    unit: str = DEFAULT_HALL  # this processing unit's hall: it writes only its own indexes
    festival_edition: str = ""  # e.g. "jff-2026"; empty: each movie's year
    threads: int = 2
    size: tuple[int, int] = (1280, 720)
    preset: str = "veryfast"
    crf: int = 23
    codec: str = "libx264"  # or h264_v4l2m2m (the ARM board's hardware), or auto (try it)
    bitrate_kbps: int = 0  # the hardware encoder's bit rate; 0: from size and fps
    nice: int = 10  # 0 turns nice and ionice off
    festival_name: str = "stopmo"
    festival_logo: Path | None = None
    timezone: str = DEFAULT_TIMEZONE
    language: str = "he"  # of the title card's date and default station names
    public_url: str = ""  # the public website; empty: the card shows the code, no QR code
    station_names: tuple[tuple[str, str], ...] = ()  # [title.stations]: station id, name
    workers: int = 1  # packages encoded at once
    debounce_seconds: float = 1.0  # an inbox entry is looked at once quiet this long
    rescan_seconds: float = 30.0  # the inbox is listed again this often
    max_attempts: int = 8  # encode tries before a package is `failed`; publishing never stops
    retry_base_seconds: float = 10.0  # the first encode backoff; doubles, with jitter
    screen: str = "none"
    screen_log: Path | None = None  # where the fake screen writes what it shows
    mpv_socket: Path | None = None  # default: <work_dir>/mpv.sock
    screen_recent: int = 30
    telemetry_url: str = ""  # [telemetry] (moviepkg.broker): empty, telemetry off
    telemetry_device: str = ""  # empty: "processor"
    telemetry_password_file: Path | None = None
    telemetry_ca_file: Path | None = None

    def station_name(self, station_id: str) -> str:
        """The station's friendly name from [title.stations], or "" if it has none."""
        return dict(self.station_names).get(station_id, "")

    @property
    def telemetry(self) -> TelemetrySettings:
        """The [telemetry] settings, as moviepkg.reporting takes them."""
        return TelemetrySettings(self.telemetry_url, self.telemetry_device,
                                 self.telemetry_password_file, self.telemetry_ca_file)

    @property
    def mpv_socket_path(self) -> Path:
        """The socket mpv listens on (`--input-ipc-server`)."""
        return self.mpv_socket or self.work_dir / "mpv.sock"

    @property
    def control_socket(self) -> Path:
        """The socket where the running daemon answers operator commands."""
        return self.work_dir / "control.sock"

    @property
    def store_url(self) -> str:
        """The store to publish into; a folder under the work dir unless set."""
        return self.storage_url or (self.work_dir / "store").resolve().as_uri()

    @property
    def quarantine_dir(self) -> Path:
        """Where invalid packages go, each with a REASON file."""
        return self.work_dir / "quarantine"


def _storage(value: Any) -> str:
    url = text(value)
    parse_storage_url(url)  # raises ValueError with what was expected
    return url.rstrip("/")


def _public_url(value: Any) -> str:
    """The public website's http(s) address, without a trailing slash."""
    url = text(value)
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise ValueError(f"expected the website's http(s) address like "
                         f"https://movies.example.org, found {url!r}")
    return url.rstrip("/")


def _station_names(value: Any) -> tuple[tuple[str, str], ...]:
    """The [title.stations] table: station ids and their names, every bad entry reported."""
    if not isinstance(value, dict):
        raise ValueError('expected a table of station ids and names, like st-1 = "Dragon table"')
    return tuple(sorted(station_names(value).items()))


def _name(value: Any) -> str:
    """A hall or festival name: lowercase letters, digits and dashes (1-41)."""
    found = text(value)
    if not is_name(found):
        raise ValueError(f"expected lowercase letters, digits and dashes (1-41, like "
                         f"hall-2 or jff-2026), found {found!r}")
    return found


def _edition(value: Any) -> str:
    """A festival edition, or empty for each movie's year."""
    return "" if isinstance(value, str) and not value.strip() else _name(value)


_seconds = number(0, 86400, "seconds")
_preset = choice("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")

KEYS: tuple[Key, ...] = (
    Key("paths", "inbox", absolute_path, "STOPMO_INBOX"),
    Key("paths", "work_dir", absolute_path, "STOPMO_WORK_DIR"),
    Key("storage", "url", _storage, "STORAGE_URL", field="storage_url"),
    Key("unit", "id", _name, "STOPMO_UNIT", field="unit"),
    Key("unit", "festival", _edition, "STOPMO_FESTIVAL_EDITION", field="festival_edition"),
    Key("encode", "threads", int_range(1, 64), "STOPMO_FFMPEG_THREADS"),
    Key("encode", "size", size((320, 180), (3840, 2160), even=True), "STOPMO_OUTPUT_SIZE"),
    Key("encode", "preset", _preset, "STOPMO_FFMPEG_PRESET"),
    Key("encode", "crf", int_range(0, 51)),
    Key("encode", "codec", choice(*CODECS, AUTO), "STOPMO_ENCODE_CODEC"),
    Key("encode", "bitrate_kbps", int_range(0, 100_000), "STOPMO_ENCODE_BITRATE_KBPS"),
    Key("encode", "nice", int_range(0, 19), "STOPMO_NICE"),
    Key("title", "festival_name", text, "STOPMO_FESTIVAL_NAME"),
    Key("title", "festival_logo", absolute_path, "STOPMO_FESTIVAL_LOGO"),
    Key("title", "timezone", timezone, TIMEZONE_ENV),
    Key("title", "language", choice(*LANGUAGES), "STOPMO_LANGUAGE"),
    Key("title", "public_url", _public_url, "STOPMO_PUBLIC_URL"),
    Key("title", "stations", _station_names, field="station_names"),
    Key("daemon", "workers", int_range(1, 16), "STOPMO_WORKERS"),
    Key("daemon", "debounce_seconds", _seconds),
    Key("daemon", "rescan_seconds", _seconds, "STOPMO_RESCAN_SECONDS"),
    Key("daemon", "max_attempts", int_range(1, 100)),
    Key("daemon", "retry_base_seconds", _seconds, "STOPMO_RETRY_BASE_SECONDS"),
    Key("screen", "kind", choice(*SCREENS), "STOPMO_SCREEN", field="screen"),
    Key("screen", "log", absolute_path, "STOPMO_SCREEN_LOG", field="screen_log"),
    Key("screen", "mpv_socket", absolute_path, "STOPMO_MPV_SOCKET"),
    Key("screen", "recent", int_range(1, 1000), "STOPMO_SCREEN_RECENT", field="screen_recent"),
    *telemetry_keys("telemetry_"),  # url, device, password_file, ca_file (moviepkg.broker)
)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings; raise ConfigError listing every problem as `section.key: message`."""
    found, problems = load_values(KEYS, path, DEFAULT_CONFIG, environ)
    values = {key.target: value for key, value in found.items()}
    logo = values.get("festival_logo")
    if logo is not None and not logo.is_file():
        problems.append(f"title.festival_logo: no such file {str(logo)!r}")
    if problems:
        raise ConfigError(problems)
    settings = replace(Settings(), **values)
    if settings.inbox == settings.work_dir or settings.work_dir in settings.inbox.parents \
            or settings.inbox in settings.work_dir.parents:
        raise ConfigError([f"paths.work_dir: expected a folder apart from the inbox, found "
                           f"{str(settings.work_dir)!r} with inbox {str(settings.inbox)!r}"])
    if settings.screen == "fake" and settings.screen_log is None:
        settings = replace(settings, screen_log=settings.work_dir / "screen.jsonl")
    return settings

