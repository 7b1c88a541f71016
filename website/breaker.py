"""A small circuit breaker: after a service fails, skip it for a few seconds.

One per process (each gunicorn worker has its own), shared by the worker's
threads. Closed: every call goes through. Open: calls are skipped until `pause`
seconds have passed; then exactly one caller probes the service (the others keep
skipping), and its result closes the breaker or opens it again. So a service
that hangs costs at most one slow call per process per `pause`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("stopmo.website.breaker")


class Breaker:
    """Skip a failing service for `pause` seconds; thread-safe, per process."""

    def __init__(self, name: str, pause: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.pause = pause
        self.clock = clock
        self.last_error = ""
        self._open_until = 0.0  # 0: closed
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """Whether the service is being skipped (or probed) now."""
        return self._open_until != 0.0

    def allow(self) -> bool:
        """Return whether to call the service now; the first caller after a pause probes it."""
        if not self._open_until:
            return True
        with self._lock:
            now = self.clock()
            if not self._open_until:
                return True
            if now < self._open_until:
                return False
            # This caller probes; the others keep skipping until it reports (or a pause ends).
            self._open_until = now + self.pause
            return True

    def succeeded(self) -> None:
        """Close the breaker: the service answered."""
        if not self._open_until:
            return
        with self._lock:
            self._open_until = 0.0
            self.last_error = ""
        log.info("%s answers again", self.name)

    def failed(self, error: BaseException) -> None:
        """Open the breaker for `pause` seconds; log only when it was closed."""
        with self._lock:
            was_closed = not self._open_until
            self._open_until = self.clock() + self.pause
            self.last_error = str(error) or type(error).__name__
        if was_closed:
            log.warning("%s unavailable, skipping it for %g s: %s", self.name, self.pause,
                        self.last_error)
