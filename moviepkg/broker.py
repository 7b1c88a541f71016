"""Where the telemetry broker is and how a device logs in: the `[telemetry]` settings.

Both programs read the same four keys (`telemetry_keys`), each into its own settings:

- `telemetry.url` (STOPMO_MQTT_URL): `mqtts://host:port` (TLS), or `mqtt://host:port`
  on loopback only (the LAN listener is TLS). Empty or unset: telemetry is off, and
  the program says so once; a bad URL is a settings error, never a silent "off".
- `telemetry.device` (STOPMO_MQTT_DEVICE): the box's name and broker user; a station
  defaults to its station id, the processing unit to `processor`.
- `telemetry.password_file` (STOPMO_MQTT_PASSWORD_FILE): the device's broker password;
  unset for a broker that lets anonymous clients in (the one-machine festival).
- `telemetry.ca_file` (STOPMO_MQTT_CA): the CA that signed the broker's certificate
  (mqtts only; unset: the system's CAs).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .settings import Key, absolute_path
from .telemetry import is_device

PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """[telemetry]: the broker, this box's name on it, and its credentials."""

    url: str = ""  # empty: telemetry off
    device: str = ""  # empty: the program's default (station id, or "processor")
    password_file: Path | None = None
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A checked broker address."""

    host: str
    port: int
    tls: bool


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_mqtt_url(url: str) -> Endpoint:
    """Check `mqtt(s)://host[:port]`; ValueError says what was expected."""
    expected = f"expected mqtts://host:port, or mqtt://127.0.0.1:port, found {url!r}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(expected) from None
    if parts.scheme not in PORTS or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(expected)
    if parts.scheme == "mqtt" and not _loopback(parts.hostname):
        raise ValueError(f"plain mqtt:// is for loopback only; use mqtts:// for "
                         f"{parts.hostname!r}")
    return Endpoint(parts.hostname, port or PORTS[parts.scheme], parts.scheme == "mqtts")


def mqtt_url(value: Any) -> str:
    """A broker URL, or "" for telemetry off (a settings parser)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a URL like mqtts://processor.lan:8883, found {value!r}")
    url = value.strip()
    if url:
        parse_mqtt_url(url)
    return url


def device_name(value: Any) -> str:
    """A device name: lowercase letters, digits and dashes (a settings parser)."""
    if not isinstance(value, str) or not is_device(value):
        raise ValueError(f"expected lowercase letters, digits and dashes, found {value!r}")
    return value


def telemetry_keys(field_prefix: str = "") -> tuple[Key, ...]:
    """The `[telemetry]` rows; field_prefix names flat settings fields (`telemetry_url`)."""
    rows = (("url", mqtt_url, "STOPMO_MQTT_URL"), ("device", device_name, "STOPMO_MQTT_DEVICE"),
            ("password_file", absolute_path, "STOPMO_MQTT_PASSWORD_FILE"),
            ("ca_file", absolute_path, "STOPMO_MQTT_CA"))
    return tuple(Key("telemetry", name, parse, env,
                     field=f"{field_prefix}{name}" if field_prefix else "")
                 for name, parse, env in rows)
