"""Console settings: defaults, then a TOML file, then the environment; checked once."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from moviepkg.broker import parse_mqtt_url
from moviepkg.ids import is_station_id
from moviepkg.settings import (
    Key,
    absolute_path,
    boolean,
    int_range,
    load_values,
    number,
    text,
    timezone,
)
from moviepkg.times import DEFAULT_TIMEZONE, TIMEZONE_ENV

from .errors import ConfigError
from .hours import OpeningHours, parse_hours

DEFAULT_CONFIG = Path("/etc/stopmo/ops.toml")
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When each alert rule fires (seconds unless named otherwise)."""

    offline_s: float = 5.0  # presence `offline` for this long (a restart takes less)
    stale_s: float = 30.0  # no state for this long: not reporting
    helper_s: float = 60.0  # a kiosk on the helper screen
    outbox_s: float = 300.0  # a station's oldest waiting movie
    publish_s: float = 600.0  # the processor's oldest unpublished movie
    disk_percent: float = 10.0  # free disk below this
    hot_c: float = 80.0  # CPU temperature at or above this
    no_movie_s: float = 1800.0  # no movie finished at a station, in opening hours
    # A movie's step (ops.movies.STEPS) that takes longer than its limit, or stays
    # unfinished past it, is an alert; so is one slower than slow_factor x the step's p95
    # over its last slow_window completions (once there are 10), if it took slow_floor_s.
    step_deliver_s: float = 600.0  # shot_finished -> delivered (the station's outbox)
    step_receive_s: float = 300.0  # delivered -> received (the processor's inbox)
    step_validate_s: float = 60.0  # received -> validated
    step_encode_s: float = 180.0  # validated -> encoded
    step_to_screen_s: float = 60.0  # encoded -> on_screen
    step_publish_s: float = 900.0  # on_screen -> published (PUBLISH movies only)
    slow_factor: float = 3.0
    slow_window: int = 20  # completions; at least 10, so that a quiet start says nothing
    slow_floor_s: float = 30.0  # shorter steps are never "slow" (2 s against a p95 of 0.3 s)
    slow_keep_s: float = 1800.0  # a slow step's alert clears after this (or a normal one)
    # A movie stuck past its step's limit for this long more stops counting as stuck: one
    # that will never move on (its outbox wiped, an event lost) lets its alert clear.
    stuck_keep_s: float = 7200.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the console needs to know, checked."""

    mqtt_url: str = DEFAULT_MQTT_URL
    mqtt_user: str = "console"
    mqtt_password_file: Path | None = None
    mqtt_ca_file: Path | None = None
    # A persistent MQTT session under this client id: while the console is away (a restart,
    # an upgrade) the broker keeps the events for it; empty: a fresh session each time.
    mqtt_session: str = "console"
    db_path: Path = Path("/var/lib/stopmo/ops/console.sqlite3")
    keep_days: int = 7  # history and events older than this are dropped
    bind: str = "127.0.0.1"
    port: int = 8470
    secure_cookies: bool = False  # set when a TLS proxy serves the console
    secret_key_file: Path | None = None
    users_file: Path = Path("/etc/stopmo/ops-users")
    stations: tuple[str, ...] = ()  # expected stations; others appear when they report
    processor: str = "processor"  # the processing unit's device name
    alert_urls: tuple[str, ...] = ()  # Apprise URLs
    opening_hours: OpeningHours = field(default_factory=OpeningHours)
    timezone: str = DEFAULT_TIMEZONE
    every_s: float = 1.0  # how often the alert rules run
    posters_dir: Path | None = None  # the processor's work/movies: posters of what plays
    thresholds: Thresholds = field(default_factory=Thresholds)


def mqtt_url(value: Any) -> str:
    """`mqtts://host[:port]`, or `mqtt://` on loopback only (moviepkg.broker checks it)."""
    url = text(value)
    parse_mqtt_url(url)
    return url


def bind_address(value: Any) -> str:
    """A loopback or private (LAN/VPN) IP address: the console never listens on the WAN."""
    word = text(value)
    try:
        address = ipaddress.ip_address(word)
    except ValueError:
        raise ValueError(f"expected an IP address, found {word!r}") from None
    if address.is_unspecified or not (address.is_loopback or address.is_private):
        raise ValueError(f"expected a loopback or LAN/VPN (private) address, found {word!r}")
    return word


def word_list(check: Callable[[str], bool], what: str) -> Callable[[Any], tuple[str, ...]]:
    """A parser of a TOML list, or a string of words split on commas and spaces."""
    def parse(value: Any) -> tuple[str, ...]:
        items = value if isinstance(value, list) else str(value).replace(",", " ").split()
        words = tuple(str(item).strip() for item in items if str(item).strip())
        bad = [word for word in words if not check(word)]
        if bad:
            raise ValueError(f"expected {what}, found {bad[0]!r}")
        return words
    return parse


def _apprise_url(url: str) -> bool:
    return "://" in url and url.isprintable()


_seconds = number(0, 7 * 86400, "seconds")
_THRESHOLD_PARSERS: dict[str, Callable[[Any], Any]] = {
    "disk_percent": number(0, 100, "percent"), "hot_c": number(0, 150, "°C"),
    "slow_factor": number(1, 100, "times the p95"), "slow_window": int_range(10, 1000)}
KEYS: tuple[Key, ...] = (
    Key("mqtt", "url", mqtt_url, "STOPMO_MQTT_URL", field="mqtt_url"),
    Key("mqtt", "user", text, "STOPMO_MQTT_USER", field="mqtt_user"),
    Key("mqtt", "password_file", absolute_path, "STOPMO_MQTT_PASSWORD_FILE",
        field="mqtt_password_file"),
    Key("mqtt", "ca_file", absolute_path, "STOPMO_MQTT_CA_FILE", field="mqtt_ca_file"),
    Key("mqtt", "session", text, "STOPMO_MQTT_SESSION", field="mqtt_session"),
    Key("db", "path", absolute_path, "STOPMO_OPS_DB", field="db_path"),
    Key("db", "keep_days", int_range(1, 366), field="keep_days"),
    Key("web", "bind", bind_address, "STOPMO_OPS_BIND"),
    Key("web", "port", int_range(1, 65535), "STOPMO_OPS_PORT"),
    Key("web", "secure_cookies", boolean, "STOPMO_OPS_SECURE_COOKIES"),
    Key("web", "secret_key_file", absolute_path, "STOPMO_OPS_SECRET_KEY_FILE"),
    Key("web", "users_file", absolute_path, "STOPMO_OPS_USERS"),
    Key("fleet", "stations", word_list(is_station_id, "station names like st-1"),
        "STOPMO_OPS_STATIONS"),
    Key("fleet", "processor", word_list(is_station_id, "a device name"), field="processor"),
    Key("alerts", "urls", word_list(_apprise_url, "Apprise URLs like ntfy://topic"),
        "STOPMO_ALERT_URLS", field="alert_urls"),
    Key("alerts", "opening_hours", parse_hours, "STOPMO_OPENING_HOURS"),
    Key("alerts", "timezone", timezone, TIMEZONE_ENV),
    Key("alerts", "every_s", number(0, 60, "seconds"), field="every_s"),
    Key("screen", "posters_dir", absolute_path, "STOPMO_OPS_POSTERS", field="posters_dir"),
    *(Key("alerts", name, _THRESHOLD_PARSERS.get(name, _seconds), field=f"thresholds.{name}")
      for name in Thresholds.__dataclass_fields__),
)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings; raise ConfigError listing every problem as `section.key: message`."""
    found, problems = load_values(KEYS, path, DEFAULT_CONFIG, environ)
    values = {key.target: value for key, value in found.items()}
    if "processor" in values:
        if len(values["processor"]) != 1:
            problems.append("fleet.processor: expected one device name")
        values["processor"] = values["processor"][0] if values["processor"] else ""
    url = values.get("mqtt_url", DEFAULT_MQTT_URL)
    if url.startswith("mqtts:") and values.get("mqtt_ca_file") is None:
        problems.append("mqtt.ca_file: expected the CA that signed the broker's certificate "
                        "(mqtts:// needs it)")
    for name, dotted in (("mqtt_password_file", "mqtt.password_file"),
                         ("mqtt_ca_file", "mqtt.ca_file"),
                         ("secret_key_file", "web.secret_key_file")):
        file = values.get(name)
        if file is not None and not file.is_file():
            problems.append(f"{dotted}: no such file {str(file)!r}")
    if problems:
        raise ConfigError(problems)
    nested = {key.removeprefix("thresholds."): value for key, value in values.items()
              if key.startswith("thresholds.")}
    flat = {key: value for key, value in values.items() if not key.startswith("thresholds.")}
    return replace(Settings(), thresholds=replace(Thresholds(), **nested), **flat)
