"""Station settings: defaults, then a TOML file, then the environment; checked once.

Each `[section]` of the file is one frozen dataclass below and each key one row of
`KEYS` (moviepkg.settings.Key rows, as in the processor's settings): a later feature
adds a section class, a field on `StationSettings` and its rows, and gets the same
checks and messages for free.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from moviepkg.broker import TelemetrySettings, telemetry_keys
from moviepkg.ids import is_station_id
from moviepkg.settings import Key, load_values, size
from moviepkg.settings import absolute_path as _path
from moviepkg.settings import boolean as _bool
from moviepkg.settings import choice as _choice
from moviepkg.settings import int_range as _int_range
from moviepkg.settings import number as _number

_size = size((16, 16), (8192, 8192))
LANGUAGES = ("he", "ar", "en")  # the kiosk's words for a helper (stations/words.py)

DEFAULT_CONFIG = Path("/etc/stopmo/station.toml")


class StationError(Exception):
    """Base class of the station's own errors."""


class ConfigError(StationError):
    """One or more settings are wrong; each line is `section.key: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class Paths:
    """[paths]: where packages wait and where delivered ones are kept for a while."""

    outbox: Path = Path("/var/lib/stopmo/outbox")
    sent: Path = Path("/var/lib/stopmo/sent")


@dataclass(frozen=True, slots=True)
class Link:
    """[processor]: how to reach the processing unit (SSH key only, host key pinned)."""

    host: str = ""  # required for delivery
    port: int = 22
    user: str = "stopmo"
    key: Path = Path("/etc/stopmo/station_key")
    known_hosts: Path = Path("/etc/stopmo/known_hosts")


@dataclass(frozen=True, slots=True)
class Delivery:
    """[delivery]: pace, patience and bandwidth of the sync agent."""

    bwlimit_kbps: int = 0  # 0: no limit; else KiB/s, as rsync --bwlimit counts
    interval_seconds: float = 30.0  # a full cycle (deliveries, heartbeat, pruning)
    scan_seconds: float = 2.0  # how often the outbox is looked at for new packages
    retry_base_seconds: float = 2.0  # first backoff; doubles, with jitter
    retry_max_seconds: float = 300.0
    attempts: int = 5  # `sync --once` gives up after this many failed cycles in a row
    timeout_seconds: int = 60  # rsync --timeout and ssh keep-alive: a stalled link dies
    connect_timeout_seconds: int = 10


@dataclass(frozen=True, slots=True)
class Retention:
    """[sent]: how long delivered packages stay on the SD card."""

    retention_days: float = 14.0
    min_free_mb: int = 500  # below this, sent/ is pruned oldest first


@dataclass(frozen=True, slots=True)
class CameraSettings:
    """[camera]: which camera, and the sizes of its two streams."""

    kind: str = "picamera2"  # or "fake" (chosen here, never as a silent fallback)
    size: tuple[int, int] = (1920, 1080)  # captures
    preview_size: tuple[int, int] = (640, 360)  # live view, same field of view


@dataclass(frozen=True, slots=True)
class ButtonSettings:
    """[buttons]: GPIO pins (BCM numbers) of the big buttons, or the keyboard."""

    kind: str = "gpio"  # or "keyboard"
    go: int = 17
    undo: int = 27
    play: int = 22
    onion: int = 23
    finish: int = 24
    bounce_seconds: float = 0.05

    def pins(self) -> dict[Any, int]:
        """Action -> pin."""
        from .flow import Action

        return {Action.GO: self.go, Action.UNDO: self.undo, Action.PLAY: self.play,
                Action.ONION: self.onion, Action.FINISH: self.finish}


@dataclass(frozen=True, slots=True)
class KioskSettings:
    """[kiosk]: the movie's limits, the idle timeouts, the website for the QR code, and the
    language of the few words a helper reads."""

    frame_limit: int = 600  # 60 s at 10 fps
    fps: int = 10
    still_there_seconds: float = 90.0
    give_up_seconds: float = 30.0
    finish_seconds: float = 60.0
    done_seconds: float = 45.0
    website_url: str = "http://127.0.0.1:8000"
    fullscreen: bool = True
    window_size: tuple[int, int] = (1280, 800)  # when not full-screen
    language: str = "he"  # "he", "ar" or "en": the festival is in Jerusalem


@dataclass(frozen=True, slots=True)
class StationSettings:
    """Everything a station program needs to know, checked."""

    station_id: str = ""
    # A station of the deployed festival (Ansible sets it): its QR code must open from home.
    festival: bool = False
    paths: Paths = field(default_factory=Paths)
    processor: Link = field(default_factory=Link)
    delivery: Delivery = field(default_factory=Delivery)
    sent: Retention = field(default_factory=Retention)
    camera: CameraSettings = field(default_factory=CameraSettings)
    buttons: ButtonSettings = field(default_factory=ButtonSettings)
    kiosk: KioskSettings = field(default_factory=KioskSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)  # moviepkg.broker


# --- parsers: value from TOML or the environment -> checked value, or ValueError -------------

def _station_id(value: Any) -> str:
    if not isinstance(value, str) or not is_station_id(value):
        raise ValueError(f"expected lowercase letters, digits and dashes (at most 41), "
                         f"found {value!r}")
    return value


def _host(value: Any) -> str:
    # A name or an address, never something ssh could read as an option or a user.
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}",
                                                      value):
        raise ValueError(f"expected a host name or IP address, found {value!r}")
    return value


def _user(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
        raise ValueError(f"expected a user name, found {value!r}")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s]+", value):
        raise ValueError(f"expected an http(s) URL, found {value!r}")
    return value.rstrip("/")


KEYS: tuple[Key, ...] = (
    Key("station", "id", _station_id, "STOPMO_STATION_ID"),
    Key("station", "festival", _bool, "STOPMO_FESTIVAL"),
    Key("paths", "outbox", _path, "STOPMO_OUTBOX"),
    Key("paths", "sent", _path, "STOPMO_SENT_DIR"),
    Key("processor", "host", _host, "STOPMO_PROCESSOR_HOST"),
    Key("processor", "port", _int_range(1, 65535), "STOPMO_PROCESSOR_PORT"),
    Key("processor", "user", _user, "STOPMO_PROCESSOR_USER"),
    Key("processor", "key", _path, "STOPMO_SSH_KEY"),
    Key("processor", "known_hosts", _path, "STOPMO_KNOWN_HOSTS"),
    Key("delivery", "bwlimit_kbps", _int_range(0, 10_000_000), "STOPMO_BWLIMIT_KBPS"),
    Key("delivery", "interval_seconds", _number(0, 86400, "seconds"), "STOPMO_SYNC_INTERVAL"),
    Key("delivery", "scan_seconds", _number(0, 3600, "seconds")),
    Key("delivery", "retry_base_seconds", _number(0, 3600, "seconds"),
        "STOPMO_RETRY_BASE_SECONDS"),
    Key("delivery", "retry_max_seconds", _number(0, 86400, "seconds")),
    Key("delivery", "attempts", _int_range(1, 1000), "STOPMO_SYNC_ATTEMPTS"),
    Key("delivery", "timeout_seconds", _int_range(5, 3600)),
    Key("delivery", "connect_timeout_seconds", _int_range(1, 600)),
    Key("sent", "retention_days", _number(0, 3650, "days"), "STOPMO_RETENTION_DAYS"),
    Key("sent", "min_free_mb", _int_range(0, 10_000_000), "STOPMO_MIN_FREE_MB"),
    Key("camera", "kind", _choice("picamera2", "fake"), "STOPMO_CAMERA"),
    Key("camera", "size", _size, "STOPMO_CAPTURE_SIZE"),
    Key("camera", "preview_size", _size),
    Key("buttons", "kind", _choice("gpio", "keyboard"), "STOPMO_BUTTONS"),
    *(Key("buttons", name, _int_range(0, 53)) for name in ("go", "undo", "play", "onion",
                                                           "finish")),
    Key("buttons", "bounce_seconds", _number(0, 1, "seconds")),
    Key("kiosk", "frame_limit", _int_range(1, 9999), "STOPMO_FRAME_LIMIT"),
    Key("kiosk", "fps", _int_range(1, 30)),
    Key("kiosk", "still_there_seconds", _number(0, 3600, "seconds"), "STOPMO_STILL_THERE"),
    Key("kiosk", "give_up_seconds", _number(0, 3600, "seconds")),
    Key("kiosk", "finish_seconds", _number(0, 3600, "seconds")),
    Key("kiosk", "done_seconds", _number(0, 3600, "seconds")),
    Key("kiosk", "website_url", _url, "STOPMO_WEBSITE_URL"),
    Key("kiosk", "fullscreen", _bool, "STOPMO_FULLSCREEN"),
    Key("kiosk", "window_size", _size),
    Key("kiosk", "language", _choice(*LANGUAGES), "STOPMO_LANGUAGE"),
    *telemetry_keys(),  # [telemetry]: url, device, password_file, ca_file (moviepkg.broker)
)


def load_settings(path: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> StationSettings:
    """Read settings; raise ConfigError listing every problem as `section.key: message`."""
    found, problems = load_values(KEYS, path, DEFAULT_CONFIG, environ)
    values: dict[str, dict[str, Any]] = {}
    for key, value in found.items():
        values.setdefault(key.section, {})[key.name] = value
    if problems:
        raise ConfigError(problems)
    settings = StationSettings()
    station = values.pop("station", {})
    if "id" in station:
        settings = replace(settings, station_id=station["id"])
    if "festival" in station:
        settings = replace(settings, festival=station["festival"])
    for section, changes in values.items():
        settings = replace(settings, **{section: replace(getattr(settings, section), **changes)})
    return settings


def delivery_problems(settings: StationSettings) -> list[str]:
    """What stops the sync agent from running with these settings, as `section.key: ...`."""
    problems = []
    if not settings.station_id:
        problems.append("station.id: required (e.g. id = \"st-3\"), or STOPMO_STATION_ID")
    if not settings.processor.host:
        problems.append("processor.host: required (the processing unit's address), "
                        "or STOPMO_PROCESSOR_HOST")
    for name in ("key", "known_hosts"):
        file = getattr(settings.processor, name)
        if not file.is_file():
            problems.append(f"processor.{name}: no such file {str(file)!r}")
    paths = settings.paths
    if paths.sent == paths.outbox or paths.outbox in paths.sent.parents \
            or paths.sent in paths.outbox.parents:
        problems.append(f"paths.sent: expected a folder apart from the outbox, found "
                        f"{str(paths.sent)!r} with outbox {str(paths.outbox)!r}")
    delivery = settings.delivery
    if delivery.retry_max_seconds < delivery.retry_base_seconds:
        problems.append("delivery.retry_max_seconds: expected at least retry_base_seconds "
                        f"({delivery.retry_base_seconds:g})")
    return problems



# Names that only a local network resolves: a phone at home cannot open them.
_LOCAL_SUFFIXES = (".local", ".lan", ".internal", ".home.arpa", ".localhost")


def public_url_problem(url: str) -> str | None:
    """Why a phone at home could not open url (loopback, a private address, a LAN-only
    name), or None when it may be public."""
    host = (urlsplit(url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if address.is_loopback:
            return "a loopback address (this machine only)"
        if not address.is_global:
            return "a private address (the festival's network only)"
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "a loopback address (this machine only)"
    if "." not in host or host.endswith(_LOCAL_SUFFIXES):
        return "a name that only the festival's network knows"
    return None


def website_url_problem(settings: StationSettings) -> str | None:
    """In festival mode, why the QR codes of kiosk.website_url would not open at home;
    None when they may, or outside festival mode (a local run on loopback is fine)."""
    if not settings.festival:
        return None
    url = settings.kiosk.website_url
    why = public_url_problem(url)
    if why is None:
        return None
    return (f"kiosk.website_url: {url} is {why}: families who scan the QR code cannot open "
            "their movie from home; set the public site's address (stopmo_public_url in the "
            "Ansible inventory, or STOPMO_WEBSITE_URL)")
