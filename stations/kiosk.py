"""The kiosk: the Tk window that shows the rendered screens, turns keys into actions, runs.

All Tk work happens on this thread. Buttons post actions on a queue that `after()`
drains; the camera captures on a worker thread and posts the frame back the same
way. One PhotoImage is reused for every picture (pasting into it is fast; making
a new one per frame is not). Each tick offers the kiosk's state to telemetry, which
only compares it in memory: the loop never waits on MQTT.

Commands from the console arrive on the reporter's thread; they hand their work to
this thread with `call` (through the same queue) and wait for its answer.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
import tkinter as tk
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image, ImageTk

from moviepkg.commands import CommandRunner
from moviepkg.notify import sd_notify

from .buttons import Buttons, KeyboardButtons
from .camera import Camera
from .commands import KioskCommands, answered_file
from .config import StationError, StationSettings, website_url_problem
from .factory import make_buttons, make_camera, make_flow
from .flow import Action, Command, Flow, Screen
from .render import Renderer
from .restart import after_ready
from .telemetry import KioskReport, station_reporter
from .thumbs import Thumbnails

log = logging.getLogger("stopmo.station.ui")
LIVE_FPS = 15  # the live view; the replay runs at the movie's fps (kiosk.fps)
ANSWER_SECONDS = 5.0  # how long a command waits for the Tk loop to do its part
CAPTURE_GRACE_SECONDS = 5.0  # a restart waits this long at most for a capture in flight
T = TypeVar("T")


class KioskNotAnswering(StationError):
    """The Tk loop did not take a command's work in time (starting up, or stuck)."""


# Screens that show the movie: the replay, and the loop on the question and done screens.
MOVIE_SCREENS = (Screen.PLAYING, Screen.FINISH, Screen.DONE)


def tick_period(screen: Screen, fps: int) -> float:
    """Seconds between ticks: the movie's own fps (kiosk.fps) where the movie shows, else
    the live view's."""
    return 1 / (fps if screen in MOVIE_SCREENS else LIVE_FPS)


def loop_index(seconds: float, fps: int, frames: int) -> int:
    """The frame a movie looping at fps since `seconds` ago shows now."""
    return int(max(0.0, seconds) * fps) % frames if frames else 0


