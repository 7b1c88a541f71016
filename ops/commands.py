"""Send an operator's command to a device, and log it (moviepkg.commands is the contract).

A command is logged before it goes out, so that an answer arriving at once finds its row.
It does not go out when its arguments do not fit the catalogue or when the console knows it
is not connected to the broker: it is logged as `refused` by the console then, with why in
words. When the connection turns out to be gone only as it is published, the MQTT client
keeps it and sends it on reconnecting: it stays waiting, with words that say so (a device
drops it if that is after its expiry).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from moviepkg.commands import CATALOGUE, Spec, new_command
from moviepkg.ids import is_package_id, normalize_code
from moviepkg.telemetry import topic

from .console import Console
from .subscriber import Handover

log = logging.getLogger("stopmo.ops.commands")
NOT_CONNECTED = "the console is not connected to the broker: nothing was sent"
NOT_TAKEN = "the MQTT client did not take it: nothing was sent"
QUEUE_FULL = ("too many messages already wait for the broker to come back: nothing was "
              "sent")
QUEUED = "queued: it goes out when the broker is back, if before {expires:%H:%M:%S}"
# The programs an operator commands on each kind of device (system takes no commands).
PROGRAMS: dict[str, tuple[str, ...]] = {"station": ("kiosk", "sync"),
                                        "processor": ("processor", "screen")}
PROGRAM_TITLES = {"kiosk": "Kiosk", "sync": "Sync agent", "processor": "Processor",
                  "screen": "Big screen"}
MOVIE_ARGS = ("package_id", "movie", "entry")  # what a command's movie is, in this order
_TRUE, _FALSE = ("true", "on", "yes", "1"), ("false", "off", "no", "0")


def commands_for(role: str) -> dict[str, list[Spec]]:
    """The catalogue's commands a kind of device runs, per program, in catalogue order."""
    return {program: [spec for spec in CATALOGUE.values() if spec.program == program]
            for program in PROGRAMS.get(role, ())}


def form_args(spec: Spec, form: Mapping[str, str]) -> dict[str, Any]:
    """A command's arguments from a submitted form: its own fields only, booleans as such.

    An empty text field or a missing checkbox is left out (the device's default); a
    boolean that is not a yes or no stays text, so that the spec says why it does not fit.
    """
    args: dict[str, Any] = {}
    for name, kind in spec.args.items():
        raw = form.get(name)
        if raw is None:
            continue
        value = raw.strip()
        if kind == "bool":
            lowered = value.lower()
            args[name] = True if lowered in _TRUE else False if lowered in _FALSE else value
        elif value:
            args[name] = value
    return args


def problem(spec: Spec, args: dict[str, Any]) -> str | None:
    """Why args do not fit, in words (the catalogue's check, then the movie's); None if they do.

    A take-down's code is written the canonical way (`7axk-my` becomes `7AXKMY`).
    """
    why = spec.problem(args)
    if why is not None:
        return why
    package_id = args.get("package_id")
    if isinstance(package_id, str) and not is_package_id(package_id):
        return f"{package_id!r} is not a package id (like st-3-20260501t120000z-beef)"
    movie = args.get("movie")
    if isinstance(movie, str):
        code = normalize_code(movie)  # six letters and digits read as a code first
        if code is not None:
            args["movie"] = code
        elif not is_package_id(movie):
            return (f"{movie!r} is neither a movie code (6 letters and digits, like 7AXKMY) "
                    "nor a package id")
    return None


def movie_of(args: Mapping[str, Any]) -> str | None:
    """The movie a command is about (package id, code or quarantine entry), or None."""
    for name in MOVIE_ARGS:
        value = args.get(name)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of one command the console was asked to send."""

    id: str
    device: str
    name: str
    args: dict[str, Any]
    refused: str | None = None  # why the console did not send it, in words (as logged)
    queued: str | None = None  # it waits for the broker to come back, in words (as logged)

    @property
    def kind(self) -> str:
        """The flash line's kind: `sent`, `queued` or `refused`."""
        return "refused" if self.refused else "queued" if self.queued else "sent"

    @property
    def words(self) -> str:
        """One line for the operator: what was sent, or why nothing was (yet)."""
        what = describe(self.name, self.args)
        said = self.refused or self.queued
        if said is not None:
            return f"Command {what} for {self.device}: {said}."
        return f"Sent {what} to {self.device}: waiting for its answer."


def arguments(args: Mapping[str, Any], leave_out: tuple[str, ...] = ()) -> str:
    """A command's arguments as a person reads them: `movie: 7AXKMY, keep on screen: yes`."""
    parts = []
    for key, value in args.items():
        if key not in leave_out:
            shown = ("yes" if value else "no") if isinstance(value, bool) else str(value)
            parts.append(f"{key.replace('_', ' ')}: {shown}")
    return ", ".join(parts)


def describe(name: str, args: Mapping[str, Any]) -> str:
    """A command and its arguments as a person reads them: `restart-kiosk (force: yes)`."""
    shown = arguments(args)
    return f"{name} ({shown})" if shown else name


def send(ops: Console, device: str, name: str, args: Mapping[str, Any], sender: str) -> Sent:
    """Log and send one command of the catalogue to device, as sender (the operator)."""
    spec = CATALOGUE[name]
    now = ops.clock()
    args = dict(args)
    why = problem(spec, args)
    command = new_command(name, sender, args, datetime.fromtimestamp(now, UTC))
    row: dict[str, Any] = {
        "command_id": command.id, "device": device, "program": spec.program, "name": name,
        "args": command.args, "sender": sender, "sent": now,
        "expires": command.expires.timestamp(), "movie": movie_of(command.args)}
    if why is not None:
        why = f"{why}: nothing was sent"
    elif not ops.broker_connected:
        why = NOT_CONNECTED
    if why is not None:
        ops.db.add_command(**row, outcome="refused", detail=why)
        log.warning("command not sent: %s", why, extra=_extra(row))
        return Sent(command.id, device, name, command.args, why)
    ops.db.add_command(**row)
    subscriber = ops.subscriber
    handed = Handover.OFFLINE if subscriber is None else subscriber.send(
        topic(device, spec.program, "cmd"), command.to_json())
    if handed is Handover.QUEUED:  # the connection went as it was published
        words = QUEUED.format(expires=command.expires.astimezone(
            ZoneInfo(ops.settings.timezone)))
        ops.db.note_command(command.id, words)
        log.warning("command queued until the broker is back", extra=_extra(row))
        return Sent(command.id, device, name, command.args, queued=words)
    if handed is not Handover.SENT:  # the broker went away since the check, or paho said no
        why = {Handover.OFFLINE: NOT_CONNECTED, Handover.FULL: QUEUE_FULL}.get(handed,
                                                                              NOT_TAKEN)
        ops.db.answer_command(command.id, device, spec.program, "refused", why, None, now)
        log.warning("command not sent: %s", why, extra=_extra(row))
        return Sent(command.id, device, name, command.args, why)
    log.info("command sent", extra=_extra(row))
    return Sent(command.id, device, name, command.args)


def _extra(row: Mapping[str, Any]) -> dict[str, Any]:
    """A command's log fields (the movie as package_id, as every program logs it)."""
    return {"command_id": row["command_id"], "device": row["device"], "command": row["name"],
            "user": row["sender"], "package_id": row["movie"]}
