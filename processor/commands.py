"""The operators' commands the processing unit answers (moviepkg.commands' CATALOGUE).

Program `processor`: retry, release, delete, publish-now, take-down. Program `screen`:
next, play, reload (what `processor screen ...` does through the control socket, here
on the daemon's own screen). Each handler returns what happened in words, or raises
moviepkg's Refused with why not; any other exception is answered as failed. Every
command that changes a movie tells telemetry (retried, released, deleted, taken_down).
A CommandRunner per program keeps the ids it answered in `work/commands/<program>.json`,
so a command replayed after a restart is answered again, never run twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from moviepkg.commands import (
    Command,
    CommandRunner,
    Handler,
    Refused,
    parse_command,
    parse_result,
)
from moviepkg.ids import is_package_id

from .pipeline import Pipeline
from .quarantine import NotQuarantined, Quarantine
from .report import clock_time
from .screen import ScreenUnavailable
from .screen.control import answer
from .screen.ipc import MpvError
from .state import PackageState, TakedownList
from .takedown import AmbiguousCode, NoSuchMovie, reload_in_process, take_down

log = logging.getLogger("stopmo.processor.commands")
PROGRAMS = ("processor", "screen")


def answered_file(work_dir: Path, program: str) -> Path:
    """Where a program's answered command ids are kept."""
    return work_dir / "commands" / f"{program}.json"