class Kiosk:
    """The station's window and its loop."""

    def __init__(self, root: tk.Tk, flow: Flow, camera: Camera, buttons: Buttons,
                 website_url: str = "", size: tuple[int, int] | None = None,
                 fullscreen: bool = True, screenshots: Path | None = None,
                 report: KioskReport | None = None, language: str = "he") -> None:
        self.root, self.flow = root, flow
        self.camera, self.buttons = camera, buttons  # the devices: real or fake, from config
        self.screenshots = screenshots
        self.report = report
        if fullscreen:
            root.attributes("-fullscreen", True)
        root.configure(background="black", cursor="none")
        root.title("stopmo")
        width, height = size or (root.winfo_screenwidth(), root.winfo_screenheight())
        root.geometry(f"{width}x{height}+0+0")
        self.renderer = Renderer((width, height), website_url, language)
        self.photo = ImageTk.PhotoImage(Image.new("RGB", (width, height)))
        self.label = tk.Label(root, image=self.photo, borderwidth=0, highlightthickness=0)
        self.label.pack(fill="both", expand=True)
        self.thumbs = Thumbnails(limit=max(flow.frame_limit, 1))
        self.inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.answer_seconds = ANSWER_SECONDS
        self.camera_lock = threading.Lock()  # one capture at a time: a child's or a test's
        self.identify_until: float | None = None  # time.monotonic() when "identify" ends
        self.restart_requested = False  # the loop ended for a restart (see `restart`)
        self.stop_asked = threading.Event()  # SIGTERM came (see `run`): no restart then
        self._restart_at: float | None = None
        self._playing: list[Path] = []
        self._play_index = 0
        self._last_screen: Screen | None = None
        self._screen_since = 0.0  # time.monotonic() when the screen last changed (the loop)
        self._last_live = 0.0
        self._last_notify = 0.0
        self._due = 0.0
        self._shown: set[str] = set()
        self.frames_drawn = 0
        buttons.start(self.post)
        if isinstance(buttons, KeyboardButtons):
            root.bind("<KeyPress>", lambda event: buttons.key(event.keysym))

    def post(self, action: Action) -> None:
        """Any thread: a button was pressed."""
        self.inbox.put(("action", action))

    def call(self, work: Callable[[], T], timeout: float | None = None) -> T:
        """Any thread: run work on the Tk thread; return its result or raise its error.

        KioskNotAnswering if the loop has not taken it within timeout (answer_seconds by
        default); it then never runs.
        """
        timeout = self.answer_seconds if timeout is None else timeout
        future: Future[T] = Future()
        self.inbox.put(("call", (work, future)))
        late = KioskNotAnswering(f"the kiosk did not answer within {timeout:g} s (it is "
                                 "starting up, or its screen loop is stuck)")
        try:
            return future.result(timeout)
        except TimeoutError:
            if not future.done() and future.cancel():
                raise late from None  # cancelled: the loop will skip it
        try:  # done just now, or begun: its own outcome (it may hold something, e.g. a lock)
            return future.result(timeout)
        except TimeoutError:
            if future.done():
                raise  # the work's own error
            raise late from None

    def identify(self, seconds: float) -> None:
        """Tk thread: show the station's number, flashing, for seconds; the flow waits."""
        self.identify_until = time.monotonic() + seconds
        self.flow.hold("identify")

    @property
    def identifying(self) -> bool:
        """Whether the kiosk is showing its number."""
        return self.identify_until is not None

    def restart(self, delay: float) -> None:
        """Tk thread: end the loop for a restart after delay (the answer goes out first)."""
        self.flow.hold("restart")  # no press starts anything now
        self._restart_at = time.monotonic() + delay

    def start(self) -> None:
        """Resume a movie cut off by a crash (or a restart), draw, and start the loop."""
        if self.flow.resume():
            self.thumbs.rebuild(self.flow.frame_paths())
            self.camera.lock()
        self.flow.recall_out_of_order()
        self._tick()
        sd_notify("READY=1")
        after_ready()

    # --- the loop -------------------------------------------------------------------------

    def _tick(self) -> None:
        started = time.monotonic()
        try:
            self._drain()
            self._timers()
            self.flow.tick()
            self._follow_screen()
            self._draw()
            now = time.monotonic()
            if now - self._last_notify > 2:  # a frozen loop stops these: systemd restarts us
                sd_notify("WATCHDOG=1")
                self._last_notify = now
        except Exception as exc:  # never let the window die: the helper screen instead
            self.flow.fail(exc)
        self._report()
        # Keep a steady beat: the next tick is due one period after the last one was due,
        # not one period after this one's work ended (that would run slow by the work time).
        period = self.period()
        due = self._due + period if self._due else started + period
        now = time.monotonic()
        if due < now - period:  # far behind (a slow moment): do not try to catch up
            due = now
        self._due = due
        self.root.after(max(1, round((due - now) * 1000)), self._tick)

    def _report(self) -> None:
        if self.report is None:
            return
        try:
            self.report.tick(self.flow)
        except Exception:  # telemetry is never a reason for the helper screen
            log.exception("telemetry: could not build the kiosk's state")
            self.report = None

    def _timers(self) -> None:
        """End "identify" when its time is up; end the loop when a restart is due."""
        now = time.monotonic()
        if self.identify_until is not None and now >= self.identify_until:
            self.identify_until = None
            self.flow.release("identify")
        due = self._restart_at
        if due is not None and now >= due and (not self.flow.busy
                                                or now >= due + CAPTURE_GRACE_SECONDS):
            self._restart_at = None
            self.restart_requested = True
            log.info("the kiosk restarts (a command from the console)",
                     extra={"frames": self.flow.frames})
            self.root.quit()

    def period(self) -> float:
        """Seconds between ticks now."""
        return tick_period(self.flow.screen, self.flow.fps)

    def _drain(self) -> None:
        while True:
            try:
                kind, item = self.inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "action":
                self._act(item)
            elif kind == "frame":
                if self.report is not None:
                    self.report.captured()
                index = self.flow.captured(item)
                if index >= 0:
                    self.thumbs.add(index, item)
            elif kind == "camera-failed":
                if self.report is not None:
                    self.report.camera_failed()
                self.flow.busy = False
                self.flow.fail(item)
            elif kind == "call":
                work, future = item
                if future.set_running_or_notify_cancel():  # False: its caller gave up
                    try:
                        future.set_result(work())
                    except BaseException as exc:  # the caller reads it; the loop goes on
                        future.set_exception(exc)

    def _act(self, action: Action) -> None:
        before = self.flow.frames
        command = self.flow.handle(action)
        if self.flow.frames < before:  # the last frame was deleted
            self.thumbs.drop(before - 1)
        if command is Command.CAPTURE:
            threading.Thread(target=self._capture, name="capture", daemon=True).start()
        elif command is Command.PLAY:
            self._playing = self.flow.frame_paths()
            self._play_index = 0

    def _capture(self) -> None:
        try:
            with self.camera_lock:
                jpeg = self.camera.capture()
            self.inbox.put(("frame", jpeg))
        except Exception as exc:
            self.inbox.put(("camera-failed", exc))

    def _follow_screen(self) -> None:
        """Lock the camera for a movie; forget its thumbnails once the done screen is over
        (it plays the movie too)."""
        screen = self.flow.screen
        if screen is self._last_screen:
            return
        self._screen_since = time.monotonic()
        if self._last_screen in (None, Screen.ATTRACT) and screen is Screen.SHOOTING:
            self.thumbs.clear()
            self.thumbs.rebuild(self.flow.frame_paths())
            self.camera.lock()
        if screen in (Screen.DONE, Screen.ATTRACT) and self._last_screen not in (
                None, Screen.DONE, Screen.ATTRACT):
            self.camera.unlock()
        if screen is Screen.ATTRACT and self._last_screen is not None:
            self.thumbs.clear()
        self._last_screen = screen

    def _played_frame(self) -> Image.Image | None:
        if self._play_index >= len(self._playing):
            self.flow.playback_over()
            return None
        image = self.thumbs.get(self._play_index)
        if image is None:  # not kept (a resumed movie): decode it now
            image = self.thumbs.add(self._play_index, self._playing[self._play_index].read_bytes())
        self._play_index += 1
        return image

    def _looped_frame(self) -> Image.Image | None:
        """The movie looping at kiosk.fps from the in-memory thumbnails (question, done)."""
        count = len(self.thumbs)
        if not count:
            return None
        index = loop_index(time.monotonic() - self._screen_since, self.flow.fps, count)
        image = self.thumbs.get(index)
        paths = self.flow.frame_paths()
        if image is None and index < len(paths):  # not kept (a resumed movie): decode it now
            image = self.thumbs.add(index, paths[index].read_bytes())
        return image

    def _picture(self) -> tuple[str, Image.Image]:
        """The screen's name and its picture now."""
        if self.identifying:
            return "identify", self.renderer.identify(self.flow.station_id, time.monotonic())
        view = self.flow.view()
        live = played = position = None
        if view.screen is Screen.SHOOTING:
            live = self.camera.preview()
        elif view.screen is Screen.PLAYING:
            played = self._played_frame()
            position = (self._play_index - 1, len(self._playing))
            if played is None:
                view = self.flow.view()
                live = self.camera.preview() if view.screen is Screen.SHOOTING else None
        elif view.screen in (Screen.FINISH, Screen.DONE):
            played = self._looped_frame()
        picture = self.renderer.draw(view, time.monotonic(), live=live, onion=self.thumbs.last,
                                     played=played, position=position)
        return view.screen.value, picture

    def _draw(self) -> None:
        """Show the picture of now (and save the first of each screen when asked)."""
        name, picture = self._picture()
        self.photo.paste(picture)
        self.frames_drawn += 1
        if self.screenshots is not None and name not in self._shown:
            self._shown.add(name)
            self.screenshots.mkdir(parents=True, exist_ok=True)
            picture.save(self.screenshots / f"{name}.png")

    def close(self) -> None:
        """Release the camera and the buttons."""
        self.buttons.close()
        self.camera.close()


