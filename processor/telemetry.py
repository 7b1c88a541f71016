"""What the processing unit reports: the daemon's steps and queues, the big screen, the box.

Three reporters (programs `processor`, `screen` and `system` of device `processor`,
or telemetry.device), each sampled by its own thread: every 10 s, and for the
processor also soon after an event or an encode's progress. Counting the state files
is the one costly reading, so it is redone only after an event or every 10 s. The
reporters open only once the daemon holds its lock (a second daemon with the same
client ids would push the first off the broker). The processor and screen reporters
also answer the operators' commands (commands.py).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from moviepkg.reporting import BaseReporter, NullReporter, open_reporter
from moviepkg.sysinfo import system_state
from moviepkg.telemetry import STATE_SECONDS

from .commands import Commands
from .config import Settings
from .encode import Progress
from .pipeline import Pipeline
from .state import PackageState, Step

log = logging.getLogger("stopmo.processor.telemetry")
DEVICE = "processor"


def step_counts(states: list[PackageState]) -> dict[str, int]:
    """Packages per status (received ... done, waiting-to-publish, failed, quarantined)."""
    counts: dict[str, int] = {}
    for state in states:
        counts[state.status] = counts.get(state.status, 0) + 1
    return counts


def last_durations(states: list[PackageState]) -> dict[str, float]:
    """The step durations of the movie that most recently reached the screen."""
    shown = [s for s in states if s.step in (Step.SHOWN, Step.DONE) and s.durations]
    latest = max(shown, key=lambda s: s.updated_at, default=None)
    return dict(latest.durations) if latest else {}


def quarantined_today(quarantine: Path, tz: ZoneInfo, now: float) -> int:
    """Entries quarantined since midnight in the festival's time zone."""
    today = datetime.fromtimestamp(now, tz).date()
    count = 0
    try:
        entries = list(quarantine.iterdir())
    except OSError:
        return 0
    for entry in entries:
        try:
            when = (entry / "REASON").stat().st_mtime
        except OSError:
            continue
        count += datetime.fromtimestamp(when, tz).date() == today
    return count


def screen_fields(status: dict[str, Any]) -> dict[str, Any]:
    """The screen state's fields from a Screen's status()."""
    playlist = status.get("playlist") or []
    movies = [entry for entry in playlist if entry != "(idle card)"]
    return {"connected": bool(status.get("connected")), "playing": status.get("playing"),
            "playlist": len(movies)}


class ProcessorTelemetry:
    """The processing unit's reporters; `event` and `progress` feed the pipeline's news in."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.settings = settings
        self.options = options  # for the reporters (tests shorten the intervals)
        self.processor: BaseReporter = NullReporter()
        self.reporters: list[BaseReporter] = []
        self.pipeline: Pipeline | None = None
        self._encoding: dict[str, dict[str, Any]] = {}  # package id -> progress, in order
        self._lock = threading.Lock()
        self._counted: tuple[float, dict[str, int], dict[str, float], int] | None = None
        self._watching = threading.Event()  # set: the screen watcher stops

    # --- what the pipeline tells -------------------------------------------------------

    def event(self, kind: str, package_id: str, detail: str) -> None:
        """A movie moved on: report it and sample soon (never raises)."""
        try:
            with self._lock:
                self._encoding.pop(package_id, None)
                self._counted = None
            self.processor.event(kind, package_id, detail)
            self.processor.refresh()
        except Exception:
            log.exception("telemetry: could not report %s", kind,
                          extra={"package_id": package_id})

    def progress(self, inner: Callable[[str], Progress]) -> Callable[[str], Progress]:
        """Wrap a progress factory so that the encode in progress is reported too."""
        def factory(package_id: str) -> Progress:
            shown = inner(package_id)

            def show(done: int, total: int) -> None:
                shown(done, total)
                with self._lock:
                    self._encoding[package_id] = {"package_id": package_id, "done": done,
                                                  "total": total}
                self.processor.refresh()
            return show
        return factory

    # --- sampling (the reporters' threads) ---------------------------------------------

    def processor_fields(self) -> dict[str, Any]:
        """The processor state's fields (moviepkg.telemetry.STATE_FIELDS["processor"])."""
        assert self.pipeline is not None
        now = time.time()
        with self._lock:
            counted = self._counted
            encoding = next(iter(self._encoding.values()), None)
        if counted is None or now - counted[0] >= STATE_SECONDS:
            states = self.pipeline.states.all()
            counted = (now, step_counts(states), last_durations(states),
                       sum(state.taken_down for state in states))
            with self._lock:
                self._counted = counted
        queue = self.pipeline.publisher.status()
        settings = self.settings
        last = self.pipeline.last_encode
        return {"steps": counted[1], "encoding": dict(encoding) if encoding else None,
                "publish_backlog": queue.waiting,
                "publish_oldest_s": round(max(0.0, now - queue.oldest_since), 1)
                if queue.waiting and queue.oldest_since else None,
                "publish_last_error": queue.last_error or None,
                "store_reachable": queue.store_reachable,
                "quarantined_today": quarantined_today(settings.quarantine_dir,
                                                       ZoneInfo(settings.timezone), now),
                "last_durations": counted[2],
                "disk_free_bytes": shutil.disk_usage(settings.work_dir).free,
                "taken_down": counted[3],
                "encoder": self.pipeline.encoder().codec,
                "encode_fps": round(last.fps, 1) if last else None}

    def screen_fields(self) -> dict[str, Any]:
        """The screen state's fields; a screen that does not answer is not connected."""
        assert self.pipeline is not None
        try:
            return screen_fields(self.pipeline.screen.status())
        except Exception as exc:  # mpv's controller is stuck: say so rather than nothing
            log.debug("telemetry: the screen did not answer: %s", exc)
            return {"connected": False, "playing": None, "playlist": 0}

    # --- opening and closing ---------------------------------------------------------------

    def open(self, pipeline: Pipeline, commands: Commands | None = None) -> None:
        """Start reporting for pipeline (the daemon holds its lock); with commands, the
        processor and screen programs answer the operators' commands too."""
        self.pipeline = pipeline
        telemetry = self.settings.telemetry

        def answering(program: str) -> dict[str, Any]:
            if commands is None:
                return {}
            return {"commands": commands.answering(program)}

        self.processor = open_reporter(telemetry, DEVICE, "processor",
                                       sample=self.processor_fields, **answering("processor"),
                                       **self.options)
        self.reporters = [self.processor]
        if self.settings.screen != "none":
            screen = open_reporter(telemetry, DEVICE, "screen", sample=self.screen_fields,
                                   **answering("screen"), **self.options)
            self.reporters.append(screen)
            self._watching.clear()
            threading.Thread(target=self._watch_screen, args=(screen,), name="screen-watch",
                             daemon=True).start()
        work_dir = self.settings.work_dir
        self.reporters.append(open_reporter(telemetry, DEVICE, "system",
                                            sample=lambda: system_state(work_dir),
                                            **self.options))

    def _watch_screen(self, reporter: BaseReporter) -> None:
        """Report a lost or found player within a second, not at the next 10 s sample."""
        last: object = None
        while not self._watching.wait(1.0):
            connected = self.screen_fields().get("connected")
            if connected != last:
                last = connected
                reporter.refresh()

    def close(self) -> None:
        """Say offline for every program and disconnect."""
        self._watching.set()
        for reporter in self.reporters:
            reporter.stop()
        self.processor = NullReporter()
        self.reporters = []
