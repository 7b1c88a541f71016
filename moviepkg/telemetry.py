"""The telemetry contract: MQTT topics and the messages every program sends (version 1).

Topics: `stopmo/v1/<device>/<program>/<kind>`.
- device: the box, as the inventory names it (`st-3`, `processor`, `console`); it is
  the broker user name too, so the ACL's `%u` patterns tie each box to its own tree.
- program: `kiosk`, `sync`, `processor`, `screen`, `system` (the box itself), `console`.
- kind: `online` (retained presence: `online`, the Last Will `offline`, an explicit
  `offline` before a clean stop), `state` (a retained snapshot, sent on change and at
  least every STATE_SECONDS), `event` (what happens to a movie), `cmd` (the console's
  commands, read by the device) and `cmd/result` (its answers).

Messages are JSON objects with `v` (the version) and `at` (UTC, ISO 8601 Z, with
milliseconds: the console measures steps between events).
`parse_message` checks them like the movie record's parser: a TelemetryError names
the field, what was expected and what was found. A state's known fields are type
checked; fields this version does not know are kept in `extra` (a newer program may
report more), so a console reads what it understands and shows the rest as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import PackageError
from .ids import is_package_id
from .times import format_utc, parse_utc

VERSION = 1
ROOT = f"stopmo/v{VERSION}"
STATE_SECONDS = 10.0  # a state is sent at least this often
KEEPALIVE_SECONDS = 5  # the broker drops a silent client after 1.5 x this
PROGRAMS = ("kiosk", "sync", "processor", "screen", "system", "console")
KINDS = ("online", "state", "event", "cmd", "cmd/result")
SCREENS = ("attract", "shooting", "playing", "finish", "done", "helper", "out_of_order")
# What happens to a movie, in the order it usually happens; the last ones are what an
# operator or a failure does to it (a failure's detail says whether it is retried).
EVENTS = ("shot_started", "shot_finished", "delivered", "received", "validated", "encoded",
          "on_screen", "published", "quarantined", "failed", "publish_failed", "retried",
          "released", "deleted", "taken_down")
_DEVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_NUMBER = (int, float)
_TEXT = (str,)
_OPT_TEXT = (str, type(None))
_OPT_NUMBER = (int, float, type(None))
_OPT_BOOL = (bool, type(None))

# Known state fields per program and the JSON types each may hold.
STATE_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "kiosk": {"screen": _TEXT, "frames": (int,), "last_capture_at": _OPT_TEXT,
              "camera_ok": (bool,), "last_error": _OPT_TEXT, "version": _TEXT,
              "out_of_order": (bool,), "identify": (bool,),
              "website_url_problem": _TEXT},  # a QR address families cannot reach
    "sync": {"waiting": (int,), "oldest_waiting_s": _OPT_NUMBER,
             "last_delivery_at": _OPT_TEXT, "bytes_sent": (int,), "last_error": _OPT_TEXT},
    "processor": {"steps": (dict,), "encoding": (dict, type(None)),
                  "publish_backlog": (int,), "publish_oldest_s": _OPT_NUMBER,
                  "publish_last_error": _OPT_TEXT, "store_reachable": _OPT_BOOL,
                  "quarantined_today": (int,), "last_durations": (dict,),
                  "disk_free_bytes": (int,), "taken_down": (int,),
                  # the H.264 encoder in use, and the frames per second of its last movie
                  "encoder": _TEXT, "encode_fps": _OPT_NUMBER},
    "screen": {"connected": (bool,), "playing": _OPT_TEXT, "playlist": (int,)},
    "system": {"cpu_temp_c": _OPT_NUMBER, "throttled_now": _OPT_BOOL,
               "under_voltage_now": _OPT_BOOL, "throttled_since_boot": _OPT_BOOL,
               "under_voltage_since_boot": _OPT_BOOL, "load1": _NUMBER,
               "mem_available_bytes": (int,), "mem_total_bytes": (int,),
               "disk_free_bytes": (int,), "disk_total_bytes": (int,), "uptime_s": _NUMBER,
               "ip": _OPT_TEXT, "version": _TEXT},
    "console": {},
}


class TelemetryError(PackageError):
    """A topic or a telemetry message is not valid."""

    reason = "telemetry"


def is_device(name: str) -> bool:
    """Tell whether name is a device (box) name: lowercase letters, digits, dashes."""
    return bool(_DEVICE_RE.fullmatch(name))


def topic(device: str, program: str, kind: str) -> str:
    """The topic of one device's program and kind; ValueError for unknown parts."""
    if not is_device(device) or program not in PROGRAMS or kind not in KINDS:
        raise ValueError(f"not a telemetry topic: {device}/{program}/{kind}")
    return f"{ROOT}/{device}/{program}/{kind}"


