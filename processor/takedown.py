"""Taking a movie down at a family's request: off the website and the public store, and,
unless it may stay in the hall, off the big screen.

The movie is named by its code (as printed at the station, any case, dashes ignored) or
by its package id. It is looked for among this unit's state files first, then in the
store (a movie published by an earlier install has no state file here). Its state file
records who took it down and when; from then on the publish queue never publishes it,
whichever process put it in the queue: the state file is the truth, read under the
package's lock. Then everything publishing put in the store for it goes: the record
first (so no rebuild of the index can bring it back), its index entry, the video and
the poster. A second take-down answers when and by whom the first was, and makes sure
once more that the store holds nothing of it (after a failure midway, run it again).

Every take-down also goes on the take-down list (state.TakedownList), the record that
outlives a state file (a quarantined movie released for another try gets a new one). A
movie that is not here yet (still in its station's outbox: the station offline, a
backlog) is not refused: its take-down waits on the list, and when the movie arrives it
is taken in and never published, nor (unless kept on screen) shown. Only a text that is
neither a code nor a package id is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from moviepkg.errors import RecordError
from moviepkg.ids import is_package_id, movie_code, normalize_code
from moviepkg.locks import exclusive, try_lock
from moviepkg.record import (
    MovieRecord,
    parse_record,
    record_key,
)

from .errors import ProcessorError
from .index import listed_records, remove_from_store, stored_records
from .pipeline import Pipeline
from .report import clock_time
from .screen import Screen, ScreenUnavailable
from .screen.control import request
from .state import Listed, PackageState, Step, TakedownList
from .store import Store, StoreError

log = logging.getLogger("stopmo.processor.takedown")


class NoSuchMovie(ProcessorError):
    """Neither this unit nor its store knows the movie; the message says so in words."""


class AmbiguousCode(ProcessorError):
    """Several movies of this unit share the code (it happens, rarely): give the id."""


@dataclass(frozen=True, slots=True)
class TakenDown:
    """What a take-down did (or found done already)."""

    package_id: str
    at: float  # when it was first taken down
    by: str  # who first took it down
    keep_on_screen: bool  # whether it is still in the hall's loop
    already: bool  # an earlier take-down: this one only made sure
    off_screen_now: bool  # this take-down removed it from the big screen

    @property
    def code(self) -> str:
        """The movie's code, as the family knows it."""
        return movie_code(self.package_id)

    def describe(self, tz: ZoneInfo) -> str:
        """One sentence for the operator."""
        if self.already:
            said = f"already taken down at {clock_time(self.at, tz)} by {self.by}"
            return said + ("; now off the big screen too" if self.off_screen_now else "")
        where = "it stays on the big screen" if self.keep_on_screen else \
            "off the big screen too"
        return (f"taken down: {self.package_id} (code {self.code}) is off the website and "
                f"the store; {where}")

    def data(self) -> dict[str, object]:
        """The facts, for a command's answer."""
        return {"package_id": self.package_id, "code": self.code,
                "taken_down_at": datetime.fromtimestamp(self.at, UTC).isoformat(),
                "taken_down_by": self.by, "keep_on_screen": self.keep_on_screen,
                "already": self.already, "pending": False}


@dataclass(frozen=True, slots=True)
class OnTheList:
    """A take-down of a movie that is not here yet: it waits on the take-down list."""

    listed: Listed  # what the list holds for it now
    already: bool  # it was on the list before this take-down

    def describe(self, tz: ZoneInfo) -> str:
        """One sentence for the operator."""
        since = f" since {clock_time(self.listed.at, tz)} by {self.listed.by}" \
            if self.already else ""
        return (f"no movie {self.listed.named} here yet (it may still be at its station): it "
                f"is on the take-down list{since}; when it arrives it is never published"
                f"{'' if self.listed.keep_on_screen else ', nor shown'}")

    def data(self) -> dict[str, object]:
        """The facts, for a command's answer."""
        return {"package_id": self.listed.package_id or None, "code": self.listed.code,
                "taken_down_at": datetime.fromtimestamp(self.listed.at, UTC).isoformat(),
                "taken_down_by": self.listed.by, "keep_on_screen": self.listed.keep_on_screen,
                "already": self.already, "pending": True}


def _record(store: Store, key: str) -> MovieRecord | None:
    """The movie record the store holds under key (None: none, or not a record)."""
    data = store.get_bytes(key)
    try:
        return parse_record(data) if data is not None else None
    except RecordError:
        return None


