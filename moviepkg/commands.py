"""Commands from the console to a device: the messages, and running each at most once.

A command travels on `stopmo/v1/<device>/<program>/cmd` (only the console may write
there, by the broker's ACL) and its answer on `.../cmd/result`. Each command has an id,
a sender (the operator), the time it was sent and an expiry: a command that arrives
after its expiry is dropped, not run (a helper's "restart the kiosk" must not happen
an hour later, when the uplink or the broker comes back). A device runs a command at
most once: the ids it has answered are kept in a small file that survives restarts,
so a retained or replayed command is answered again with its first result, never run
twice. Results are `done`, `refused` (with why, in words) or `failed` (with why).

CATALOGUE is the list of commands every program and the console agree on: which
program runs each, its arguments and their types, and how long it stays valid. The
runner refuses a catalogued command whose arguments do not fit, in words, before any
handler sees it.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .telemetry import TelemetryError, _dump, _load
from .times import parse_utc

OUTCOMES = ("done", "refused", "failed")
REMEMBERED = 500  # answered command ids kept (commands are rare: days of them)
KEPT_DATA_BYTES = 2048  # an answer's data (a thumbnail) is not kept beyond this size
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


@dataclass(frozen=True, slots=True)
class Command:
    """One operator's request to one program of one device."""

    id: str
    name: str
    sender: str
    at: datetime
    expires: datetime
    args: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Serialise for the `cmd` topic."""
        return _dump({"id": self.id, "name": self.name, "sender": self.sender, "at": self.at,
                      "expires": self.expires, "args": self.args})


@dataclass(frozen=True, slots=True)
class Result:
    """A device's answer to a command."""

    id: str
    outcome: str  # done, refused or failed
    at: datetime
    detail: str = ""  # why, for refused and failed; what happened, for done
    data: dict[str, Any] = field(default_factory=dict)  # e.g. a small thumbnail

    def to_json(self) -> bytes:
        """Serialise for the `cmd/result` topic."""
        return _dump({"id": self.id, "outcome": self.outcome, "at": self.at,
                      "detail": self.detail, "data": self.data})


def parse_command(payload: bytes) -> Command:
    """Read a `cmd` message; TelemetryError names what is wrong."""
    doc = _load("cmd", payload)
    for name, rule in (("id", _ID_RE), ("name", _NAME_RE)):
        if not isinstance(doc.get(name), str) or not rule.fullmatch(doc[name]):
            raise TelemetryError(f"cmd.{name}", f"a command {name}", repr(doc.get(name)))
    sender = doc.get("sender")
    if not isinstance(sender, str) or not 0 < len(sender) <= 64 or not sender.isprintable():
        raise TelemetryError("cmd.sender", "the operator's name", repr(sender))
    args = doc.get("args", {})
    if not isinstance(args, dict):
        raise TelemetryError("cmd.args", "an object", type(args).__name__)
    until = doc.get("expires")
    try:
        expires = parse_utc(until if isinstance(until, str) else "")
    except ValueError:
        raise TelemetryError("cmd.expires", "a UTC timestamp", repr(until)) from None
    return Command(doc["id"], doc["name"], sender, doc["at"], expires, args)


def parse_result(payload: bytes) -> Result:
    """Read a `cmd/result` message."""
    doc = _load("cmd/result", payload)
    if not isinstance(doc.get("id"), str) or not _ID_RE.fullmatch(doc["id"]):
        raise TelemetryError("cmd/result.id", "a command id", repr(doc.get("id")))
    if doc.get("outcome") not in OUTCOMES:
        raise TelemetryError("cmd/result.outcome", " or ".join(OUTCOMES),
                             repr(doc.get("outcome")))
    detail, data = doc.get("detail", ""), doc.get("data", {})
    if not isinstance(detail, str) or not isinstance(data, dict):
        raise TelemetryError("cmd/result", "detail as text and data as an object", "other")
    return Result(doc["id"], doc["outcome"], doc["at"], detail, data)


ARG_TYPES: dict[str, tuple[type, ...]] = {"bool": (bool,), "text": (str,)}


@dataclass(frozen=True, slots=True)
class Spec:
    """One command of the catalogue: who runs it, what it takes, what it is for."""

    name: str
    program: str  # moviepkg.telemetry.PROGRAMS
    label: str  # the console's button
    purpose: str  # when to use it, in an operator's words
    args: dict[str, str] = field(default_factory=dict)  # name -> "bool" or "text"
    required: tuple[str, ...] = ()  # args that must be given
    ttl_s: float = 60.0  # a command older than this when it arrives is dropped
    run_s: float = 30.0  # how long it may take once started (the console waits as long)

    def problem(self, args: Mapping[str, Any]) -> str | None:
        """Why args do not fit this command, in words; None when they do."""
        for name in self.required:
            if args.get(name) in (None, ""):
                return f"{self.name} needs {name.replace('_', ' ')}"
        for name, value in args.items():
            kind = self.args.get(name)
            if kind is None:
                return f"{self.name} takes no {name.replace('_', ' ')}"
            too_long = isinstance(value, str) and len(value) > 200
            if not isinstance(value, ARG_TYPES[kind]) or too_long:
                wanted = "true or false" if kind == "bool" else "short text"
                return f"{name.replace('_', ' ')} must be {wanted}"
        return None


