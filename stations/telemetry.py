"""What the station's programs report: the kiosk's screen and camera, the outbox, the box.

The kiosk offers its state from the Tk loop (a dict compared in memory: the loop never
waits on MQTT); the sync agent's state and the box's `system` state are sampled by
their reporters' own threads every 10 s and after each delivery.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from moviepkg.manifest import MANIFEST_NAME
from moviepkg.reporting import BaseReporter, open_reporter
from moviepkg.sysinfo import software_version, system_state
from moviepkg.times import format_utc, utc_now

from .config import StationSettings
from .flow import Flow, Screen
from .outbox import Outbox

# The contract's screens (moviepkg.telemetry.SCREENS): "still there?" is still shooting.
SCREENS = {Screen.ATTRACT: "attract", Screen.SHOOTING: "shooting",
           Screen.STILL_THERE: "shooting", Screen.PLAYING: "playing",
           Screen.FINISH: "finish", Screen.DONE: "done", Screen.HELP: "helper",
           Screen.OUT_OF_ORDER: "out_of_order"}


def station_reporter(settings: StationSettings, program: str, **options: Any) -> BaseReporter:
    """A reporter for one of this station's programs (its device: the station id)."""
    return open_reporter(settings.telemetry, settings.station_id, program, **options)


class KioskReport:
    """The kiosk's state as the Tk loop sees it, offered to a reporter once per tick."""

    def __init__(self, reporter: BaseReporter, website_url_problem: str | None = None) -> None:
        self.reporter = reporter
        self.camera_ok = True
        self.last_capture_at: datetime | None = None
        self.version = software_version()
        # Found at start (config.website_url_problem): the console shows it beside the fields.
        self.website_url_problem = website_url_problem

    def captured(self) -> None:
        """A frame arrived: the camera works."""
        self.camera_ok = True
        self.last_capture_at = utc_now()

    def camera_failed(self) -> None:
        """A capture failed."""
        self.camera_ok = False

    def fields(self, flow: Flow) -> dict[str, Any]:
        """The kiosk state's fields (moviepkg.telemetry.STATE_FIELDS["kiosk"]), and
        `website_url_problem` when there is one (the console shows it beside the fields)."""
        fields = {"screen": SCREENS[flow.shown], "frames": flow.frames,
                  "last_capture_at": format_utc(self.last_capture_at)
                  if self.last_capture_at else None,
                  "camera_ok": self.camera_ok, "last_error": flow.error or None,
                  "version": self.version, "out_of_order": flow.out_of_order,
                  "identify": "identify" in flow.holds}
        if self.website_url_problem:
            fields["website_url_problem"] = self.website_url_problem
        return fields

    def tick(self, flow: Flow) -> None:
        """Offer the state (cheap: the reporter sends only what changed)."""
        self.reporter.state(self.fields(flow))


def sync_fields(outbox: Outbox, last_delivery_at: datetime | None, bytes_sent: int,
                last_error: str | None, now: Callable[[], float] = time.time
                ) -> dict[str, Any]:
    """The sync state's fields: packages waiting, how long the oldest has waited since it
    was finished (its MANIFEST's time), the last delivery."""
    waiting = outbox.finished()
    finished_at = None
    if waiting:
        try:
            finished_at = (waiting[0] / MANIFEST_NAME).stat().st_mtime
        except OSError:  # delivered meanwhile
            finished_at = None
    return {"waiting": len(waiting),
            "oldest_waiting_s": round(max(0.0, now() - finished_at), 1)
            if finished_at is not None else None,
            "last_delivery_at": format_utc(last_delivery_at) if last_delivery_at else None,
            "bytes_sent": bytes_sent, "last_error": last_error}


@contextlib.contextmanager
def sync_reporting(settings: StationSettings, sample: Callable[[], Mapping[str, Any]],
                   commands: Callable[[bytes], bytes | None] | None = None,
                   **options: Any) -> Iterator[BaseReporter]:
    """Report the sync agent (sampled by sample) and the box's `system` state while inside;
    the sync reporter takes the sync agent's commands (a CommandRunner's `handle`).

    The sync agent reports the box because it runs even when the kiosk crash-loops. Open
    it only while holding the agent lock: a second agent with the same client ids would
    push the first one off the broker.
    """
    outbox = settings.paths.outbox
    sync = station_reporter(settings, "sync", sample=sample, commands=commands, **options)
    system = station_reporter(settings, "system", sample=lambda: system_state(outbox),
                              **options)
    try:
        yield sync
    finally:
        sync.stop()
        system.stop()