class Commands:
    """The handlers, bound to the daemon's pipeline.

    enqueue: the daemon's thread-safe way to take a package into its encode queue now.
    """

    def __init__(self, pipeline: Pipeline, enqueue: Callable[[str], None]) -> None:
        self.pipeline = pipeline
        self.enqueue = enqueue
        self.quarantine = Quarantine(pipeline.settings.quarantine_dir, pipeline.settings.inbox,
                                     pipeline.states, TakedownList(pipeline.settings.work_dir))
        self.tz = ZoneInfo(pipeline.settings.timezone)

    def handlers(self, program: str) -> dict[str, Handler]:
        """The handlers of one program (`processor` or `screen`)."""
        if program == "screen":
            return {"next": self.next, "play": self.play, "reload": self.reload}
        return {"retry": self.retry, "release": self.release, "delete": self.delete,
                "publish-now": self.publish_now, "take-down": self.take_down}

    def runner(self, program: str) -> CommandRunner:
        """A runner for program, remembering its answers in the work dir."""
        return CommandRunner(self.handlers(program),
                             answered_file(self.pipeline.settings.work_dir, program))

    def answering(self, program: str) -> Callable[[bytes], bytes | None]:
        """The reporter's `commands`: a runner for program that logs each answer."""
        runner = self.runner(program)

        def handle(payload: bytes) -> bytes | None:
            """Answer one command (None: not one for this program), logging the answer."""
            said = runner.handle(payload)
            if said is not None:
                command, result = parse_command(payload), parse_result(said)
                named = [command.args.get("package_id"), result.data.get("package_id"),
                         command.args.get("movie"), command.args.get("entry")]
                package_id = next((n for n in named if isinstance(n, str)
                                   and is_package_id(n)), None)
                log.info("command %s from %s: %s: %s", command.name, command.sender,
                         result.outcome, result.detail,
                         extra={"command_id": command.id, "program": program,
                                "package_id": package_id})
            return said
        return handle

    def _known(self, package_id: str) -> PackageState:
        """The state of package_id; Refused, in words, when this unit has none."""
        # Only an id's shape is looked up: state files are named by it, never by a path.
        state = self.pipeline.states.load(package_id) if is_package_id(package_id) else None
        if state is None:
            raise Refused(f"no package {package_id[:64]} on this processing unit")
        return state

    def _tell(self, kind: str, package_id: str | None, command: Command, detail: str) -> None:
        """Tell telemetry what a command did to a movie, and who sent it (no movie: nothing)."""
        if package_id is not None:
            self.pipeline.events(kind, package_id, f"{detail} (by {command.sender})")

    # --- processor ---------------------------------------------------------------------

    def retry(self, command: Command) -> str:
        """A failed package (retries used up) tries again now."""
        package_id = command.args["package_id"]
        state = self._known(package_id)
        if not state.gave_up:
            raise Refused(f"{package_id} is not failed: it is {_words(state)}")
        self.pipeline.retry(package_id)
        self.enqueue(package_id)
        log.info("retry asked by %s", command.sender, extra={"package_id": package_id})
        self._tell("retried", package_id, command, f"after: {state.last_error}"[:300])
        return f"{package_id} tries again now (it failed: {state.last_error})"

    def release(self, command: Command) -> tuple[str, dict[str, Any]]:
        """A quarantined entry goes back into the inbox for another try."""
        try:
            entry = self.quarantine.release(command.args["entry"])
        except NotQuarantined as exc:
            raise Refused(str(exc)) from None
        self._tell("released", entry.package_id, command, entry.reason[:300])
        return (f"{entry.original} is back in the inbox for another try (it was quarantined: "
                f"{entry.reason})", {"reason": entry.reason, "entry": entry.path.name})

    def delete(self, command: Command) -> tuple[str, dict[str, Any]]:
        """A quarantined entry is deleted for good."""
        try:
            entry = self.quarantine.delete(command.args["entry"])
        except NotQuarantined as exc:
            raise Refused(str(exc)) from None
        self._tell("deleted", entry.package_id, command, entry.reason[:300])
        return (f"{entry.path.name} is deleted for good (it was quarantined: {entry.reason})",
                {"reason": entry.reason, "entry": entry.path.name})

    def publish_now(self, command: Command) -> str:
        """The movies waiting to publish (or one of them) are due now."""
        package_id = command.args.get("package_id") or None
        if package_id is not None:
            state = self._known(package_id)
            if not state.waiting_to_publish:
                raise Refused(f"{package_id} is not waiting to publish: it is {_words(state)}")
        due = self.pipeline.publisher.make_due(package_id)
        if not due:
            raise Refused("no movie is waiting to publish" if package_id is None
                          else f"{package_id} is not waiting to publish any more")
        log.info("publish-now asked by %s: %d due (%s)", command.sender, len(due),
                 ", ".join(due))
        if len(due) == 1:
            return "1 movie waiting to publish is due now"
        return f"{len(due)} movies waiting to publish are due now"

    def take_down(self, command: Command) -> tuple[str, dict[str, Any]]:
        """A family asked: off the website and the store (and the big screen, unless kept);
        a movie not here yet goes on the take-down list and is never published."""
        try:
            done = take_down(self.pipeline, command.args["movie"], command.sender,
                             keep_on_screen=bool(command.args.get("keep_on_screen")),
                             reload_screen=reload_in_process(self.pipeline.screen))
        except (NoSuchMovie, AmbiguousCode) as exc:
            raise Refused(str(exc)) from None
        return done.describe(self.tz), done.data()

    # --- screen ------------------------------------------------------------------------

    def _screen(self, request: dict[str, Any]) -> Any:
        """Ask the daemon's own screen (as its control socket would); Refused, in words, when
        no screen is attached, it is off, or it cannot do it."""
        screen = self.pipeline.screen
        try:
            status = screen.status()
        except Exception as exc:  # mpv's controller does not answer
            raise Refused(f"the big screen does not answer ({exc})") from None
        if status.get("kind") == "none":
            raise Refused("no big screen is attached to this processing unit")
        if not status.get("connected"):
            raise Refused("the big screen is off: mpv does not answer")
        try:
            return answer(screen, request)
        except ScreenUnavailable as exc:
            raise Refused(str(exc)) from None
        except KeyError:
            raise Refused(f"no movie {request.get('id')} on this processing unit") from None
        except MpvError as exc:
            raise Refused(f"the big screen is off: {exc}") from None

    def next(self, command: Command) -> str:
        """Skip to the next movie of the loop."""
        self._screen({"command": "next"})
        return "skipped to the next movie"

    def play(self, command: Command) -> str:
        """Play one movie now."""
        package_id = command.args["package_id"]
        state = self.pipeline.states.load(package_id) if is_package_id(package_id) else None
        if state is not None and state.taken_down and not state.keep_on_screen:
            raise Refused(f"{package_id} was taken down at "
                          f"{clock_time(state.taken_down_at, self.tz)} by "
                          f"{state.taken_down_by}: it is not on the big screen any more")
        self._screen({"command": "play", "id": package_id})
        log.info("play asked by %s", command.sender, extra={"package_id": package_id})
        return f"{package_id} plays now"

    def reload(self, command: Command) -> str:
        """Rebuild the loop from the movies on disk."""
        result = self._screen({"command": "reload"})
        count = result.get("movies", 0) if isinstance(result, dict) else 0
        return f"the loop has {count} movie{'' if count == 1 else 's'}"


_WORDS = {"received": "on its way (received)", "validated": "on its way (validated)",
          "encoded": "on its way (encoded)", "shown": "on the big screen",
          "quarantined": "quarantined (release it instead)"}


def _words(state: PackageState) -> str:
    """A package's status as an operator reads it."""
    return _WORDS.get(state.status, state.status.replace("-", " "))