def _from_store(store: Store, package_id: str | None, code: str | None) -> list[MovieRecord]:
    """The movies of the store with this id or code: the index first, then the records."""
    if package_id is not None:
        found = _record(store, record_key(package_id))
        if found is not None:
            return [found]
    listed = listed_records(store)
    matches = [r for r in listed if r.id == package_id or (code and r.code == code)]
    if not matches and code is not None:
        matches = [r for r in stored_records(store) if r.code == code]
    return matches


def _named(movie: str) -> tuple[str | None, str | None]:
    """The package id and the code a text can be (either may be None); NoSuchMovie when it
    is neither."""
    text = movie.strip()
    package_id = text if is_package_id(text) else None
    code = normalize_code(text)
    if package_id is None and code is None:
        raise NoSuchMovie(f"{text[:40]!r} is neither a movie code nor a package id")
    return package_id, code


def _one(matches: list[PackageState], code: str | None) -> list[PackageState]:
    """matches, unless several movies share the code: AmbiguousCode, in words."""
    if len(matches) > 1:
        ids = ", ".join(sorted(s.package_id for s in matches))
        raise AmbiguousCode(f"{len(matches)} movies have the code {code}: {ids}; "
                            f"give the package id")
    return matches


def _here(pipeline: Pipeline, package_id: str | None, code: str | None) -> list[PackageState]:
    """The states of this unit with this package id, else with this code."""
    if package_id is not None:
        state = pipeline.states.load(package_id)
        if state is not None:
            return [state]
    return _one([s for s in pipeline.states.all()
                 if code and movie_code(s.package_id) == code], code)


def find_movie(pipeline: Pipeline, movie: str) -> PackageState:
    """The state of the movie named by a code or a package id.

    A movie only the store knows gets a fresh state (not saved yet) at step done.
    Raises NoSuchMovie or AmbiguousCode, in words; StoreError when the store must be
    asked and does not answer.
    """
    package_id, code = _named(movie)
    matches = _here(pipeline, package_id, code)
    if not matches:
        records = {r.id: r for r in _from_store(pipeline.store, package_id, code)}
        matches = _one([PackageState(r.id, Step.DONE, publish=r.public,
                                     created_at=r.created_at.isoformat())
                        for r in records.values()], code)
    if not matches:
        named = f"with code {code}" if code is not None else package_id
        raise NoSuchMovie(f"no movie {named} on this processing unit")
    return matches[0]


def take_down(pipeline: Pipeline, movie: str, by: str, keep_on_screen: bool = False,
              reload_screen: Callable[[], None] | None = None) -> TakenDown | OnTheList:
    """Take a movie down (see the module docstring); reload_screen rebuilds the big
    screen's loop once the local copy is gone (None: nobody to tell).

    A movie neither here nor in the store goes on the take-down list (OnTheList). When
    the store does not answer, a movie not here goes on the list all the same (the store
    not checked), and the StoreError is raised.
    """
    package_id, code = _named(movie)
    takedowns = TakedownList(pipeline.settings.work_dir)
    found: PackageState | OnTheList
    try:
        found = find_movie(pipeline, movie)
    except NoSuchMovie:
        found = _wait_for_it(pipeline, takedowns, package_id, code, by, keep_on_screen,
                             store_checked=True)
    except StoreError:
        found = _wait_for_it(pipeline, takedowns, package_id, code, by, keep_on_screen,
                             store_checked=False)
        if isinstance(found, OnTheList):
            raise
    if isinstance(found, PackageState):
        return _take_down_here(pipeline, takedowns, found, by, keep_on_screen, reload_screen)
    listed = found.listed
    if not found.already:
        log.info("no movie %s here yet: on the take-down list, asked by %s", listed.named,
                 by, extra={"package_id": listed.package_id or None, "code": listed.code})
        if listed.package_id:
            pipeline.events("taken_down", listed.package_id,
                            f"by {by}, not here yet: on the take-down list")
    return found