CATALOGUE: dict[str, Spec] = {spec.name: spec for spec in (
    Spec("identify", "kiosk", "Identify",
         "The kiosk shows its station number, huge, and flashes for 15 s: find it in a dark "
         "hall."),
    Spec("out-of-order", "kiosk", "Out of order",
         "on: a friendly 'out of order' picture, buttons ignored, the movie in progress kept; "
         "off: back to work.", {"on": "bool"}, ("on",)),
    Spec("restart-kiosk", "kiosk", "Restart kiosk",
         "Restart the kiosk program (a frozen or odd screen). Refused while a child is "
         "shooting unless forced; a forced restart comes back into the same movie.",
         {"force": "bool"}),
    Spec("test-capture", "kiosk", "Test capture",
         "Take a picture with the camera and show a small copy here: is it pointed, lit, "
         "in focus?", ttl_s=30.0),
    Spec("deliver-now", "sync", "Deliver now",
         "Try to deliver the outbox now instead of at the next cycle.", run_s=600.0),
    Spec("retry", "processor", "Retry",
         "Let a failed package try again now.", {"package_id": "text"}, ("package_id",)),
    Spec("release", "processor", "Release",
         "Put a quarantined package back in the inbox for another try (after fixing why it "
         "was quarantined).", {"entry": "text"}, ("entry",)),
    Spec("delete", "processor", "Delete",
         "Delete a quarantined package for good.", {"entry": "text"}, ("entry",)),
    Spec("publish-now", "processor", "Publish now",
         "Try the movies waiting to publish now, without waiting for their backoff (one "
         "movie, or all).", {"package_id": "text"}),
    Spec("take-down", "processor", "Take down",
         "A family asks: remove a movie (code or package id) from the website and the public "
         "store; keep_on_screen keeps it in the hall's loop.",
         {"movie": "text", "keep_on_screen": "bool"}, ("movie",), ttl_s=600.0, run_s=600.0),
    Spec("next", "screen", "Next", "Skip to the next movie on the big screen."),
    Spec("play", "screen", "Play", "Play one movie now on the big screen.",
         {"package_id": "text"}, ("package_id",)),
    Spec("reload", "screen", "Reload", "Rebuild the big screen's loop from the movies on disk."),
)}


def new_command(name: str, sender: str, args: Mapping[str, Any], now: datetime,
                ttl_s: float | None = None) -> Command:
    """A fresh command of the catalogue (a new id; expiring after its ttl)."""
    spec = CATALOGUE[name]
    ttl = spec.ttl_s if ttl_s is None else ttl_s
    return Command(secrets.token_hex(8), name, sender, now, now + timedelta(seconds=ttl),
                   dict(args))


class Refused(Exception):
    """A handler says no, in words an operator understands (a lock held, a state)."""


Handler = Callable[[Command], "str | tuple[str, dict[str, Any]] | None"]


class CommandRunner:
    """Run each command at most once, before its expiry, with the program's handlers.

    handlers: command name -> a function that does it and returns what happened (text,
    or text and data), raises Refused (why not) or any other exception (failed).
    """

    def __init__(self, handlers: Mapping[str, Handler], answered: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.handlers = dict(handlers)
        self.path = answered
        self.clock = clock
        self._lock = threading.Lock()
        self._answered: dict[str, bytes] = self._load()

    def _load(self) -> dict[str, bytes]:
        """The answers given before (none when the file is missing or unreadable)."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return {key: value.encode() for key, value in doc.items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _remember(self, command_id: str, answer: bytes) -> None:
        """Keep an answer, across restarts, for a replay of the same command. A bulky
        answer (a test capture's thumbnail) is kept without its data: the file stays
        small on a station's SD card, and a replay says what happened without the picture."""
        if len(answer) > KEPT_DATA_BYTES:
            result = parse_result(answer)
            answer = Result(result.id, result.outcome, result.at, result.detail).to_json()
        self._answered[command_id] = answer
        while len(self._answered) > REMEMBERED:
            del self._answered[next(iter(self._answered))]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(
            {key: value.decode() for key, value in self._answered.items()}).encode())

    def handle(self, payload: bytes) -> bytes | None:
        """The answer to publish for one `cmd` message, or None for one not to answer."""
        try:
            command = parse_command(payload)
        except TelemetryError:
            return None  # not a command of this version: nobody to answer
        # Late or not is judged on arrival: waiting behind a long command (a delivery, a
        # take-down waiting for an encode) does not make this one late.
        arrived = datetime.fromtimestamp(self.clock(), command.at.tzinfo)
        with self._lock:  # one command at a time, and never one twice
            earlier = self._answered.get(command.id)
            if earlier is not None:
                return earlier
            result = self._run(command, arrived)
            self._remember(command.id, result.to_json())
            return result.to_json()

    def _run(self, command: Command, arrived: datetime) -> Result:
        """Run one command (not answered before) and say how it went."""
        now = datetime.fromtimestamp(self.clock(), command.at.tzinfo)
        if arrived > command.expires:
            return Result(command.id, "refused", now,
                          f"it arrived too late (it expired at {command.expires:%H:%M:%S} UTC)")
        handler = self.handlers.get(command.name)
        if handler is None:
            return Result(command.id, "refused", now,
                          f"this program does not know {command.name!r}")
        spec = CATALOGUE.get(command.name)
        problem = spec.problem(command.args) if spec is not None else None
        if problem is not None:
            return Result(command.id, "refused", now, problem)
        try:
            said = handler(command)
        except Refused as why:
            return Result(command.id, "refused", now, str(why))
        except Exception as exc:  # the program goes on; the operator reads why
            return Result(command.id, "failed", now, f"{type(exc).__name__}: {exc}")
        text, data = said if isinstance(said, tuple) else (said or "", {})
        return Result(command.id, "done", now, text, data)