def split_topic(name: str) -> tuple[str, str, str]:
    """(device, program, kind) of a telemetry topic; TelemetryError for anything else."""
    parts = name.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != ROOT:
        raise TelemetryError("topic", f"{ROOT}/<device>/<program>/<kind>", name)
    device, program, kind = parts[2], parts[3], "/".join(parts[4:])
    if not is_device(device) or program not in PROGRAMS or kind not in KINDS:
        raise TelemetryError("topic", f"{ROOT}/<device>/<program>/<kind>", name)
    return device, program, kind


@dataclass(frozen=True, slots=True)
class Presence:
    """online or offline, and since when."""

    online: bool
    at: datetime

    def to_json(self) -> bytes:
        """Serialise for the `online` topic."""
        return _dump({"status": "online" if self.online else "offline", "at": self.at})


@dataclass(frozen=True, slots=True)
class State:
    """A program's snapshot: its known fields, checked, and those this version ignores."""

    program: str
    at: datetime
    fields: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Serialise for the `state` topic."""
        return _dump({**self.extra, **self.fields, "at": self.at})


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to a movie."""

    kind: str
    package_id: str
    at: datetime
    detail: str = ""

    def to_json(self) -> bytes:
        """Serialise for the `event` topic."""
        return _dump({"kind": self.kind, "package_id": self.package_id, "at": self.at,
                      "detail": self.detail})


def _dump(doc: Mapping[str, Any]) -> bytes:
    body = {key: format_utc(value, millis=True) if isinstance(value, datetime) else value
            for key, value in doc.items()}
    return json.dumps({"v": VERSION, **body}, ensure_ascii=False,
                      separators=(",", ":")).encode()


def _load(where: str, payload: bytes) -> dict[str, Any]:
    if len(payload) > 64 * 1024:
        raise TelemetryError(where, "at most 64 KiB", f"{len(payload)} bytes")
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        raise TelemetryError(where, "a JSON object", "something else") from None
    if not isinstance(doc, dict):
        raise TelemetryError(where, "a JSON object", type(doc).__name__)
    if doc.get("v") != VERSION:
        raise TelemetryError(f"{where}.v", str(VERSION), repr(doc.get("v")))
    at = doc.get("at")
    try:
        doc["at"] = parse_utc(at if isinstance(at, str) else "")
    except ValueError:
        raise TelemetryError(f"{where}.at", "a UTC timestamp", repr(at)) from None
    return doc


def parse_presence(payload: bytes) -> Presence:
    """Read an `online` message."""
    doc = _load("online", payload)
    if doc.get("status") not in ("online", "offline"):
        raise TelemetryError("online.status", "online or offline", repr(doc.get("status")))
    return Presence(doc["status"] == "online", doc["at"])


def parse_state(program: str, payload: bytes) -> State:
    """Read a `state` message of program: known fields type checked, others kept aside."""
    if program not in STATE_FIELDS:
        raise TelemetryError("state", f"one of {', '.join(PROGRAMS)}", program)
    doc = _load(f"{program}.state", payload)
    known = STATE_FIELDS[program]
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in doc.items():
        if name in ("v", "at"):
            continue
        if name not in known:
            extra[name] = value
        elif isinstance(value, bool) and bool not in known[name]:
            raise TelemetryError(f"{program}.state.{name}", _names(known[name]), repr(value))
        elif not isinstance(value, known[name]):
            raise TelemetryError(f"{program}.state.{name}", _names(known[name]),
                                 repr(value)[:40])
        else:
            fields[name] = value
    if program == "kiosk" and fields.get("screen") not in (None, *SCREENS):
        raise TelemetryError("kiosk.state.screen", ", ".join(SCREENS), repr(fields["screen"]))
    return State(program, doc["at"], fields, extra)


def parse_event(payload: bytes) -> Event:
    """Read an `event` message."""
    doc = _load("event", payload)
    if doc.get("kind") not in EVENTS:
        raise TelemetryError("event.kind", ", ".join(EVENTS), repr(doc.get("kind")))
    package_id = doc.get("package_id")
    if not isinstance(package_id, str) or not is_package_id(package_id):
        raise TelemetryError("event.package_id", "a package id", repr(package_id))
    detail = doc.get("detail", "")
    if not isinstance(detail, str) or len(detail) > 500:
        raise TelemetryError("event.detail", "text of at most 500 characters", "other")
    return Event(doc["kind"], package_id, doc["at"], detail)


def _names(types: tuple[type, ...]) -> str:
    words = {int: "an integer", float: "a number", str: "text", bool: "true or false",
             dict: "an object", type(None): "null"}
    return " or ".join(dict.fromkeys(words.get(t, t.__name__) for t in types))