def _wait_for_it(pipeline: Pipeline, takedowns: TakedownList, package_id: str | None,
                 code: str | None, by: str, keep_on_screen: bool,
                 store_checked: bool) -> PackageState | OnTheList:
    """Put the take-down of a movie not here on the list; if it arrived meanwhile, its state.

    Named by a code, the entry holds the code alone (any movie arriving with it is taken
    down); named by an id, the id and its code.
    """
    with takedowns.held():  # no package is taken in meanwhile (Pipeline.receive)
        arrived = _here(pipeline, package_id, code)
        if arrived:
            return arrived[0]
        listed_id = "" if code is not None else package_id or ""
        listed_code = code if code is not None else movie_code(listed_id)
        earlier = takedowns.get(listed_id, listed_code)
        now = pipeline.clock()
        listed = takedowns.record(Listed(listed_code, listed_id, now, by, keep_on_screen,
                                         now if store_checked else 0.0))
    return OnTheList(listed, already=earlier is not None)


def _take_down_here(pipeline: Pipeline, takedowns: TakedownList, found: PackageState, by: str,
                    keep_on_screen: bool,
                    reload_screen: Callable[[], None] | None) -> TakenDown:
    """Take down a movie this unit (or its store) knows: mark it, empty the store of it,
    and take it off the big screen unless kept."""
    package_id = found.package_id
    lock = pipeline.settings.work_dir / "locks" / f"{package_id}.lock"
    with exclusive(lock):  # waits for an encode or a publish try of this movie to end
        state = pipeline.states.load(package_id) or found
        already = state.taken_down
        off_screen_now = not keep_on_screen and (not already or state.keep_on_screen)
        if not already:
            state.taken_down_at, state.taken_down_by = pipeline.clock(), by
            state.keep_on_screen = keep_on_screen
        if off_screen_now:
            state.keep_on_screen = False
        if state.step is not Step.QUARANTINED and (state.step is Step.SHOWN
                                                    or not state.keep_on_screen):
            # Nothing left to do for it: never published, and (unless kept) never shown.
            state.step, state.gave_up, state.next_attempt_at = Step.DONE, False, 0.0
        state.unpublished_at = 0.0
        with takedowns.held():  # the record that outlives the state file
            takedowns.record(Listed.of(state))
        pipeline.states.save(state, pipeline.clock())  # from here nothing publishes it
    # Outside the lock (S3 may be slow): no publish try can start any more, and one that
    # ran has ended, so what is deleted now stays deleted.
    remove_from_store(pipeline.store, package_id, datetime.now(UTC), pipeline.index_lock,
                      pipeline.settings.unit)
    with exclusive(lock):  # a kept movie may have moved on meanwhile: change one field
        latest = pipeline.states.load(package_id) or state
        latest.unpublished_at = pipeline.clock()
        pipeline.states.save(latest, pipeline.clock())
        if latest.taken_down:
            with takedowns.held():
                takedowns.record(Listed.of(latest))
    if off_screen_now:
        removed = pipeline.remove_local_movie(package_id)
        log.info("off the big screen: %d local files removed", removed,
                 extra={"package_id": package_id})
        if reload_screen is not None:
            reload_screen()
    done = TakenDown(package_id, state.taken_down_at, state.taken_down_by,
                     state.keep_on_screen, already, off_screen_now)
    if not already or off_screen_now:
        log.info("taken down by %s%s", by, ", kept on the big screen" if keep_on_screen else "",
                 extra={"package_id": package_id, "code": done.code})
        pipeline.events("taken_down", package_id,
                        f"by {by}" + (", kept on the big screen" if done.keep_on_screen else ""))
    else:
        log.info("already taken down by %s; the store was checked again", state.taken_down_by,
                 extra={"package_id": package_id})
    return done


def reload_in_process(screen: Screen) -> Callable[[], None]:
    """Rebuild the loop of the daemon's own screen (no screen: nothing to do)."""
    def reload() -> None:
        """Rebuild the loop now; a screen that fails is logged, never raised."""
        try:
            screen.reload()
        except ScreenUnavailable:
            return
        except Exception as exc:  # the copy is gone already: the next reload leaves it out
            log.warning("could not reload the big screen: %s: %s", type(exc).__name__, exc)
    return reload


def reload_through_daemon(pipeline: Pipeline) -> Callable[[], None]:
    """From a command line: ask a running daemon to rebuild its loop (none runs: its next
    start builds the loop from the movies on disk)."""
    def reload() -> None:
        """Ask the daemon, if one runs, to rebuild its loop; one that fails is logged."""
        with try_lock(pipeline.daemon_lock) as alone:
            if alone:
                return
        try:
            request(pipeline.settings.control_socket, "reload")
        except (ConnectionError, RuntimeError) as exc:
            log.warning("could not reload the big screen: %s", exc)
    return reload
