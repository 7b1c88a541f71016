"""Commands from the console to a device: the messages, and running each at most once.

A command travels on `stopmo/v1/<device>/<program>/cmd` (only the console may write
there, by the broker's ACL) and its answer on `.../cmd/result`. Each command has an id,
a sender (the operator), the time it was sent and an expiry: a command that arrives
after its expiry is dropped, not run (a helper's "restart the kiosk" must not happen
an hour later, when the uplink or the broker comes back). A device runs a command at
most once: the ids it has answered are kept in a small file that survives restarts,
so a retained or replayed command is answered again with its first result, never run
twice. Results are `done`, `refused` (with why, in words) or `failed` (with why).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .telemetry import TelemetryError, _dump, _load
from .times import parse_utc

OUTCOMES = ("done", "refused", "failed")
REMEMBERED = 500  # answered command ids kept (commands are rare: days of them)
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
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return {key: value.encode() for key, value in doc.items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _remember(self, command_id: str, answer: bytes) -> None:
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
        with self._lock:  # one command at a time, and never one twice
            earlier = self._answered.get(command.id)
            if earlier is not None:
                return earlier
            answer = self._run(command).to_json()
            self._remember(command.id, answer)
            return answer

    def _run(self, command: Command) -> Result:
        now = datetime.fromtimestamp(self.clock(), command.at.tzinfo)
        if now > command.expires:
            return Result(command.id, "refused", now,
                          f"it arrived too late (it expired at {command.expires:%H:%M:%S} UTC)")
        handler = self.handlers.get(command.name)
        if handler is None:
            return Result(command.id, "refused", now,
                          f"this program does not know {command.name!r}")
        try:
            said = handler(command)
        except Refused as why:
            return Result(command.id, "refused", now, str(why))
        except Exception as exc:  # the program goes on; the operator reads why
            return Result(command.id, "failed", now, f"{type(exc).__name__}: {exc}")
        text, data = said if isinstance(said, tuple) else (said or "", {})
        return Result(command.id, "done", now, text, data)
