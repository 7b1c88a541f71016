"""The sync agent: deliver every finished package, oldest first, exactly once, losing nothing.

A cycle validates each finished package, sends it (`delivery.Remote`), and only after
the processor's verified answer moves it to `sent/`; then it sends the heartbeat and
prunes `sent/`. Link failures end the cycle and back off exponentially with jitter; a
package the processor refuses waits in the outbox and does not hold up the others.

The console's `deliver-now` (on the reporter's thread) asks for a cycle: the agent
stops waiting (between cycles or in a backoff), runs one with every package tried,
refused ones too, and the command is answered with what that cycle did.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from moviepkg.backoff import Backoff
from moviepkg.commands import Command, Refused
from moviepkg.errors import IncompletePackage, PackageError
from moviepkg.ids import split_package_id
from moviepkg.locks import lock_holder, try_lock
from moviepkg.logs import package_context
from moviepkg.manifest import MANIFEST_NAME
from moviepkg.notify import sd_notify
from moviepkg.reader import read_package
from moviepkg.reporting import BaseReporter, NullReporter
from moviepkg.times import utc_now

from .config import StationError, StationSettings
from .delivery import PackageRefused, Remote
from .heartbeat import Health, encode, status_document
from .outbox import Outbox
from .ssh import LinkError, Runner, Stopped
from .telemetry import sync_fields

log = logging.getLogger("stopmo.station")
LOCK_NAME = ".sync.lock"
DELIVER_NOW_SECONDS = 600.0  # a deliver-now waits this long at most for its cycle


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec= for this process, or None when there is no watchdog."""
    usec, pid = os.environ.get("WATCHDOG_USEC", ""), os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


class AgentBusy(StationError):
    """Another sync agent already works on this outbox."""


@contextlib.contextmanager
def agent_lock(outbox: Path) -> Iterator[None]:
    """Hold the outbox's agent lock (flock, released by the kernel if we die) or raise."""
    path = outbox / LOCK_NAME
    with try_lock(path, note_holder=True) as mine:
        if not mine:
            raise AgentBusy(f"another sync agent (pid {lock_holder(path)}) holds {path}")
        yield


@dataclass(slots=True)
class CycleResult:
    """What one cycle did."""

    delivered: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why each was refused
    error: LinkError | None = None
    stopped: bool = False

    def summary(self) -> str:
        """What the cycle did, in an operator's words; LinkError if the link failed."""
        said = [f"{len(self.delivered)} movie{'' if len(self.delivered) == 1 else 's'} "
                "delivered"] if self.delivered else []
        if self.refused:
            said.append(f"{len(self.refused)} refused, kept in the outbox "
                        f"({'; '.join(self.reasons)})")
        if self.error is not None:
            before = ", ".join(said)
            raise LinkError(self.error.kind, f"{before}, then: {self.error}" if before
                            else str(self.error))
        return ", ".join(said) or "nothing was waiting"


@dataclass(slots=True)
class Asked:
    """A deliver-now waiting for the cycle that serves it."""

    done: threading.Event = field(default_factory=threading.Event)
    result: CycleResult | None = None


