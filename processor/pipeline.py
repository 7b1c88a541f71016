"""One package's way from the inbox to the big screen and the store, exactly once.

`receive` takes a package out of the inbox (or quarantines it); `advance` runs
the remaining steps, saving the state after each, so a killed process resumes
at the first unfinished step: validate, encode, show on the big screen, then
(PUBLISH only) publish. The screen never waits for the store: publishing is the
publish queue's job (publishing.py), which retries until the store answers.
Store keys are deterministic and the index is updated by id, so a step that runs
twice publishes nothing twice. failures.py decides what is the package's fault
(quarantined at once) and what is the world's (retried).
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from moviepkg.atomic import unlink_durable, write_atomic
from moviepkg.backoff import backoff_delay
from moviepkg.errors import IncompletePackage, PackageError
from moviepkg.ids import is_package_id
from moviepkg.locks import try_lock
from moviepkg.logs import package_context
from moviepkg.reader import Package, read_package
from moviepkg.record import parse_record

from .config import Settings
from .encode import Encoded, Progress
from .encoders import EncoderChoice, choose_encoder
from .failures import is_permanent
from .files import Stamp, folder_stamp, free_name, move_or_copy
from .movie import make_movie
from .publishing import Events, PublishQueue, no_events
from .screen import Screen, ScreenMovie
from .state import FINAL, Listed, PackageState, StateStore, Step, TakedownList
from .store import Store, StoreError

log = logging.getLogger("stopmo.processor")
MAX_BACKOFF_SECONDS = 900.0
# The telemetry event each step's completion is (moviepkg.telemetry.EVENTS).
_EVENT_AFTER = {Step.RECEIVED: "validated", Step.VALIDATED: "encoded",
                Step.ENCODED: "on_screen", Step.PUBLISHED: "on_screen"}


class Outcome(StrEnum):
    """How handling one package ended."""

    PUBLISHED = "published"  # PUBLISH: in the store and handed to the screen
    SHOWN = "shown"  # NOPUBLISH: handed to the screen only
    WAITING = "waiting"  # PUBLISH: handed to the screen, waiting in the publish queue
    DUPLICATE = "duplicate"  # already done, or already being processed
    QUARANTINED = "quarantined"
    INCOMPLETE = "incomplete"  # not finished arriving: try later
    RETRY = "retry"  # a step failed; it will be retried after a backoff
    FAILED = "failed"  # retries used up; an operator must look


class Pipeline:
    """Runs the steps for packages, with the work dir as its memory."""

    def __init__(self, settings: Settings, store: Store, screen: Screen,
                 clock: Callable[[], float] = time.time,
                 progress: Callable[[str], Progress | None] | None = None,
                 rng: random.Random | None = None, events: Events = no_events,
                 choose: Callable[[str, tuple[int, int]], EncoderChoice] = choose_encoder
                 ) -> None:
        self.settings = settings
        self.events = events  # what happens to each movie, for telemetry
        self.rng = rng or random.Random()
        self.store = store
        self.screen = screen
        self.clock = clock
        self.progress = progress or (lambda package_id: None)
        self._choose = choose
        self._encoder: EncoderChoice | None = None
        self._encoder_lock = threading.Lock()
        self.last_encode: Encoded | None = None  # the latest movie made here, for telemetry
        # Packages read and checked in this process (sha256 of every frame), with the stamp
        # of their folder then: the encode step reads one again only if its folder changed.
        self._validated: dict[str, tuple[Package, Stamp]] = {}
        work = settings.work_dir
        self.packages_dir = work / "packages"
        self.movies_dir = work / "movies"
        self.duplicates_dir = work / "duplicates"
        for folder in (self.packages_dir, self.movies_dir, self.duplicates_dir,
                       settings.quarantine_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.states = StateStore(work / "state")
        self.index_lock = work / "index.lock"
        self.publisher = PublishQueue(self.states, store, self.movies_dir, work, clock,
                                      self.rng, events, settings.unit)

    # --- taking packages in -----------------------------------------------------------------

    def receive(self, entry: Path,
                keep: bool = False) -> tuple[Outcome | None, PackageState | None]:
        """Validate an arriving entry and move it into the work dir (copy when keep).

        Returns (None, state) when the package was taken and awaits `advance`, or an
        outcome that ends its handling here. A movie taken down before it arrived (on the
        take-down list, or in the state of its quarantined copy) is taken in all the same,
        so that it is not delivered again, and never published; unless kept on screen it is
        done at once (SHOWN, though nothing was shown).
        """
        name = entry.name
        with package_context(name):
            if not (entry.exists() or entry.is_symlink()):
                raise FileNotFoundError(f"{entry}: no such package")
            known = self.states.load(name) if is_package_id(name) else None
            if known is not None and known.step is not Step.QUARANTINED:
                self._set_aside(entry, known, keep)
                return Outcome.DUPLICATE, known
            before = folder_stamp(entry)  # of the very files read and checked below
            try:
                package = read_package(entry)
            except IncompletePackage:
                return Outcome.INCOMPLETE, None
            except PackageError as exc:
                self.quarantine(entry, str(exc), keep=keep)
                return Outcome.QUARANTINED, None
            inode = entry.stat().st_ino
            target = self.packages_dir / name
            if target.exists():  # taken before a crash, state not yet written: redo
                shutil.rmtree(target)
            move_or_copy(entry, target, keep)
            # A rename keeps the very files just validated; a copy is checked again.
            moved = not keep and (self.packages_dir / name).stat().st_ino == inode
            state = PackageState(package_id=name, step=Step.VALIDATED if moved else Step.RECEIVED,
                                 publish=package.publish,
                                 created_at=package.manifest.created_at.isoformat())
            takedowns = TakedownList(self.settings.work_dir)
            with takedowns.held():  # a take-down looking for it meanwhile finds this state
                if known is not None and known.taken_down:  # its quarantined copy's
                    Listed.of(known).apply(state)
                listed = takedowns.find(name)
                if listed is not None:
                    listed.apply(state)
                if state.taken_down and not state.keep_on_screen:
                    state.step = Step.DONE
                self.states.save(state, self.clock())
            flag = "PUBLISH" if package.publish else "NOPUBLISH"
            log.info("received %d frames (%s)", len(package.frames), flag)
            self.events("received", name, flag)
            if state.taken_down:
                log.info("taken down by %s before it arrived: never published%s",
                         state.taken_down_by, ", shown in the hall only"
                         if state.keep_on_screen else ", nor shown")
            if state.step is Step.DONE:
                return Outcome.SHOWN, state
            if state.step is Step.VALIDATED:  # read and checked above: the step is done
                if before is not None and folder_stamp(target) == before:
                    self._validated[name] = (replace(package, path=target), before)
                self.events("validated", name, "")
            return None, state

    def _set_aside(self, entry: Path, known: PackageState, keep: bool) -> None:
        if keep:  # the caller's own folder: leave it where it is
            log.warning("already %s: ignored", known.status)
            return
        stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%Sz")
        target = free_name(self.duplicates_dir / f"{entry.name}-{stamp}")
        move_or_copy(entry, target, keep=False)
        log.warning("arrived again while %s: ignored, kept in %s", known.status, target)

    def quarantine(self, entry: Path, reason: str, keep: bool = False) -> Path | None:
        """Move (or copy) entry into the quarantine folder with a REASON file."""
        target: Path | None = None
        if entry.exists() or entry.is_symlink():
            target = free_name(self.settings.quarantine_dir / entry.name)
            if entry.is_dir() and not entry.is_symlink():
                move_or_copy(entry, target, keep)
            else:
                target.mkdir()
                move_or_copy(entry, target / entry.name, keep)
            write_atomic(target / "REASON", (reason + "\n").encode("utf-8"))
        if is_package_id(entry.name):
            state = self.states.load(entry.name) or PackageState(entry.name, Step.QUARANTINED)
            state.step = Step.QUARANTINED
            state.last_error = reason
            self.states.save(state, self.clock())
        log.error("quarantined: %s", reason, extra={"package_id": entry.name,
                                                      "quarantine": str(target)})
        if is_package_id(entry.name):
            self.events("quarantined", entry.name, reason)
        return target

    # --- the steps ------------------------------------------------------------------------------

    def pending(self, now: float | None = None) -> list[PackageState]:
        """Packages for an encode worker: unfinished, not given up, not waiting to publish,
        backoff over; oldest first."""
        now = self.clock() if now is None else now
        taken = {state.package_id: state for state in self.states.all()}
        for folder in self.packages_dir.iterdir():  # moved in, state never written
            if folder.name not in taken and is_package_id(folder.name):
                with contextlib.suppress(PackageError):
                    package = read_package(folder)
                    taken[folder.name] = PackageState(
                        folder.name, Step.RECEIVED, publish=package.publish,
                        created_at=package.manifest.created_at.isoformat())
                    self.states.save(taken[folder.name], self.clock())
        due = [s for s in taken.values() if s.step not in FINAL and not s.gave_up
               and not s.waiting_to_publish and s.next_attempt_at <= now]
        return sorted(due, key=lambda s: (s.created_at, s.package_id))

    def advance(self, package_id: str, publish: bool = True) -> Outcome:
        """Run every remaining step of a received package (one process at a time).

        With publish, a PUBLISH movie is published once it is on the screen (one try;
        on failure it waits in the publish queue); without, it joins the queue at once.
        """
        with try_lock(self.settings.work_dir / "locks" / f"{package_id}.lock") as mine:
            if not mine:
                log.info("already being processed by another process",
                         extra={"package_id": package_id})
                return Outcome.DUPLICATE
            return self._advance(package_id, publish)

    def _advance(self, package_id: str, publish: bool) -> Outcome:
        state = self.states.load(package_id)
        if state is None:
            raise KeyError(package_id)
        steps = {Step.RECEIVED: self._validate, Step.VALIDATED: self._encode,
                 Step.ENCODED: self._show, Step.PUBLISHED: self._show}
        with package_context(package_id):
            while state.step in steps:
                done_word = _EVENT_AFTER[state.step]
                started = time.monotonic()
                try:
                    steps[state.step](state)
                except Exception as exc:
                    if is_permanent(exc):  # the package's own content: never retried
                        self.quarantine(self.packages_dir / package_id, str(exc))
                        return Outcome.QUARANTINED
                    return self.failed(state, exc)  # the environment: retried, with backoff
                state.durations[state.step.value] = round(time.monotonic() - started, 3)
                state.attempts, state.last_error, state.next_attempt_at = 0, "", 0.0
                self.states.save(state, self.clock())
                if done_word != "on_screen" or not state.taken_down or state.keep_on_screen:
                    self.events(done_word, package_id, "")  # (a taken-down one is not shown)
            if state.step is Step.QUARANTINED:
                return Outcome.QUARANTINED
            if state.waiting_to_publish:
                self.publisher.add(state)
                if not publish:
                    return Outcome.WAITING
                try:
                    self.publisher.publish(state)
                except Exception as exc:  # the store's or the uplink's: the queue retries
                    self.publisher.note_failure(state, exc)
                    return Outcome.WAITING
            log.info("done in %.1f s", sum(state.durations.values()),
                     extra={"durations": state.durations})
            return Outcome.PUBLISHED if state.publish and not state.taken_down else Outcome.SHOWN

    def failed(self, state: PackageState, exc: BaseException) -> Outcome:
        """Count a failed attempt: retry after a backoff, or give up after max_attempts."""
        state.attempts += 1
        state.last_error = f"{type(exc).__name__}: {exc}"
        if state.attempts >= self.settings.max_attempts:
            state.gave_up = True
            self.states.save(state, self.clock())
            log.error("failed %d times, giving up: %s", state.attempts, state.last_error,
                      extra={"package_id": state.package_id})
            self.events("failed", state.package_id, state.last_error)
            return Outcome.FAILED
        delay = backoff_delay(state.attempts, self.settings.retry_base_seconds,
                              MAX_BACKOFF_SECONDS, self.rng.random)
        state.next_attempt_at = self.clock() + delay
        self.states.save(state, self.clock())
        log.warning("step after %s failed (attempt %d), retry in %.0f s: %s", state.step,
                    state.attempts, delay, state.last_error,
                    extra={"package_id": state.package_id})
        return Outcome.RETRY

    def _package(self, package_id: str) -> Package:
        """The package, read and checked: again only if its folder changed since it was."""
        folder = self.packages_dir / package_id
        package, stamp = self._validated.pop(package_id, (None, None))
        if package is not None and folder_stamp(folder) == stamp:
            return package
        return read_package(folder)

    def _validate(self, state: PackageState) -> None:
        folder = self.packages_dir / state.package_id
        before = folder_stamp(folder)
        package = read_package(folder)
        if before is not None:
            self._validated[state.package_id] = (package, before)
        state.step = Step.VALIDATED

    def encoder(self) -> EncoderChoice:
        """The encoder encode.codec names, or `auto`'s choice, made once (a test encode)."""
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = self._choose(self.settings.codec, self.settings.size)
            return self._encoder

    def _movie(self, package_id: str, suffix: str) -> Path:
        return self.movies_dir / f"{package_id}{suffix}"

    def _encode(self, state: PackageState) -> None:
        public = state.publish and not state.taken_down  # only then a code and a QR code
        self.last_encode = make_movie(self._package(state.package_id), self.settings,
                                      self.movies_dir, self.encoder().codec, public,
                                      self.progress(state.package_id))
        state.step = Step.ENCODED

    def _show(self, state: PackageState) -> None:
        """Hand the movie to the big screen; a PUBLISH movie then joins the publish queue.

        A movie taken down is never published, nor shown unless kept on screen; the
        take-down list is read once more here, for a state made without it (after a crash
        between taking a package in and writing its state).
        """
        if not state.taken_down:
            listed = TakedownList(self.settings.work_dir).find(state.package_id)
            if listed is not None:
                listed.apply(state)
                log.info("found on the take-down list (its state was made without it)")
        if state.taken_down and not state.keep_on_screen:
            log.info("taken down by %s: never shown, nor published", state.taken_down_by)
            state.step = Step.DONE
            return
        record = parse_record(self._movie(state.package_id, ".json").read_bytes())
        self.screen.show(ScreenMovie(package_id=state.package_id,
                                     path=self._movie(state.package_id, ".mp4"),
                                     title=record.title, public=state.publish))
        if state.step is Step.PUBLISHED:  # an older daemon published it already
            state.step = Step.DONE
        elif state.publish and not state.taken_down:
            state.step = Step.SHOWN
            state.waiting_since = self.clock()
        else:
            log.info("%s: on the big screen, never published",
                     "taken down" if state.taken_down else "NOPUBLISH")
            state.step = Step.DONE

    def clean_up(self) -> None:
        """Remove what interrupted steps left behind (partial movies, uploads).

        Only call it while holding the daemon lock (see `daemon_lock`): a running daemon's
        temp files are not leftovers.
        """
        removed = 0
        for leftover in self.movies_dir.glob(".*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        try:
            removed += self.store.clean_up()
        except StoreError as exc:  # the store may be down now; publishing will retry
            log.warning("could not clean up the store: %s", exc)
        if removed:
            log.info("cleaned up %d leftovers of interrupted steps", removed)

    @property
    def daemon_lock(self) -> Path:
        """Held by `processor run` for as long as it runs."""
        return self.settings.work_dir / "daemon.lock"

    def retry(self, package_id: str) -> PackageState:
        """Let a failed package try again now (an operator's decision)."""
        state = self.states.load(package_id)
        if state is None:
            raise KeyError(package_id)
        state.gave_up, state.attempts, state.next_attempt_at = False, 0, 0.0
        self.states.save(state, self.clock())
        log.info("tries again now (%s)", state.status, extra={"package_id": package_id})
        if state.waiting_to_publish:
            self.publisher.add(state)
        return state

    def remove_local_movie(self, package_id: str) -> int:
        """Delete the movie, poster and record of package_id from the work dir (the big
        screen's copy); return how many files went."""
        removed = 0
        for suffix in (".mp4", ".jpg", ".json"):
            path = self._movie(package_id, suffix)
            if path.exists():
                unlink_durable(path)
                removed += 1
        return removed
