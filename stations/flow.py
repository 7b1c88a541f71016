"""The kiosk's flow as an explicit state machine. It never imports Tk.

attract -> shooting (capture, delete, play, onion skin) -> finish (publish or not)
-> done (the movie's code, or "it plays on the big screen") -> attract. Nobody pressing
anything while shooting: "still there?", then the movie is finished as NOPUBLISH
(nothing is thrown away). Any unexpected error: the "please call a helper" screen,
which recovers. A movie's start and finish are told to `events` (telemetry), which
must not block.

`acts()` says which buttons do something now; `handle` ignores the others and the
screen lights exactly these, so a lit button always acts and a dim one never does.

An operator can hold the flow (out of order, or while the kiosk identifies itself):
while held, every button is ignored and the clock stands still for the idle questions,
so a movie in progress is neither asked about nor finished; when the last hold is
released everything carries on where it stood. Out of order is kept in a small flag
file in the outbox, so a restarted kiosk is still out of order.

The flow decides; the kiosk does the slow work. `handle` may return a Command
(capture a frame, play the movie); the kiosk carries it out and reports back
with `captured` or `failed`. Time comes from an injected clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from moviepkg.atomic import unlink_durable, write_atomic
from moviepkg.ids import movie_code
from moviepkg.owner import key_hash, new_owner_key
from moviepkg.times import format_utc, utc_now
from moviepkg.writer import PackageWriter, unfinished_packages

log = logging.getLogger("stopmo.station.flow")
Events = Callable[[str, str, str], None]  # (kind, package id, detail), never blocking
OUT_OF_ORDER_FLAG = ".out-of-order"  # in the outbox (hidden: never taken for a package)


class Action(StrEnum):
    """What a child can do: each big button (or key) is one action."""

    GO = "go"  # green: start, capture, "yes, publish"
    UNDO = "undo"  # red: delete the last frame, "no, keep it here"
    PLAY = "play"  # blue: play the movie so far
    ONION = "onion"  # white: onion skin on/off
    FINISH = "finish"  # yellow: the movie is done


class Screen(StrEnum):
    """What the kiosk shows."""

    ATTRACT = "attract"
    SHOOTING = "shooting"
    PLAYING = "playing"
    STILL_THERE = "still-there"
    FINISH = "finish"
    DONE = "done"
    HELP = "help"
    OUT_OF_ORDER = "out-of-order"  # shown over whatever the flow was on; see Flow.hold


# A child is at work on these screens with a movie in progress.
SHOOTING_SCREENS = (Screen.SHOOTING, Screen.STILL_THERE, Screen.PLAYING, Screen.FINISH)
EVERY_BUTTON = frozenset(Action)
NO_BUTTON: frozenset[Action] = frozenset()


class Command(StrEnum):
    """Slow work the kiosk must do for the flow."""

    CAPTURE = "capture"
    PLAY = "play"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds of silence before each step (defaults suit five-year-olds and their parents)."""

    still_there: float = 90.0  # shooting, nobody pressed anything: ask
    give_up: float = 30.0  # after asking: finish the movie as NOPUBLISH
    finish_choice: float = 60.0  # the publish question unanswered: NOPUBLISH
    done: float = 45.0  # the code stays up this long
    help: float = 8.0  # the helper screen recovers by itself after this
    done_guard: float = 2.0  # the done screen ignores presses this long: a double press on
    # "publish" must not take the code away before anybody saw it


@dataclass(frozen=True, slots=True)
class View:
    """Everything the UI needs to draw the current screen."""

    screen: Screen
    frames: int
    limit: int
    onion: bool
    busy: bool
    code: str | None = None
    package_id: str | None = None
    seconds_left: float | None = None  # on "still there?" and other timed screens
    seconds_total: float | None = None  # the whole time that seconds_left counts down
    acts: frozenset[Action] = NO_BUTTON  # the buttons that do something now: lit
    publish: bool | None = None  # on the done screen: whether the movie goes to the website
    owner_key: str | None = None  # on the done screen of a published movie: the family's key