class Agent:
    """Deliver a station's outbox to the processor; `run_once` or `run_forever`."""

    def __init__(self, settings: StationSettings, outbox: Outbox | None = None,
                 rng: Callable[[], float] = random.random,
                 reporter: BaseReporter | None = None) -> None:
        self.settings = settings
        self.reporter = reporter or NullReporter()  # set by whoever holds the agent lock
        self.stopping = threading.Event()
        self.wake = threading.Event()  # stop waiting: deliver-now, or stop
        self._asked: list[Asked] = []
        self._asked_lock = threading.Lock()
        self._ended = False  # run_once or run_forever returned: nobody serves an ask
        self.outbox = outbox or Outbox(settings.paths.outbox, settings.paths.sent)
        self.watchdog = watchdog_interval()
        self._last_ping = 0.0
        self.remote = Remote(settings.processor, settings.delivery,
                             Runner(self.stopping, tick=self.tick,
                                    slice_seconds=min(1.0, self.watchdog or 1.0)))
        delivery = settings.delivery
        self.backoff = Backoff(delivery.retry_base_seconds, delivery.retry_max_seconds, rng)
        self.health = Health(started=time.monotonic())
        self.held: dict[str, float] = {}  # package id -> monotonic time of its next try
        self.considered: set[str] = set()  # finished packages the last cycle looked at

    def stop(self) -> None:
        """Finish soon: a running transfer is cut and resumes next time."""
        self.stopping.set()
        self.wake.set()

    def deliver_now(self, command: Command) -> str:
        """The `deliver-now` command (reporter's thread): a cycle now; what it did."""
        asked = Asked()
        with self._asked_lock:
            if self.stopping.is_set() or self._ended:
                raise Refused("the sync agent is stopping")
            self._asked.append(asked)
        self.wake.set()
        log.info("deliver now, asked by %s", command.sender)
        if not asked.done.wait(DELIVER_NOW_SECONDS):
            raise TimeoutError(f"no cycle ended within {DELIVER_NOW_SECONDS:.0f} s "
                               "(a long transfer?); the agent goes on")
        if asked.result is None or asked.result.stopped:
            raise Refused("the sync agent stopped before it could deliver; it delivers "
                          "when it starts again")
        return asked.result.summary()

    def _take_asked(self) -> list[Asked]:
        """The deliver-nows waiting now (this cycle serves them)."""
        if not self.stopping.is_set():
            self.wake.clear()  # before taking: a later ask wakes the next wait again
        with self._asked_lock:
            asked, self._asked = self._asked, []
        return asked

    def _answer(self, asked: list[Asked], result: CycleResult | None) -> None:
        """Tell the waiting deliver-nows what their cycle did (None: there was none)."""
        for one in asked:
            one.result = result
            one.done.set()

    def _end(self) -> None:
        """The agent returns: answer whoever still waits (it will not deliver now)."""
        with self._asked_lock:
            self._ended = True
        self._answer(self._take_asked(), None)

    def tick(self) -> None:
        """Tell systemd's watchdog we are alive, twice per WatchdogSec (else a no-op)."""
        if self.watchdog is not None and time.monotonic() - self._last_ping >= self.watchdog:
            self._last_ping = time.monotonic()
            sd_notify("WATCHDOG=1")

    # --- one cycle ----------------------------------------------------------------------------

    def cycle(self) -> CycleResult:
        """Deliver what is finished, send the heartbeat, prune sent/."""
        asked = self._take_asked()
        if asked:  # an operator asks: refused packages get another try too
            self.held.clear()
        try:
            result = self._cycle()
        except BaseException as exc:
            self._answer(asked, CycleResult(error=LinkError(
                "internal", f"the cycle failed: {type(exc).__name__}: {exc}")))
            raise
        self._answer(asked, result)
        return result

    def _cycle(self) -> CycleResult:
        """One cycle's work (see `cycle`)."""
        result = CycleResult()
        finished = self.outbox.finished()
        now = time.monotonic()
        due = [package for package in finished if self.held.get(package.name, 0.0) <= now]
        # One SSH connection for the cycle's sessions, opened while the first package is
        # checked; a cycle with only the heartbeat to send makes one plain session.
        with self.remote.connected() if due else contextlib.nullcontext():
            self._deliver_all(result, finished, due)
            self.health.last_error = str(result.error) if result.error else None
            if not self.stopping.is_set() and (result.error is None
                                               or result.error.kind != "unreachable"):
                self._heartbeat(result)
        sent = self.settings.sent
        self.outbox.prune(sent.retention_days, sent.min_free_mb * 2**20)
        self.reporter.refresh()
        return result

    def _deliver_all(self, result: CycleResult, finished: list[Path], due: list[Path]) -> None:
        """Deliver the due packages, oldest first, until the link fails or we stop."""
        self.considered = {package.name for package in finished}
        for package in due:
            if self.stopping.is_set():
                break
            with package_context(package.name):
                try:
                    if self.deliver(package):
                        result.delivered.append(package.name)
                except PackageRefused as exc:
                    self._hold(package.name, str(exc))
                    result.refused.append(package.name)
                    result.reasons.append(f"{package.name}: {exc}")
                except LinkError as exc:
                    result.error = exc
                    break
                except Stopped:
                    result.stopped = True
                    break

    def telemetry_fields(self) -> dict[str, object]:
        """The sync state for telemetry (called from the reporter's thread)."""
        return sync_fields(self.outbox, self.health.last_delivery_at, self.health.bytes_sent,
                           self.health.last_error)

    def deliver(self, package: Path) -> bool:
        """Send one package and archive it once verified; False if it is not ready."""
        parts = split_package_id(package.name)
        if parts is None or parts[0] != self.settings.station_id:
            raise PackageRefused(f"not a package of station {self.settings.station_id}: "
                                 "it stays in the outbox")
        try:
            checked = read_package(package)
        except IncompletePackage:
            return False
        except PackageError as exc:
            raise PackageRefused(f"invalid here ({exc.reason}): {exc}") from None
        digest = hashlib.sha256((package / MANIFEST_NAME).read_bytes()).hexdigest()
        log.info("delivering %d frames, %s", len(checked.frames), _size(checked.total_bytes))
        done = self.remote.deliver(package, digest)
        self.outbox.archive(package)
        self.held.pop(package.name, None)
        self.health.delivered += 1
        self.health.bytes_sent += done.bytes_sent or 0
        self.health.last_delivery_at = utc_now()
        self.reporter.event("delivered", package.name, "again" if done.again else "")
        self.reporter.refresh()
        sent = "" if done.bytes_sent is None else f", {_size(done.bytes_sent)} sent"
        log.info("delivered and verified in %.1f s%s%s; moved to sent/", done.seconds, sent,
                 " (the processor had it already)" if done.again else "",
                 extra={"bytes_sent": done.bytes_sent})
        return True

    def _hold(self, package_id: str, why: str) -> None:
        wait = self.settings.delivery.retry_max_seconds
        self.held[package_id] = time.monotonic() + wait
        log.error("%s; it stays in the outbox, next try in %.0f s", why, wait)

    def _heartbeat(self, result: CycleResult) -> None:
        document = status_document(self.settings.station_id, self.outbox, self.health)
        try:
            self.remote.send_status(encode(document))
        except LinkError as exc:
            log.warning("%s", exc)
            result.error = result.error or exc
        except Stopped:
            result.stopped = True

    # --- modes --------------------------------------------------------------------------------

    def run_once(self) -> bool:
        """Cycle until nothing is left to send or `attempts` cycles failed; tell if all went."""
        try:
            return self._run_once()
        finally:
            self._end()

    def _run_once(self) -> bool:
        """run_once's loop."""
        failures = 0
        while True:
            result = self.cycle()
            if result.stopped or self.stopping.is_set():
                return False
            if result.error is None:
                names = [path.name for path in self.outbox.finished()]
                waiting = [name for name in names if self.held.get(name, 0.0) <= time.monotonic()]
                if waiting and result.delivered:
                    continue  # finished while we were sending: another cycle
                refused = [name for name in names if name in self.held]
                if refused:
                    log.error("%d packages refused, they stay in the outbox: %s", len(refused),
                              ", ".join(refused))
                return not refused and not waiting
            failures += 1
            if failures >= self.settings.delivery.attempts:
                log.error("%s; giving up after %d attempts, %d packages stay in the outbox",
                          result.error, failures, len(self.outbox.finished()))
                return False
            delay = self.backoff.next_delay()
            log.warning("%s; retrying in %.1f s", result.error, delay,
                        extra={"retry_in": round(delay, 2), "kind": result.error.kind})
            self._wait(delay, watch=False)
            if self.stopping.is_set():
                return False

    def run_forever(self) -> None:
        """Cycle until stopped: every interval, sooner when a package is finished."""
        sd_notify("READY=1")
        log.info("sync agent started for %s", self.settings.station_id)
        try:
            self._forever()
        finally:
            self._end()
        sd_notify("STOPPING=1")
        log.info("sync agent stopped")

    def _forever(self) -> None:
        """run_forever's loop."""
        while not self.stopping.is_set():
            try:
                result = self.cycle()
            except Exception as exc:  # a failsafe: log, back off, carry on
                log.exception("cycle failed")
                result = CycleResult(error=LinkError("internal", f"{type(exc).__name__}: {exc}"))
            if result.error is not None:
                delay = self.backoff.next_delay()
                log.warning("%s; retrying in %.1f s", result.error, delay,
                            extra={"retry_in": round(delay, 2), "kind": result.error.kind})
                self._wait(delay, watch=False)
            else:
                self.backoff.reset()
                self._wait(self.settings.delivery.interval_seconds, watch=True)

    def _wait(self, seconds: float, watch: bool) -> None:
        """Sleep, feeding the watchdog; with watch, wake when a new package is finished;
        always wake for a stop or a deliver-now."""
        deadline = time.monotonic() + seconds
        next_scan = time.monotonic() + self.settings.delivery.scan_seconds
        while (left := deadline - time.monotonic()) > 0:
            step = min(self.watchdog or 1.0, left, max(0.01, next_scan - time.monotonic()))
            if self.wake.wait(step) or self.stopping.is_set():
                return
            self.tick()
            if watch and time.monotonic() >= next_scan:
                next_scan = time.monotonic() + self.settings.delivery.scan_seconds
                if any(path.name not in self.considered for path in self.outbox.finished()):
                    return


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"
