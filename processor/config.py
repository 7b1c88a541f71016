"""Processor settings: defaults, then a TOML file, then the environment; checked once."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moviepkg.settings import absolute_path as _path
from moviepkg.settings import choice as _choice
from moviepkg.settings import int_range as _int_range
from moviepkg.settings import read_toml

from .errors import ConfigError

DEFAULT_CONFIG = Path("/etc/stopmo/processor.toml")
SCREENS = ("none", "fake", "mpv")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the processor needs to know, checked."""

    inbox: Path = Path("/var/lib/stopmo/inbox")
    work_dir: Path = Path("/var/lib/stopmo/work")
    storage_url: str = ""  # empty: file://<work_dir>/store
    threads: int = 2
    size: tuple[int, int] = (1280, 720)
    preset: str = "veryfast"
    crf: int = 23
    nice: int = 10  # 0 turns nice and ionice off
    festival_name: str = "stopmo"
    festival_logo: Path | None = None
    timezone: str = "Asia/Jerusalem"
    workers: int = 1
    debounce_seconds: float = 1.0
    rescan_seconds: float = 30.0
    max_attempts: int = 8
    retry_base_seconds: float = 10.0
    screen: str = "none"
    screen_log: Path | None = None  # where the fake screen writes what it shows
    mpv_socket: Path | None = None  # default: <work_dir>/mpv.sock
    screen_recent: int = 30

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


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds, found {value!r}") from None
    if not 0 < number <= 86400:
        raise ValueError(f"expected more than 0 and at most 86400 seconds, found {value!r}")
    return number


def _size(value: Any) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in str(value).lower().split("x"))
    except ValueError:
        raise ValueError(f"expected WIDTHxHEIGHT like 1280x720, found {value!r}") from None
    if not (320 <= width <= 3840 and 180 <= height <= 2160) or width % 2 or height % 2:
        raise ValueError(f"expected even sizes from 320x180 to 3840x2160, found {value!r}")
    return width, height


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def _storage(value: Any) -> str:
    text = _text(value)
    if text.startswith("file:///") or (text.startswith("s3://") and len(text) > 5):
        return text.rstrip("/")
    raise ValueError(f"expected file:///absolute/path or s3://bucket/prefix, found {text!r}")


def _timezone(value: Any) -> str:
    text = _text(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected a time zone like Asia/Jerusalem, found {text!r}") from None
    return text


def _preset(value: Any) -> str:
    return _choice("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")(value)


# TOML section.key -> (settings field, parser, environment variable).
_KEYS: dict[str, tuple[str, Callable[[Any], Any], str | None]] = {
    "paths.inbox": ("inbox", _path, "STOPMO_INBOX"),
    "paths.work_dir": ("work_dir", _path, "STOPMO_WORK_DIR"),
    "storage.url": ("storage_url", _storage, "STORAGE_URL"),
    "encode.threads": ("threads", _int_range(1, 64), "STOPMO_FFMPEG_THREADS"),
    "encode.size": ("size", _size, "STOPMO_OUTPUT_SIZE"),
    "encode.preset": ("preset", _preset, "STOPMO_FFMPEG_PRESET"),
    "encode.crf": ("crf", _int_range(0, 51), None),
    "encode.nice": ("nice", _int_range(0, 19), "STOPMO_NICE"),
    "title.festival_name": ("festival_name", _text, "STOPMO_FESTIVAL_NAME"),
    "title.festival_logo": ("festival_logo", _path, "STOPMO_FESTIVAL_LOGO"),
    "title.timezone": ("timezone", _timezone, "STOPMO_TIMEZONE"),
    "daemon.workers": ("workers", _int_range(1, 16), "STOPMO_WORKERS"),
    "daemon.debounce_seconds": ("debounce_seconds", _seconds, None),
    "daemon.rescan_seconds": ("rescan_seconds", _seconds, "STOPMO_RESCAN_SECONDS"),
    "daemon.max_attempts": ("max_attempts", _int_range(1, 100), None),
    "daemon.retry_base_seconds": ("retry_base_seconds", _seconds, "STOPMO_RETRY_BASE_SECONDS"),
    "screen.kind": ("screen", _choice(*SCREENS), "STOPMO_SCREEN"),
    "screen.log": ("screen_log", _path, "STOPMO_SCREEN_LOG"),
    "screen.mpv_socket": ("mpv_socket", _path, "STOPMO_MPV_SOCKET"),
    "screen.recent": ("screen_recent", _int_range(1, 1000), "STOPMO_SCREEN_RECENT"),
}


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings; raise ConfigError listing every problem as `section.key: message`."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    raw = read_toml(path, DEFAULT_CONFIG, problems)
    for key in sorted(set(raw) - set(_KEYS)):
        problems.append(f"{key}: unknown setting")
    values: dict[str, Any] = {}
    for key, (name, parse, env) in _KEYS.items():
        source, value = key, raw.get(key)
        if env is not None and environ.get(env, "") != "":
            source, value = env, environ[env]
        if value is None:
            continue
        try:
            values[name] = parse(value)
        except ValueError as exc:
            problems.append(f"{source}: {exc}")
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

