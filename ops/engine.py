"""The alert engine: conditions become alerts that fire once, notify, and resolve."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from .config import Settings
from .db import Database, Row
from .fleet import load_fleet
from .notifier import Notifier
from .rules import Condition, Context, evaluate, minutes

log = logging.getLogger("stopmo.ops.engine")
RETRY_S = 30.0  # a notification that failed is tried again after this long


class Engine:
    """Evaluate the rules every tick; open, resolve and notify alerts in the database."""

    def __init__(self, db: Database, settings: Settings, notifier: Notifier,
                 context: Callable[[float], Context], clock: Callable[[], float]) -> None:
        self.db = db
        self.settings = settings
        self.notifier = notifier
        self.context = context
        self.clock = clock
        self.pending: dict[tuple[str, str, str], float] = {}  # condition -> first seen
        self._retry_at: dict[tuple[int, bool], float] = {}
        self._pruned = 0.0

    def conditions(self, now: float) -> list[Condition]:
        """Every condition that holds now."""
        fleet = load_fleet(self.db, self.settings.stations, self.settings.processor)
        return evaluate(fleet, self.context(now))

    def quiet(self, device: str, now: float, mutes: dict[str, Row]) -> str:
        """Why an alert of device makes no noise now ('' when it does)."""
        if device in mutes:
            return "muted"
        if not self.settings.opening_hours.is_open(datetime.fromtimestamp(now, UTC),
                                                   self.settings.timezone):
            return "closed"
        return ""

    def tick(self) -> None:
        """Evaluate once: open what holds long enough, resolve what cleared, then notify."""
        now = self.clock()
        current = {condition.key: condition for condition in self.conditions(now)}
        self.pending = {key: self.pending.get(key, now) for key in current}
        open_alerts = {(row["rule"], row["device"], row["subject"]): row
                       for row in self.db.open_alerts()}
        for key, row in open_alerts.items():
            if key not in current:
                self.db.update_alert(row["id"], resolved=now)
                log.info("resolved: %s", row["message"], extra={"rule": row["rule"],
                                                                "device": row["device"]})
        for key, condition in current.items():
            alert = open_alerts.get(key)
            if alert is None and now - self.pending[key] >= condition.for_s:
                self.db.open_alert(*key, condition.severity, condition.message, now)
                log.warning("alert: %s", condition.message,
                            extra={"rule": condition.rule, "device": condition.device})
            elif alert is not None and alert["message"] != condition.message:
                self.db.update_alert(alert["id"], message=condition.message)
        self.deliver(now)
        if now - self._pruned > 3600:
            self.db.prune(now, self.settings.keep_days)
            self._pruned = now

    def deliver(self, now: float) -> None:
        """Send what is due: new alerts that may make a noise, and their resolutions."""
        mutes = self.db.mutes(now)
        for row in self.db.open_alerts():
            if not row["fired_sent"] and not self.quiet(row["device"], now, mutes):
                self._send(row, True, now)
        for row in self.db.unsent_resolved():
            self._send(row, False, now)

    def _send(self, row: Row, firing: bool, now: float) -> None:
        key = (int(row["id"]), firing)
        if self._retry_at.get(key, 0.0) > now:
            return
        zone = ZoneInfo(self.settings.timezone)
        if firing:
            title = f"stopmo alert: {row['message']}"
            body = (f"Since {datetime.fromtimestamp(row['opened'], zone):%H:%M:%S}. "
                    f"Rule: {row['rule']} (see the console and docs/ops.md).")
        else:
            title = f"stopmo resolved: {row['message']}"
            body = (f"Cleared at {datetime.fromtimestamp(row['resolved'], zone):%H:%M:%S} "
                    f"after {minutes(row['resolved'] - row['opened'])}.")
        if self.notifier.send(title, body, firing):
            self.db.update_alert(key[0], **{"fired_sent" if firing else "resolved_sent": 1})
            self._retry_at.pop(key, None)
        else:
            log.warning("could not send a notification; retrying in %.0f s", RETRY_S,
                        extra={"alert": row["message"]})
            self._retry_at[key] = now + RETRY_S

    def run(self, stop: threading.Event) -> None:
        """Tick every `alerts.every_s` until stop is set; a failing tick is logged, not fatal."""
        while not stop.wait(self.settings.every_s):
            try:
                self.tick()
            except Exception:
                log.exception("the alert engine's tick failed")