def run(make: Callable[[tk.Tk], Kiosk]) -> Kiosk:
    """Open the window, build the kiosk in it, and run until the window closes (or the
    kiosk ends its loop for a restart); return the kiosk, its devices closed."""
    root = tk.Tk()
    asked = threading.Event()

    def stop(signum: int, frame: object) -> None:
        asked.set()  # whenever it comes, even after the loop: then no restart (run_kiosk)
        # Through the loop's own queue: a quit() before mainloop() starts would be lost
        # (mainloop clears the flag), and a stop that comes that early must still stop.
        with contextlib.suppress(tk.TclError):
            root.after(0, root.quit)

    if threading.current_thread() is threading.main_thread():
        # systemd's stop ends the loop, so whatever follows it (telemetry's "offline") runs.
        signal.signal(signal.SIGTERM, stop)
        # A stop that came while a restart started this kiosk waited, blocked (run_kiosk):
        # it arrives now, and this kiosk stops at once.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    kiosk = make(root)
    kiosk.stop_asked = asked
    kiosk.start()
    try:
        root.mainloop()
    finally:
        kiosk.close()
        with contextlib.suppress(tk.TclError):  # closed by its window manager already
            root.destroy()
    return kiosk


def run_kiosk(settings: StationSettings) -> bool:
    """Open the window and run until it is closed (systemd restarts it if it freezes);
    tell whether a command asked for a restart (the caller starts the kiosk again)."""
    camera = make_camera(settings)
    buttons = make_buttons(settings)
    commands = KioskCommands()
    runner = CommandRunner(commands.handlers(), answered_file(settings.paths.outbox, "kiosk"))
    reporter = station_reporter(settings, "kiosk", commands=runner.handle)
    # A festival station whose QR codes cannot open at home says so once, loudly: in the
    # log, and in its state on the operators' console for as long as it runs.
    problem = website_url_problem(settings)
    if problem:
        log.error(problem, extra={"website_url": settings.kiosk.website_url})

    def make(root: tk.Tk) -> Kiosk:
        """The kiosk in root, reachable by the commands."""
        size = None if settings.kiosk.fullscreen else settings.kiosk.window_size
        kiosk = Kiosk(root, make_flow(settings, events=reporter.event), camera, buttons,
                      settings.kiosk.website_url, size=size,
                      fullscreen=settings.kiosk.fullscreen,
                      report=KioskReport(reporter, website_url_problem=problem),
                      language=settings.kiosk.language)
        commands.attach(kiosk)
        return kiosk

    log.info("kiosk starting", extra={"camera": settings.camera.kind,
                                      "buttons": settings.buttons.kind})
    try:
        kiosk = run(make)
    finally:
        commands.detach()
        reporter.stop()  # says offline, after any answer still on its way
    if kiosk.restart_requested and threading.current_thread() is threading.main_thread():
        # From here a stop waits, blocked, for the kiosk this process becomes (the signal
        # mask and a pending signal outlive execve), which then stops at once; one that
        # came before means no restart at all.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    return kiosk.restart_requested and not kiosk.stop_asked.is_set()
