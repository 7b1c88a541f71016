"""Turn one MQTT message into what the console remembers (moviepkg.telemetry's parsers)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from moviepkg.commands import parse_result
from moviepkg.telemetry import (
    TelemetryError,
    parse_event,
    parse_presence,
    parse_state,
    split_topic,
)
from moviepkg.times import format_utc

from .db import Database

log = logging.getLogger("stopmo.ops.recorder")

# The numbers kept for history charts: (program, metric) -> how to read it from a state.
METRICS: dict[str, dict[str, Callable[[Mapping[str, Any]], float | None]]] = {
    "system": {
        "cpu_temp_c": lambda f: f.get("cpu_temp_c"),
        "load1": lambda f: f.get("load1"),
        "disk_free_percent": lambda f: _percent(f.get("disk_free_bytes"),
                                                f.get("disk_total_bytes")),
    },
    "sync": {"waiting": lambda f: f.get("waiting"),
             "oldest_waiting_s": lambda f: f.get("oldest_waiting_s") or 0},
    "processor": {"publish_backlog": lambda f: f.get("publish_backlog"),
                  "queued": lambda f: queued(f.get("steps"))},
    "screen": {"playlist": lambda f: f.get("playlist")},
}
METRIC_LABELS = {
    "system.cpu_temp_c": "CPU temperature (°C)", "system.load1": "Load (1 min)",
    "system.disk_free_percent": "Free disk (%)", "sync.waiting": "Movies in the outbox",
    "sync.oldest_waiting_s": "Oldest in the outbox (s)",
    "processor.publish_backlog": "Movies waiting to publish",
    "processor.queued": "Packages in the pipeline", "screen.playlist": "Movies in the playlist",
}


def _percent(part: Any, whole: Any) -> float | None:
    if isinstance(part, int) and isinstance(whole, int) and whole > 0:
        return 100.0 * part / whole
    return None


# Statuses of packages the processor is no longer working on (the publish backlog is
# counted on its own): the pipeline's queue is everything else.
AT_REST = frozenset({"done", "quarantined", "failed", "taken-down", "waiting-to-publish"})


def queued(steps: Any) -> int | None:
    """How many packages the processor is still working on (its steps but those at rest)."""
    if not isinstance(steps, dict):
        return None
    return sum(value for name, value in steps.items() if name not in AT_REST
               and isinstance(value, int) and not isinstance(value, bool))


def metrics(program: str, fields: Mapping[str, Any]) -> dict[str, float]:
    """The history numbers a state carries, as `program.metric`."""
    found: dict[str, float] = {}
    for name, read in METRICS.get(program, {}).items():
        value = read(fields)
        if isinstance(value, int | float) and not isinstance(value, bool):
            found[f"{program}.{name}"] = float(value)
    return found


def record(db: Database, topic: str, payload: bytes, now: float) -> bool:
    """Store one message; False (and a log line) for one that breaks the contract."""
    try:
        device, program, kind = split_topic(topic)
        if kind == "online":
            if not payload:  # a retained message cleared by its owner
                return True
            presence = parse_presence(payload)
            db.record_presence(device, program, presence.online, format_utc(presence.at), now)
        elif kind == "state":
            state = parse_state(program, payload)
            db.record_state(device, program, format_utc(state.at), state.fields, state.extra,
                            now, metrics(program, state.fields))
        elif kind == "event":
            event = parse_event(payload)
            db.record_event(device, program, event.kind, event.package_id,
                            format_utc(event.at, millis=True), event.detail, now)
        elif kind == "cmd/result":
            result = parse_result(payload)
            if not db.answer_command(result.id, device, program, result.outcome,
                                     result.detail, result.data, now):
                _unanswered(db, result.id, topic)
        return True
    except TelemetryError as exc:
        log.warning("ignored a message: %s", exc, extra={"topic": topic[:200]})
        return False


def _unanswered(db: Database, command_id: str, topic: str) -> None:
    """Log an answer that fits no command: one this console does not know, or one that came
    from another device or program than the one the command went to."""
    sent = db.command(command_id)
    if sent is None:
        log.info("an answer to a command this console does not know: ignored",
                 extra={"command": command_id, "topic": topic[:200]})
    else:
        log.warning("an answer from a device the command did not go to (it went to %s, "
                    "%s): ignored", sent["device"], sent["program"],
                    extra={"command": command_id, "topic": topic[:200]})
