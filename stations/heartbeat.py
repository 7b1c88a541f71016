"""The station's heartbeat: a small status.json the processor keeps (the latest per station)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from moviepkg.sysinfo import software_version
from moviepkg.times import format_utc, utc_now

from .outbox import Outbox


def system_uptime(proc_uptime: Path = Path("/proc/uptime")) -> float | None:
    """Seconds since the station booted (Linux), or None when unknown."""
    try:
        return round(float(proc_uptime.read_text().split()[0]), 1)
    except (OSError, ValueError, IndexError):
        return None


@dataclass(slots=True)
class Health:
    """What the agent itself knows about how delivery goes."""

    started: float  # time.monotonic() when the agent started
    last_delivery_at: datetime | None = None
    last_error: str | None = None
    delivered: int = 0
    bytes_sent: int = 0  # by rsync, since the agent started (telemetry)


def status_document(station_id: str, outbox: Outbox, health: Health) -> dict[str, object]:
    """Build the heartbeat: who, which software, how long up, disk, queue, last capture."""
    last_capture = outbox.last_capture()
    return {
        "station_id": station_id,
        "software_version": software_version(),
        "sent_at": format_utc(utc_now()),
        "uptime_seconds": system_uptime(),
        "agent_uptime_seconds": round(time.monotonic() - health.started, 1),
        "free_disk_bytes": outbox.disk_free(outbox.outbox),
        "queued_packages": len(outbox.finished()),
        "unfinished_packages": len(outbox.unfinished()),
        "last_capture_at": format_utc(last_capture) if last_capture else None,
        "last_delivery_at": (format_utc(health.last_delivery_at)
                             if health.last_delivery_at else None),
        "delivered_since_start": health.delivered,
        "last_error": health.last_error,
    }


def encode(document: dict[str, object]) -> bytes:
    """The document as the receiver takes it: UTF-8 JSON."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")
