"""The publish queue: movies already on the big screen, waiting for the store to answer.

The queue is durable because it is nothing but the state files at step `shown`
with the PUBLISH flag: a restart (or kill -9) finds it again as it was. It is
drained oldest first, by one thread, and never gives up: the festival's uplink
is a 4G stick that drops for minutes to an hour, and every movie must reach the
website once it is back. Each package keeps its own capped, jittered backoff; a
failed round stops after two failures in a row (the store is down: no need to
knock with every movie), and the first success after an outage makes every
waiting movie due at once, so the backlog drains as soon as the uplink returns.

Publishing one movie puts the video and the poster, then the record, then the
index entry (by id): a retry after any interruption publishes nothing twice. Each try
reads the state file under the package's lock first, so a movie taken down meanwhile
(takedown.py, by this process or another) leaves the queue unpublished.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from moviepkg.backoff import backoff_delay
from moviepkg.locks import try_lock
from moviepkg.logs import package_context
from moviepkg.record import DEFAULT_HALL, parse_record, poster_key, record_key, video_key

from .index import removed_by_owner, sweep_owner_removals, update_index
from .state import PackageState, StateStore, Step
from .store import Store, StoreError

log = logging.getLogger("stopmo.processor.publish")
PUBLISH_RETRY_BASE = 2.0  # seconds after the first failure
PUBLISH_RETRY_CAP = 60.0  # never more than about a minute between tries
FAILURES_PER_ROUND = 2  # two in a row: the store is down, wait for the next round
RELOAD_SECONDS = 60.0  # pick up packages queued by another process (`processor process`)
OWNER_SWEEP_SECONDS = 120.0  # look for movies removed by their families this often
Events = Callable[[str, str, str], None]  # (kind, package id, detail): telemetry, never blocking


def no_events(kind: str, package_id: str, detail: str) -> None:
    """Tell nobody (telemetry off, one-shot commands)."""


def publish_movie(store: Store, movies_dir: Path, package_id: str, index_lock: Path) -> None:
    """Put one encoded movie into the store: media, then its record, then the index."""
    if removed_by_owner(store, package_id):  # one GET: the index write lists owner/ anyway
        log.info("its family removed it from the public site: not published again",
                 extra={"package_id": package_id})
        return
    movie = movies_dir / f"{package_id}"
    record = parse_record(movie.with_suffix(".json").read_bytes())
    store.put_file(video_key(package_id), movie.with_suffix(".mp4"), "video/mp4")
    store.put_file(poster_key(package_id), movie.with_suffix(".jpg"), "image/jpeg")
    # The record goes last, so a listed record always has its video and poster.
    store.put_bytes(record_key(package_id), record.to_json(), "application/json")
    update_index(store, record, datetime.now(UTC), index_lock)


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """What the queue looks like now (for `processor status` and telemetry)."""

    waiting: int
    oldest_since: float  # epoch seconds; 0 when nothing waits
    last_error: str  # the most recent failure, "" after a success
    failing_since: float  # when the current run of failures began; 0 when the store answers
    store_reachable: bool | None = None  # did the last try succeed; None: no try yet


class PublishQueue:
    """Drain the movies waiting at `shown`, oldest first, retrying forever."""

    def __init__(self, states: StateStore, store: Store, movies_dir: Path, work_dir: Path,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None, events: Events = no_events,
                 hall: str = DEFAULT_HALL) -> None:
        self.states, self.store, self.events = states, store, events
        self.hall = hall  # this unit's: it sweeps only its own hall's removed movies
        self.movies_dir, self.work_dir = movies_dir, work_dir  # the movies, index.lock, locks/
        self.clock = clock
        self.rng = rng or random.Random()
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[str, str]] = {}  # id -> (created_at, id), for sorting
        self._last_error = ""
        self._failing_since = 0.0
        self._reachable: bool | None = None
        self._loaded_at = -RELOAD_SECONDS
        self._swept_at = -OWNER_SWEEP_SECONDS
        self._swept: set[str] = set()  # removed by their families, already out of the store

    def reload(self) -> None:
        """Find every waiting movie from the state files (at start, then now and then)."""
        found = {s.package_id: (s.created_at, s.package_id)
                 for s in self.states.all() if s.waiting_to_publish}
        with self._lock:
            self._waiting = found
        self._loaded_at = time.monotonic()

    def add(self, state: PackageState) -> None:
        """Note a movie that just joined the queue, and wake the drainer."""
        with self._lock:
            self._waiting[state.package_id] = (state.created_at, state.package_id)
        self.wake.set()

    def _ordered(self) -> list[str]:
        with self._lock:
            return [package_id for _, package_id in sorted(self._waiting.values())]

    def publish(self, state: PackageState) -> None:
        """Publish one waiting movie now and mark it done (raises what the store raised)."""
        publish_movie(self.store, self.movies_dir, state.package_id,
                      self.work_dir / "index.lock")
        state.step = Step.DONE
        state.published_at = self.clock()
        state.durations["published"] = round(state.published_at - state.waiting_since, 3) \
            if state.waiting_since else 0.0
        state.attempts, state.last_error, state.next_attempt_at = 0, "", 0.0
        self.states.save(state, self.clock())
        self._reachable = True
        log.info("published to %s", self.store.url, extra={"package_id": state.package_id})
        self.events("published", state.package_id, "")

    def note_failure(self, state: PackageState, exc: BaseException) -> float:
        """Count a failed try; return the delay before the next one."""
        state.attempts += 1
        state.last_error = f"{type(exc).__name__}: {exc}"
        delay = backoff_delay(state.attempts, PUBLISH_RETRY_BASE, PUBLISH_RETRY_CAP,
                              self.rng.random)
        state.next_attempt_at = self.clock() + delay
        self.states.save(state, self.clock())
        with self._lock:
            self._last_error = state.last_error
            self._failing_since = self._failing_since or self.clock()
            self._reachable = False
        log.warning("waiting to publish since %s, %d tries; next in %.0f s: %s",
                    _hhmm(state.waiting_since), state.attempts, delay, state.last_error,
                    extra={"package_id": state.package_id})
        self.events("publish_failed", state.package_id,
                    f"{state.last_error} (try {state.attempts}; next at "
                    f"{_hhmmss(state.next_attempt_at)}, in {delay:.0f} s)")
        return delay

    def make_due(self, package_id: str | None = None) -> list[str]:
        """Make every waiting movie (or only package_id) due now, skipping its backoff, and
        wake the drainer; return the ids made due, oldest first.

        Read from the state files, so movies queued by another process count too.
        """
        due = []
        for state in sorted(self.states.all(), key=lambda s: (s.created_at, s.package_id)):
            if not state.waiting_to_publish or package_id not in (None, state.package_id):
                continue
            with try_lock(self.work_dir / "locks" / f"{state.package_id}.lock") as mine:
                fresh = self.states.load(state.package_id) if mine else state
                if fresh is None or not fresh.waiting_to_publish:
                    continue  # published or taken down meanwhile
                if mine:  # else it is being tried right now: due all the same
                    fresh.next_attempt_at = 0.0
                    self.states.save(fresh, self.clock())
            with self._lock:
                self._waiting[fresh.package_id] = (fresh.created_at, fresh.package_id)
            due.append(fresh.package_id)
            log.info("due now: publish-now", extra={"package_id": fresh.package_id})
        self.wake.set()
        return due

    def _try(self, package_id: str) -> bool | None:
        """Publish one movie: True done, False failed, None no longer waiting here."""
        with try_lock(self.work_dir / "locks" / f"{package_id}.lock") as mine:
            state = self.states.load(package_id)
            if not mine or state is None or not state.waiting_to_publish:
                if state is None or not state.waiting_to_publish:
                    self._drop(package_id, state)
                return None  # someone else has it (`processor retry`), or it left the queue
            with package_context(package_id):
                try:
                    self.publish(state)
                except Exception as exc:  # every failure here is the store's or the uplink's
                    self.note_failure(state, exc)
                    return False
        with self._lock:
            self._waiting.pop(package_id, None)
            if self._failing_since:
                log.info("the store answers again after %.0f s",
                         self.clock() - self._failing_since, extra={"package_id": package_id})
            self._last_error, self._failing_since = "", 0.0
        return True

    def _drop(self, package_id: str, state: PackageState | None) -> None:
        """Forget a movie that left the queue (published elsewhere, or taken down)."""
        with self._lock:
            known = self._waiting.pop(package_id, None) is not None
        if known and state is not None and state.taken_down:
            log.info("taken down by %s: out of the publish queue, never published",
                     state.taken_down_by, extra={"package_id": package_id})

    def drain(self) -> int:
        """Try every due movie, oldest first; return how many were published."""
        if time.monotonic() - self._loaded_at >= RELOAD_SECONDS:
            self.reload()
        published = self._pass(everyone_due=False)
        if published:  # the store answers: what was skipped for its backoff goes now
            published += self._pass(everyone_due=True)
        return published

    def _pass(self, everyone_due: bool) -> int:
        published, failures = 0, 0
        for package_id in self._ordered():
            state = self.states.load(package_id)
            if state is None or not state.waiting_to_publish:
                self._drop(package_id, state)
                continue
            if not everyone_due and state.next_attempt_at > self.clock():
                continue
            done = self._try(package_id)
            if done:
                published += 1
                failures, everyone_due = 0, True  # the store is back: everyone is due
            elif done is False:
                failures += 1
                if failures >= FAILURES_PER_ROUND:
                    break
        return published

    def next_due_in(self) -> float:
        """Seconds until the earliest waiting movie is due (inf when none waits)."""
        earliest = float("inf")
        for package_id in self._ordered():
            state = self.states.load(package_id)
            if state is not None and state.waiting_to_publish:
                earliest = min(earliest, state.next_attempt_at)
        return max(0.0, earliest - self.clock())

    def sweep(self) -> list[str]:
        """Take out of the store the movies their families removed (see
        index.sweep_owner_removals); a store that does not answer waits for the next
        sweep. Returns the ids removed."""
        self._swept_at = time.monotonic()
        try:
            removed = sweep_owner_removals(self.store, datetime.now(UTC),
                                           self.work_dir / "index.lock", self._swept, self.hall)
        except StoreError as exc:
            log.info("the sweep of removed movies waits for the store: %s", exc)
            return []
        for movie_id in removed:
            self.events("taken_down", movie_id, "by its family (owner link) or another hall")
        return removed

    def run(self, stop: threading.Event) -> None:
        """Drain until stop is set; wake early when a movie joins the queue; now and then
        take out of the store what families removed."""
        self.reload()
        while not stop.is_set():
            try:
                if time.monotonic() - self._swept_at >= OWNER_SWEEP_SECONDS:
                    self.sweep()
                self.drain()
                wait = min(self.next_due_in(), RELOAD_SECONDS)
            except Exception:  # the drainer must outlive anything (a full disk, ...)
                log.exception("the publish queue failed a round; trying again soon")
                wait = PUBLISH_RETRY_CAP / 4
            self.wake.wait(wait)
            self.wake.clear()

    def status(self) -> QueueStatus:
        """Sum up the queue: how many wait, since when, the last error."""
        ordered = self._ordered()
        oldest = self.states.load(ordered[0]) if ordered else None
        with self._lock:
            return QueueStatus(waiting=len(ordered),
                               oldest_since=oldest.waiting_since if oldest else 0.0,
                               last_error=self._last_error, failing_since=self._failing_since,
                               store_reachable=self._reachable)


def _hhmm(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC") if epoch else "?"


def _hhmmss(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")
