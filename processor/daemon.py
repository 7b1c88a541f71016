"""`processor run`: watch the inbox, take complete packages, process them oldest first.

watchdog reports what changes; a periodic rescan finds what was there before
it started or what it missed. An entry renamed into the inbox (as the receiver
and rsync deliver) is complete at once and is taken without delay; other events
are debounced per top-level entry, so a burst of files written in place becomes
one check once the entry has been quiet for a moment.
Encode workers take a package as far as the big screen; one more thread drains
the publish queue (publishing.py), so a store that does not answer never holds
back the screen or the next encode.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from watchdog.events import EVENT_TYPE_MOVED, FileSystemEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

from moviepkg.locks import try_lock
from moviepkg.notify import sd_notify

from .commands import Commands
from .errors import DaemonRunning
from .pipeline import Outcome, Pipeline
from .screen.control import ControlServer
from .state import FINAL, PackageState
from .telemetry import ProcessorTelemetry

log = logging.getLogger("stopmo.processor.daemon")
BUSY_SECONDS = 1.0  # a package whose lock another process holds is looked at again then
ARRIVED = float("-inf")  # "changed" time of an entry renamed in: quiet already


class _InboxHandler(FileSystemEventHandler):
    """Turn any event inside the inbox into 'this top-level entry changed'."""

    def __init__(self, inbox: Path, changed: dict[str, float], lock: threading.Lock,
                 wake: threading.Event) -> None:
        self.inbox = inbox
        self.changed = changed
        self.lock = lock
        self.wake = wake

    def _note(self, path: str | bytes, arrived: bool = False) -> None:
        """Note a change to the entry path is in; arrived: renamed in, complete at once."""
        text = path.decode() if isinstance(path, bytes) else path
        if not text:
            return
        try:
            relative = Path(text).relative_to(self.inbox)
        except ValueError:
            return
        if relative.parts and not relative.parts[0].startswith("."):
            when = ARRIVED if arrived else time.monotonic()
            with self.lock:
                self.changed[relative.parts[0]] = when
            self.wake.set()

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._note(event.src_path)
        dest = getattr(event, "dest_path", "")
        if dest:  # a folder renamed into the inbox arrives as one `moved` event
            self._note(dest, arrived=event.event_type == EVENT_TYPE_MOVED)


class Daemon:
    """The processor's main loop; stop it with `stop()` (SIGTERM does)."""

    def __init__(self, pipeline: Pipeline, telemetry: ProcessorTelemetry | None = None) -> None:
        self.pipeline = pipeline
        self.telemetry = telemetry  # opened once the daemon lock is ours
        self.settings = pipeline.settings
        self.inbox = self.settings.inbox
        self._changed: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._queue: list[tuple[str, str]] = []  # (created_at, package_id), a heap
        self._queued: set[str] = set()
        self._running: dict[str, Future[Outcome]] = {}
        self._retry_at: dict[str, float] = {}
        self._accepted: list[str] = []  # packages an operator let try again (any thread)
        self.dispatched: deque[str] = deque(maxlen=1000)  # recent starts, oldest first

    def stop(self) -> None:
        """Ask the loop to finish what runs and return."""
        self._stop.set()
        self._wake.set()

    def accept(self, package_id: str) -> None:
        """Take a package into the encode queue now, skipping any backoff (any thread)."""
        with self._lock:
            self._accepted.append(package_id)
        self._wake.set()

    def _take_accepted(self) -> None:
        """Queue the packages operators let try again since the last look, backoff skipped."""
        with self._lock:
            accepted, self._accepted = self._accepted, []
        for package_id in accepted:
            self._retry_at.pop(package_id, None)
            state = self.pipeline.states.load(package_id)
            if state is not None:
                log.info("queued again by an operator", extra={"package_id": package_id})
                self._enqueue(state)

    def _enqueue(self, state: PackageState) -> None:
        if state.package_id not in self._queued and state.package_id not in self._running:
            heapq.heappush(self._queue, (state.created_at, state.package_id))
            self._queued.add(state.package_id)

    def _rescan(self) -> None:
        now = time.monotonic()
        with self._lock:
            for entry in self.inbox.iterdir():
                if not entry.name.startswith("."):
                    self._changed.setdefault(entry.name, now - self.settings.debounce_seconds)

    def _take_quiet_entries(self) -> None:
        now = time.monotonic()
        with self._lock:
            quiet = sorted(name for name, when in self._changed.items()
                           if now - when >= self.settings.debounce_seconds)
            for name in quiet:
                del self._changed[name]
        for name in quiet:
            entry = self.inbox / name
            if not (entry.exists() or entry.is_symlink()):
                continue
            try:
                outcome, state = self.pipeline.receive(entry)
            except Exception:  # one bad entry must not stop the daemon
                log.exception("could not take %s; will look again", name,
                              extra={"package_id": name})
                continue
            log.debug("took %s: %s", name, outcome or "received", extra={"package_id": name})
            if outcome is None and state is not None:
                self._enqueue(state)

    def _dispatch(self, pool: ThreadPoolExecutor) -> None:
        self._take_accepted()
        for package_id, future in list(self._running.items()):
            if future.done():
                del self._running[package_id]
                error = future.exception()
                outcome = future.result() if error is None else Outcome.RETRY
                if error is not None:  # outside any step: count it, never spin on it
                    log.error("failed while processing %s: %s", package_id, error,
                              extra={"package_id": package_id})
                    state = self.pipeline.states.load(package_id)
                    # Given up (FAILED) or not: never re-enqueue before the backoff is over.
                    outcome = self.pipeline.failed(state, error) if state is not None \
                        else Outcome.FAILED
                if outcome is Outcome.RETRY:
                    state = self.pipeline.states.load(package_id)
                    if state is not None:
                        self._retry_at[package_id] = state.next_attempt_at
                elif outcome is Outcome.DUPLICATE:  # its lock was busy (a take-down, a
                    state = self.pipeline.states.load(package_id)  # shell): look again
                    if state is not None and state.step not in FINAL and not state.gave_up \
                            and not state.waiting_to_publish:
                        self._retry_at[package_id] = self.pipeline.clock() + BUSY_SECONDS
        now = self.pipeline.clock()
        for package_id, when in list(self._retry_at.items()):
            if when <= now:
                del self._retry_at[package_id]
                state = self.pipeline.states.load(package_id)
                if state is not None:
                    self._enqueue(state)
        while self._queue and len(self._running) < self.settings.workers:
            _, package_id = heapq.heappop(self._queue)
            self._queued.discard(package_id)
            self.dispatched.append(package_id)
            future = pool.submit(self.pipeline.advance, package_id, False)
            future.add_done_callback(lambda _: self._wake.set())
            self._running[package_id] = future

    def run(self) -> None:
        """Watch and process until stop() is called; refuse if another daemon runs."""
        with try_lock(self.pipeline.daemon_lock) as mine:
            if not mine:
                raise DaemonRunning(f"another processor daemon is running on "
                                     f"{self.settings.work_dir} (it holds daemon.lock)")
            self._run()

    def _run(self) -> None:
        if self.telemetry is not None:  # it answers the operators' commands too
            self.telemetry.open(self.pipeline, Commands(self.pipeline, self.accept))
        try:
            self._watch()
        finally:
            if self.telemetry is not None:
                self.telemetry.close()

    def _watch(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.pipeline.clean_up()
        encoder = self.pipeline.encoder()  # encode.codec auto: its test encode, once, now
        log.info("encoding with %s (%s)", encoder.codec, encoder.reason)
        for state in self.pipeline.pending(now=float("inf")):
            if state.next_attempt_at > self.pipeline.clock():
                self._retry_at[state.package_id] = state.next_attempt_at
            else:
                self._enqueue(state)
        # Full events: a folder renamed in from outside the inbox (the receiver's staging
        # folder) is a `moved` event too, not a `created` one, so it is taken at once.
        observer = InotifyObserver(generate_full_events=True)
        # Not recursive: packages arrive by rename, and a recursive watch would follow each
        # package folder out of the inbox (one inotify watch leaked per movie). Anything
        # written inside a folder in place is found by the periodic rescan.
        observer.schedule(_InboxHandler(self.inbox, self._changed, self._lock, self._wake),
                          str(self.inbox), recursive=False)
        observer.start()
        control = ControlServer(self.settings.control_socket, self.pipeline.screen)
        control.start()
        publisher_stop = threading.Event()
        publisher = threading.Thread(target=self.pipeline.publisher.run, args=(publisher_stop,),
                                     name="publish", daemon=True)
        publisher.start()
        log.info("watching %s, publishing to %s", self.inbox, self.pipeline.store.url,
                 extra={"workers": self.settings.workers})
        sd_notify("READY=1")
        next_rescan = 0.0
        try:
            with ThreadPoolExecutor(self.settings.workers, "encode") as pool:
                while not self._stop.is_set():
                    if time.monotonic() >= next_rescan:
                        self._rescan()
                        next_rescan = time.monotonic() + self.settings.rescan_seconds
                    self._take_quiet_entries()
                    self._dispatch(pool)
                    sd_notify("WATCHDOG=1")
                    self._wake.wait(min(0.5, self.settings.debounce_seconds))
                    self._wake.clear()
                sd_notify("STOPPING=1")
                log.info("stopping: letting %d running package(s) finish", len(self._running))
        finally:
            publisher_stop.set()
            self.pipeline.publisher.wake.set()
            publisher.join(timeout=10)  # an upload cut short resumes at the next start
            control.stop()
            self.pipeline.screen.close()
            observer.stop()
            observer.join(timeout=5)