class Flow:
    """The kiosk's state; feed it actions and ticks, read `view()`."""

    def __init__(self, outbox: Path, station_id: str, frame_limit: int = 600,
                 timeouts: Timeouts | None = None, clock: Callable[[], float] | None = None,
                 fps: int = 10, events: Events | None = None) -> None:
        import time

        self.outbox = outbox
        self.station_id = station_id
        self.frame_limit = frame_limit
        self.timeouts = timeouts or Timeouts()
        self.clock = clock or time.monotonic
        self.fps = fps
        self.events = events or (lambda kind, package_id, detail: None)
        self.screen = Screen.ATTRACT
        self.writer: PackageWriter | None = None
        self.onion = True
        self.busy = False
        self.last_code: str | None = None
        self.last_package: str | None = None
        self.last_publish: bool | None = None
        # Shown once, in the done screen's QR code; never written (the MANIFEST has its hash).
        self.last_owner_key: str | None = None
        self.error = ""
        self.last_press: float | None = None  # the clock at the last button press
        self.holds: set[str] = set()  # "out-of-order", "identify", "restart": see hold
        self._held_at: float | None = None  # the clock when the first hold began
        self._since = self.clock()

    # --- start-up -------------------------------------------------------------------------

    def resume(self) -> bool:
        """After a crash: carry on with an unfinished movie, with every frame on disk."""
        self.outbox.mkdir(parents=True, exist_ok=True)
        for path in unfinished_packages(self.outbox):
            if not path.name.startswith(f"{self.station_id}-"):
                continue
            try:
                writer = PackageWriter.reopen(path)
            except Exception:  # a package we cannot reopen is left for an operator
                log.exception("cannot reopen %s", path.name)
                continue
            if writer.discard_if_empty():
                continue
            self.writer = writer
            self._go(Screen.SHOOTING)
            log.info("resumed an unfinished movie with %d frames", writer.frame_count,
                     extra={"package_id": writer.package_id})
            return True
        return False

    # --- what happens ---------------------------------------------------------------------

    @property
    def frames(self) -> int:
        """Frames captured so far in the current movie."""
        return self.writer.frame_count if self.writer else 0

    def _now(self) -> float:
        """The clock, standing still while the flow is held."""
        return self._held_at if self._held_at is not None else self.clock()

    def _go(self, screen: Screen) -> None:
        """Show screen from now on (from the held moment, while held)."""
        self.screen = screen
        self._since = self._now()

    # --- holds: out of order, identify --------------------------------------------------

    @property
    def out_of_order(self) -> bool:
        """Whether an operator took the kiosk out of order."""
        return "out-of-order" in self.holds

    @property
    def shown(self) -> Screen:
        """The screen to show: out of order over anything, else the flow's own."""
        return Screen.OUT_OF_ORDER if self.out_of_order else self.screen

    def shooting(self) -> bool:
        """Whether a child is at work on a movie (out of order, nobody can be)."""
        return (self.writer is not None and self.screen in SHOOTING_SCREENS
                and not self.out_of_order)

    def hold(self, reason: str) -> None:
        """Stand still for reason: buttons ignored, timeouts frozen, the movie kept."""
        if not self.holds:
            self._held_at = self.clock()
        self.holds.add(reason)

    def release(self, reason: str) -> None:
        """End one hold; with the last one, the clock runs on from where it stood."""
        self.holds.discard(reason)
        if not self.holds and self._held_at is not None:
            self._since += self.clock() - self._held_at
            self._held_at = None

    @property
    def out_of_order_flag(self) -> Path:
        """The file that keeps 'out of order' across restarts."""
        return self.outbox / OUT_OF_ORDER_FLAG

    def set_out_of_order(self, on: bool, by: str = "") -> None:
        """Take the kiosk out of order (kept on disk), or put it back in service."""
        flag = self.out_of_order_flag
        if on:
            self.outbox.mkdir(parents=True, exist_ok=True)
            write_atomic(flag, f"out of order since {format_utc(utc_now())} ({by})\n".encode())
            self.hold("out-of-order")
            log.info("out of order", extra={"by": by, "frames": self.frames})
        else:
            if flag.exists():
                unlink_durable(flag)
            self.release("out-of-order")
            log.info("back in service", extra={"by": by, "frames": self.frames})

    def recall_out_of_order(self) -> bool:
        """At start: out of order again if the flag file says so."""
        if self.out_of_order_flag.exists():
            self.hold("out-of-order")
            log.info("still out of order (%s)", self.out_of_order_flag)
            return True
        return False

    # --- what a child does ----------------------------------------------------------------

    def handle(self, action: Action) -> Command | None:
        """React to a button; return slow work for the kiosk, if any."""
        self.last_press = self.clock()
        if self.holds:  # out of order, identifying: no button does anything
            log.debug("button ignored while held: %s", ", ".join(sorted(self.holds)))
            return None
        try:
            return self._handle(action)
        except Exception as exc:
            self.fail(exc)
            return None

    def acts(self) -> frozenset[Action]:
        """The buttons that do something now (the screen lights exactly these)."""
        if self.holds:
            return NO_BUTTON
        screen = self.screen
        if screen in (Screen.ATTRACT, Screen.STILL_THERE, Screen.HELP):
            return EVERY_BUTTON  # any press starts, says "here!", or leaves the helper screen
        if screen is Screen.PLAYING:
            return frozenset((Action.GO, Action.PLAY))  # back to the camera
        if screen is Screen.FINISH:
            return frozenset((Action.GO, Action.UNDO))  # the two answers
        if screen is Screen.DONE:
            waited = self._now() - self._since >= self.timeouts.done_guard
            return frozenset((Action.GO,)) if waited else NO_BUTTON
        if screen is Screen.SHOOTING:
            if self.busy:  # a second press while capturing never captures twice
                return frozenset((Action.ONION,))
            acts = {Action.ONION, Action.FINISH}
            if self.frames < self.frame_limit:
                acts.add(Action.GO)
            if self.frames:
                acts |= {Action.UNDO, Action.PLAY}
            return frozenset(acts)
        return NO_BUTTON

    def _handle(self, action: Action) -> Command | None:
        """Do what action does on this screen, if it acts now (see `acts`)."""
        screen = self.screen
        acts = self.acts()
        if screen is not Screen.DONE:  # the done screen's time is the code's, not idle time
            self._since = self.clock()  # any press proves somebody is there
        if action not in acts:
            return None
        if screen is Screen.ATTRACT:
            self._start_movie()
        elif screen in (Screen.STILL_THERE, Screen.PLAYING):
            self._go(Screen.SHOOTING)  # somebody is there; the replay stops
        elif screen is Screen.SHOOTING:
            return self._shooting(action)
        elif screen is Screen.FINISH:
            self._finish(publish=action is Action.GO)
        elif screen in (Screen.DONE, Screen.HELP):
            self._go(Screen.ATTRACT)
        return None

    def _shooting(self, action: Action) -> Command | None:
        """A press while shooting (one that acts now: see `acts`)."""
        if action is Action.GO:
            self.busy = True
            return Command.CAPTURE
        if action is Action.UNDO and self.writer:
            self.writer.delete_last_frame()
        elif action is Action.ONION:
            self.onion = not self.onion
        elif action is Action.PLAY:
            self._go(Screen.PLAYING)
            return Command.PLAY
        elif action is Action.FINISH:
            if self.frames:
                self._go(Screen.FINISH)
            else:
                self._abandon()
        return None

    def captured(self, jpeg: bytes) -> int:
        """The camera delivered a frame: store it (atomically); return its index."""
        try:
            assert self.writer is not None
            index = self.writer.add_frame(jpeg)
            return index
        except Exception as exc:
            self.fail(exc)
            return -1
        finally:
            self.busy = False

    def playback_over(self) -> None:
        """The replay reached its end: back to where it was started."""
        if self.screen is Screen.PLAYING:
            self._go(Screen.SHOOTING)

    def tick(self) -> None:
        """Let time pass: the idle questions and the screens that time out (not while held)."""
        if self.holds:
            return
        try:
            self._tick()
        except Exception as exc:
            self.fail(exc)

    def _tick(self) -> None:
        idle = self.clock() - self._since
        t = self.timeouts
        if self.screen is Screen.SHOOTING and not self.busy and idle >= t.still_there:
            self._go(Screen.STILL_THERE)
        elif self.screen is Screen.STILL_THERE and idle >= t.give_up:
            log.info("nobody came back: finishing the movie without publishing it")
            self._finish(publish=False)
        elif self.screen is Screen.FINISH and idle >= t.finish_choice:
            self._finish(publish=False)
        elif self.screen is Screen.DONE and idle >= t.done:
            self._go(Screen.ATTRACT)
        elif self.screen is Screen.HELP and idle >= t.help:
            self._recover()

    def fail(self, exc: BaseException) -> None:
        """Something unexpected: log the details, show the helper screen."""
        self.busy = False
        self.error = f"{type(exc).__name__}: {exc}"
        log.error("the kiosk hit an error: %s", self.error, exc_info=exc,
                  extra={"package_id": self.writer.package_id if self.writer else None})
        self._go(Screen.HELP)

    def _recover(self) -> None:
        """Leave the helper screen: a movie in progress carries on, frames intact."""
        self.error = ""
        self.writer = None
        self._go(Screen.ATTRACT)
        self.resume()

    # --- movies ---------------------------------------------------------------------------

    def _start_movie(self) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        if self.writer is None and not self.resume():
            self.writer = PackageWriter.start(self.outbox, self.station_id)
            log.info("new movie", extra={"package_id": self.writer.package_id})
            self.events("shot_started", self.writer.package_id, "")
        self.onion = True
        self._go(Screen.SHOOTING)

    def _abandon(self) -> None:
        if self.writer is not None:
            self.writer.discard_if_empty()
        self.writer = None
        self._go(Screen.ATTRACT)

    def _finish(self, publish: bool) -> None:
        writer = self.writer
        if writer is None or not writer.frame_count:
            self._abandon()
            return
        key = new_owner_key() if publish else None
        writer.finish(None, publish=publish, fps=self.fps,
                      owner_key_sha256=key_hash(key) if key else None)
        self.last_owner_key = key
        self.last_package = writer.package_id
        self.last_code = movie_code(writer.package_id)
        self.last_publish = publish
        log.info("movie finished: %d frames, %s", writer.frame_count,
                 "PUBLISH" if publish else "NOPUBLISH", extra={"package_id": writer.package_id})
        self.events("shot_finished", writer.package_id, "PUBLISH" if publish else "NOPUBLISH")
        self.writer = None
        self._go(Screen.DONE)

    def frame_paths(self) -> list[Path]:
        """The current movie's frames, in order (for the replay)."""
        if self.writer is None:
            return []
        return [self.writer.path / f"{i:04d}.jpg" for i in range(self.writer.frame_count)]

    def view(self) -> View:
        """What to draw now."""
        left = None
        timeout = {Screen.STILL_THERE: self.timeouts.give_up,
                   Screen.FINISH: self.timeouts.finish_choice,
                   Screen.DONE: self.timeouts.done}.get(self.screen)
        if timeout is not None:
            left = min(timeout, max(0.0, timeout - (self._now() - self._since)))
        done = self.screen is Screen.DONE
        return View(screen=self.shown, frames=self.frames, limit=self.frame_limit,
                    onion=self.onion, busy=self.busy,
                    code=self.last_code if done and self.last_publish else None,
                    package_id=self.writer.package_id if self.writer else self.last_package,
                    seconds_left=left, seconds_total=timeout, acts=self.acts(),
                    publish=self.last_publish if done else None,
                    owner_key=self.last_owner_key if done and self.last_publish else None)
