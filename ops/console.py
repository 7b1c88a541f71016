"""The running console: its database, its MQTT subscriber and its alert engine, together."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .config import Settings
from .db import Database
from .engine import Engine
from .insight import StepWatch
from .notifier import Notifier, make_notifier
from .rules import Context
from .subscriber import Subscriber

log = logging.getLogger("stopmo.ops")


class Console:
    """Everything the pages read and the background threads write; one per process."""

    def __init__(self, settings: Settings, db: Database | None = None,
                 notifier: Notifier | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.db = db or Database(settings.db_path)
        self.started = clock()
        self.steps = StepWatch(self.db, settings.processor)  # the slow-step alert's input
        self.subscriber: Subscriber | None = None
        if notifier is None:
            notifier = make_notifier(settings.alert_urls)
            if not settings.alert_urls:
                log.warning("alerts.urls is empty: alerts show only on the console")
        self.engine = Engine(self.db, settings, notifier, self.context, clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def context(self, now: float) -> Context:
        """What the rules need to know about the console itself."""
        fresh, down = self.started, None
        if self.subscriber is not None:
            if self.subscriber.connected:
                fresh = max(fresh, self.subscriber.changed_at)
            else:
                down = self.subscriber.changed_at
        s = self.settings
        return Context(now, s.thresholds, s.opening_hours, s.timezone, fresh, down,
                       self.steps.check(now, s.thresholds))

    @property
    def broker_connected(self) -> bool | None:
        """Whether the broker answers (None: this console does not listen to one)."""
        return None if self.subscriber is None else self.subscriber.connected

    def start(self, listen: bool = True, alerts: bool = True) -> None:
        """Start the subscriber (listen) and the alert engine's thread (alerts)."""
        if listen:
            self.subscriber = Subscriber(self.settings, self.db, self.clock)
            self.subscriber.start()
        if alerts:
            self._thread = threading.Thread(target=self.engine.run, args=(self._stop,),
                                            name="alerts", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the threads, say `offline` to the broker and close the database."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.subscriber is not None:
            self.subscriber.stop()
        self.db.close()
