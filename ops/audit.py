"""The commands panel's reading side: the audit log in words, and the movies that need a hand.

The log is the console's own record of every command (ops.db's `commands` table): who
sent what, when, and the device's answer. A row without an answer is "waiting" until its
expiry; then "late" while the device may still be running it (it may have started it just
before its expiry, and a command may run for its catalogue's run_s: a delivery, a take-down
waiting for an encode); only then "expired": the device was away or the command was lost,
and it will not run any more (a device drops a command that arrives after its expiry).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from moviepkg.commands import CATALOGUE
from moviepkg.times import parse_utc

from .commands import PROGRAM_TITLES, commands_for, describe
from .console import Console
from .db import Database, Row
from .fleet import Device
from .rules import minutes

LOG_ROWS = 20  # commands shown on a device page
THUMBNAILS = 2  # test captures shown as pictures (each is tens of kB, every 3 s)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
MAX_JPEG_CHARS = 64 * 1024
OUTCOME_WORDS = {"done": "Done", "refused": "Refused", "failed": "Failed",
                 "waiting": "waiting for an answer…",
                 "late": "no answer yet (it may still be running)",
                 "expired": "no answer (expired)"}
UNANSWERED = ("waiting", "late", "expired")
UNKNOWN_RUN_S = 30.0  # how long a command the catalogue no longer has may run


def run_s(name: str) -> float:
    """How long a command may run once started (the catalogue's run_s)."""
    spec = CATALOGUE.get(name)
    return UNKNOWN_RUN_S if spec is None else spec.run_s


def status(row: Row, now: float) -> str:
    """Where a command of the log stands: its answer (done, refused, failed) or, without
    one, waiting until its expiry, late until its run_s after that, then expired."""
    if row["outcome"]:
        return str(row["outcome"])
    if now <= row["expires"]:
        return "waiting"
    return "late" if now <= row["expires"] + run_s(row["name"]) else "expired"


def outcome(row: Row, now: float) -> tuple[str, str, str]:
    """A command's status, its label and its words, as every page says them.

    The words are the device's answer, the console's refusal, or (while no answer has
    come) what the console knows of it: that it is queued until the broker is back.
    """
    found = status(row, now)
    return found, OUTCOME_WORDS[found], row["detail"] or ""


def thumbnail(data: dict[str, Any]) -> dict[str, Any] | None:
    """A test capture's picture for an <img>: base64 JPEG text and its size, or None."""
    jpeg = data.get("jpeg")
    if not isinstance(jpeg, str) or len(jpeg) > MAX_JPEG_CHARS or not _BASE64.fullmatch(jpeg):
        return None
    size = [data.get("width"), data.get("height")]
    width, height = (size if all(isinstance(v, int) and not isinstance(v, bool)
                                 and 0 < v <= 2000 for v in size) else (None, None))
    return {"jpeg": jpeg, "width": width, "height": height}


def _restart_anyway(row: Row) -> bool:
    """A kiosk that would not restart because a child is shooting: offer to force it."""
    return (row["name"] == "restart-kiosk" and row["outcome"] == "refused"
            and row["args"].get("force") is not True
            and "shoot" in (row["detail"] or "").lower())


def audit_rows(rows: list[Row], now: float, zone: str) -> list[dict[str, Any]]:
    """The log's rows as a page shows them: when, who, what, the outcome and its words."""
    local = ZoneInfo(zone)
    shown, pictures, restarted = [], 0, False
    for row in rows:  # newest first
        state, label, words = outcome(row, now)
        picture = None
        if state == "done" and pictures < THUMBNAILS:
            picture = thumbnail(row["data"])
            pictures += picture is not None
        took = None  # a device's answer; the console's own refusals have answered == sent
        if row["answered"] is not None and row["answered"] > row["sent"]:
            seconds = row["answered"] - row["sent"]
            took = ("at once" if seconds < 0.1 else f"in {seconds:.1f} s" if seconds < 10
                    else f"in {minutes(seconds)}")
        note = state in UNANSWERED  # the console's words, beside its status
        shown.append({**row, "status": state, "label": label,
                      "words": "" if note else words, "note": words if note else "",
                      "what": describe(row["name"], row["args"]),
                      "when": f"{datetime.fromtimestamp(row['sent'], local):%d %b %H:%M:%S}",
                      "took": took, "picture": picture,
                      "restart_anyway": _restart_anyway(row) and not restarted})
        restarted = restarted or row["name"] == "restart-kiosk"  # offered on the newest only
    return shown


def needing_a_hand(db: Database, device: str) -> tuple[list[Row], list[Row]]:
    """The processor's quarantined and failed packages that nobody has handled since.

    Quarantined: a `quarantined` event (its detail is the reason) with no later `released`
    or `deleted`. Failed: a package whose latest event is `failed` (its detail is the last
    error). Only what the events table still holds (db.keep_days).
    """
    rows = db.query("SELECT * FROM events WHERE device = ? AND package_id IN (SELECT "
                    "package_id FROM events WHERE device = ? AND kind IN ('quarantined', "
                    "'failed')) ORDER BY id", (device, device))
    latest: dict[str, Row] = {}
    fate: dict[str, Row] = {}  # the latest of quarantined, released, deleted
    for row in rows:
        latest[row["package_id"]] = row
        if row["kind"] in ("quarantined", "released", "deleted"):
            fate[row["package_id"]] = row
    quarantined = [row for row in fate.values() if row["kind"] == "quarantined"]
    failed = [row for row in latest.values() if row["kind"] == "failed"]
    return (sorted(quarantined, key=lambda row: -row["id"]),
            sorted(failed, key=lambda row: -row["id"]))


def recent_on_screen(db: Database, device: str, limit: int = 12) -> list[str]:
    """The package ids the big screen played lately, newest first (for `play`)."""
    rows = db.query("SELECT package_id, max(id) AS last FROM events WHERE device = ? AND "
                    "kind = 'on_screen' GROUP BY package_id ORDER BY last DESC LIMIT ?",
                    (device, limit))
    return [row["package_id"] for row in rows]


def panel(ops: Console, device: Device, now: float) -> dict[str, Any]:
    """What the device page's commands panel shows: the forms, the lists, the log."""
    zone = ZoneInfo(ops.settings.timezone)
    groups = []
    for program, specs in commands_for(device.role).items():
        groups.append({"program": program, "title": PROGRAM_TITLES[program],
                       "online": device.program(program).online,
                       "specs": {spec.name: spec for spec in specs}})
    quarantined: list[Row] = []
    failed: list[Row] = []
    on_screen: list[str] = []
    if device.role == "processor":
        quarantined, failed = needing_a_hand(ops.db, device.name)
        on_screen = recent_on_screen(ops.db, device.name)

    def when(row: Row) -> str:
        """The event's time as the processor gave it (as the events table shows it)."""
        try:
            return f"{parse_utc(row['at']).astimezone(zone):%d %b %H:%M}"
        except ValueError:
            return f"{datetime.fromtimestamp(row['received'], zone):%d %b %H:%M}"

    return {"command_groups": groups,
            "command_log": audit_rows(ops.db.device_commands(device.name, LOG_ROWS), now,
                                      ops.settings.timezone),
            "quarantined": [{**row, "when": when(row)} for row in quarantined],
            "failed": [{**row, "when": when(row)} for row in failed],
            "on_screen": on_screen, "catalogue": CATALOGUE,
            "needs_a_hand": device.role == "processor",
            "commands_blocked": not ops.broker_connected}
