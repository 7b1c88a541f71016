"""The kiosk's commands against a real Flow and a real Tk kiosk (fake camera), in process.

The kiosk's Tk loop runs on a thread of its own and the test thread plays the
reporter's: as in the program, every command hands its work to the Tk thread. (Tk on
a thread of its own also keeps each test's X connection apart: an in-process Tk on the
main thread dies when a later test's Xvfb replaces the one it knew.)
"""

from __future__ import annotations

import base64
import gc
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image

from moviepkg.commands import Command, CommandRunner, parse_result
from moviepkg.reader import read_package
from moviepkg.telemetry import State, parse_state
from moviepkg.times import utc_now
from stations.buttons import KeyboardButtons
from stations.camera import FakeCamera
from stations.commands import TEST_BYTES, KioskCommands, answered_file, small_jpeg
from stations.flow import Action, Flow, Screen, Timeouts
from stations.kiosk import Kiosk, run
from stations.render import IDENTIFY_COLOURS, Renderer, station_number
from stations.restart import RESTARTS, after_ready, kiosk_argv, reexec, restarts
from stations.telemetry import KioskReport
from tests.demo import demo_frame
from tests.services import XvfbDisplay, wait_until

T = TypeVar("T")
TIMEOUTS = Timeouts(still_there=90, give_up=30, finish_choice=60, done=45, help=8)


class Clock:
    """The flow's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """The time now."""
        return self.now


class Quiet:
    """A reporter that keeps the last state it was offered."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    def state(self, fields: dict[str, Any]) -> None:
        """Keep the offered state."""
        self.fields = dict(fields)

    def event(self, kind: str, package_id: str, detail: str = "") -> None:
        """Drop the event."""
        pass


@pytest.fixture(scope="module")
def display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XvfbDisplay]:
    """One X display for the module (each kiosk's Tk lives on a thread of its own)."""
    with XvfbDisplay(tmp_path_factory.mktemp("xvfb")) as server:
        yield server


class Station:
    """A real Kiosk on its own Tk thread, its command runner, and a clock for its flow."""

    def __init__(self, outbox: Path, clock: Clock, shots: Path | None = None,
                 identify_seconds: float = 0.6) -> None:
        self.clock = clock
        self.flow = Flow(outbox, "st-3", frame_limit=50, timeouts=TIMEOUTS, clock=clock)
        self.camera = FakeCamera(size=(640, 360), preview_size=(320, 180))
        self.commands = KioskCommands(identify_seconds=identify_seconds, restart_delay=0.2)
        self.runner = CommandRunner(self.commands.handlers(), answered_file(outbox, "kiosk"))
        self.reporter = Quiet()
        self.shots = shots
        self.kiosk: Kiosk | None = None
        self.restart_requested = False
        self.ended = threading.Event()  # run() returned
        self._built = threading.Event()
        self._quit = threading.Event()  # the test is done: close the window
        self._release = threading.Event()  # nobody else holds the kiosk: let it go
        self.thread = threading.Thread(target=self._run, daemon=True, name="tk")
        self.thread.start()
        assert self._built.wait(10), "the kiosk was not built"

    def _run(self) -> None:
        """The Tk thread: build and run the kiosk; let it go on this thread at the end."""

        def make(root: Any) -> Kiosk:
            """The kiosk in root, with a watch for the test's stop."""
            kiosk = Kiosk(root, self.flow, self.camera, KeyboardButtons(), size=(640, 400),
                          fullscreen=False, screenshots=self.shots,
                          report=KioskReport(self.reporter))  # type: ignore[arg-type]
            self.kiosk = kiosk
            self.commands.attach(kiosk)

            def watch() -> None:
                """Quit the loop once the test says so."""
                if self._quit.is_set():
                    root.quit()
                else:
                    root.after(20, watch)

            root.after(20, watch)
            self._built.set()
            return kiosk

        ended = run(make)
        self.commands.detach()
        self.restart_requested = ended.restart_requested
        self.ended.set()
        del ended
        self._release.wait()
        # Tk's objects must die on the thread that made them (else Tcl aborts the process).
        self.kiosk = None
        gc.collect()

    def on_tk(self, work: Callable[[], T]) -> T:
        """Run work on the Tk thread (the kiosk's own way in)."""
        assert self.kiosk is not None
        return self.kiosk.call(work)

    def send(self, name: str, command_id: str = "", **args: Any) -> dict[str, Any]:
        """Run one command as the reporter would; its answer as a dict."""
        now = datetime.now(UTC)
        command = Command(command_id or f"test-{name}-{time.monotonic_ns()}", name, "ana",
                          now, now + timedelta(minutes=1), args)
        answer = self.runner.handle(command.to_json())
        assert answer is not None
        result = parse_result(answer)
        return {"outcome": result.outcome, "detail": result.detail, "data": result.data}

    def press(self, action: Action) -> None:
        """A button, as the buttons post it."""
        assert self.kiosk is not None
        self.kiosk.post(action)

    def frames(self) -> int:
        """Frames of the movie in progress, read on the Tk thread."""
        return self.on_tk(lambda: self.flow.frames)

    def shoot(self, frames: int) -> None:
        """From the attract screen: start a movie and capture frames."""
        self.press(Action.GO)
        wait_until(lambda: self.on_tk(lambda: self.flow.screen) is Screen.SHOOTING, 5)
        for n in range(frames):
            self.press(Action.GO)
            wait_until(lambda n=n: self.on_tk(lambda: self.flow.frames == n + 1
                                              and not self.flow.busy), 5)

    def fields(self) -> dict[str, Any]:
        """The kiosk's telemetry state now (after a tick)."""
        self.on_tk(lambda: None)
        time.sleep(0.15)
        return self.on_tk(lambda: dict(self.reporter.fields))

    def stop(self) -> None:
        """Close the window (if the kiosk has not ended by itself) and let it go."""
        self._quit.set()
        self._release.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def station(display: XvfbDisplay, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
            ) -> Iterator[Station]:
    """A running kiosk on the module's display, stopped after the test."""
    monkeypatch.setenv("DISPLAY", display.display)
    made = Station(tmp_path / "outbox", Clock(), shots=tmp_path / "screens")
    yield made
    made.stop()


def test_identify_flashes_the_number_then_gives_the_child_back_their_movie(
        station: Station, tmp_path: Path) -> None:
    """identify: reported, drawn, buttons ignored; afterwards the movie carries on."""
    station.shoot(2)
    said = station.send("identify")
    assert said == {"outcome": "done", "data": {},
                    "detail": "st-3 shows its number, flashing, for 0.6 s"}
    fields = station.fields()
    assert fields["identify"] is True and fields["screen"] == "shooting"
    assert parse_state("kiosk", State("kiosk", utc_now(), fields).to_json()).fields == fields
    station.press(Action.GO)  # nobody sees the movie now: the press does nothing
    wait_until(lambda: (tmp_path / "screens" / "identify.png").exists(), 5)
    assert station.frames() == 2
    wait_until(lambda: station.fields()["identify"] is False, 5)
    assert station.on_tk(lambda: station.flow.view().screen) is Screen.SHOOTING
    station.press(Action.GO)
    wait_until(lambda: station.frames() == 3, 5)


def test_the_identify_picture_flashes_two_colours_with_the_number() -> None:
    """The identify picture swaps its two colours; the number is taken from the id."""
    renderer = Renderer((640, 400))
    first, second = renderer.identify("st-12", 0.1), renderer.identify("st-12", 0.35)
    assert {first.getpixel((320, 5)), second.getpixel((320, 5))} != {first.getpixel((320, 5))}
    assert first.getpixel((100, 100)) in IDENTIFY_COLOURS
    assert second.getpixel((100, 100)) in IDENTIFY_COLOURS
    assert first.getpixel((100, 100)) != second.getpixel((100, 100))
    assert [station_number(name) for name in ("st-12", "st-03", "kiosk")] == ["12", "3",
                                                                           "kiosk"]


def test_out_of_order_freezes_the_movie_and_survives_a_restart(
        station: Station, tmp_path: Path, display: XvfbDisplay) -> None:
    """Out of order: reported, flagged on disk, nothing finished; still on after a restart."""
    station.shoot(2)
    station.clock.now += 80  # 10 s before "still there?"
    said = station.send("out-of-order", on=True)
    assert said["outcome"] == "done", said
    assert said["detail"] == ("out of order: the kiosk shows a sleeping camera and ignores "
                              "its buttons; the movie in progress (2 frames) waits")
    fields = station.fields()
    assert fields["screen"] == "out_of_order" and fields["out_of_order"] is True
    assert parse_state("kiosk", State("kiosk", utc_now(), fields).to_json()).fields == fields
    flag = tmp_path / "outbox" / ".out-of-order"
    assert flag.is_file() and "(ana)" in flag.read_text()
    station.clock.now += 3600  # an hour out of order: nothing is asked, nothing finished
    station.press(Action.GO)
    station.press(Action.FINISH)
    wait_until(lambda: (tmp_path / "screens" / "out-of-order.png").exists(), 5)
    assert station.frames() == 2
    assert station.on_tk(lambda: station.flow.screen) is Screen.SHOOTING
    [package] = [p for p in (tmp_path / "outbox").iterdir() if not p.name.startswith(".")]
    assert not (package / "NOPUBLISH").exists() and not (package / "PUBLISH").exists()

    station.stop()  # a watchdog restart, say: still out of order afterwards
    again = Station(tmp_path / "outbox", Clock())
    try:
        fields = again.fields()
        assert fields["screen"] == "out_of_order" and fields["frames"] == 2
        said = again.send("out-of-order", on=False)
        assert said["detail"] == "back in service: the movie in progress (2 frames) carries on"
        assert not flag.exists() and again.fields()["screen"] == "shooting"
        again.press(Action.GO)
        wait_until(lambda: again.frames() == 3, 5)
        assert again.on_tk(lambda: again.flow.writer.package_id  # type: ignore[union-attr]
                           ) == package.name
    finally:
        again.stop()


def test_frozen_timers_carry_on_from_where_they_stood(station: Station) -> None:
    """The idle clock stands still while out of order, then runs on."""
    station.shoot(1)
    station.clock.now += 80
    station.send("out-of-order", on=True)
    station.clock.now += 1000
    station.send("out-of-order", on=False)
    station.clock.now += 5  # 85 s idle in all: not yet asked
    assert station.fields()["screen"] == "shooting"
    station.clock.now += 6  # 91 s
    wait_until(lambda: station.on_tk(lambda: station.flow.screen) is Screen.STILL_THERE, 5)


def test_restart_is_refused_while_a_child_shoots_and_a_forced_one_comes_back(
        station: Station, tmp_path: Path) -> None:
    """Refused in words while shooting; forced, the loop ends and the movie comes back."""
    station.shoot(3)
    station.clock.now += 8
    refused = station.send("restart-kiosk")
    assert refused == {"outcome": "refused", "data": {}, "detail": (
        "a child is shooting a movie (3 frames, last press 8 s ago); send it again with "
        "force to restart anyway")}
    assert station.thread.is_alive()
    forced = station.send("restart-kiosk", command_id="restart-forced-01", force=True)
    assert forced["outcome"] == "done"
    assert forced["detail"].startswith("restarting; the movie in progress (3 frames) comes "
                                       "back (forced: a child is shooting")
    assert station.ended.wait(5)  # the loop ends by itself, about restart_delay later
    assert station.restart_requested
    package_id = station.flow.writer.package_id  # type: ignore[union-attr]

    again = Station(tmp_path / "outbox", Clock())  # what the fresh program does
    try:
        assert again.frames() == 3
        assert again.on_tk(lambda: again.flow.screen) is Screen.SHOOTING
        assert again.on_tk(lambda: again.flow.writer.package_id  # type: ignore[union-attr]
                           ) == package_id
        replay = again.send("restart-kiosk", command_id="restart-forced-01", force=True)
        assert replay == forced  # answered from the file, not run again
        time.sleep(0.4)
        assert not again.ended.is_set()
        again.press(Action.FINISH)
        wait_until(lambda: again.on_tk(lambda: again.flow.screen) is Screen.FINISH, 5)
        again.press(Action.GO)
        wait_until(lambda: again.on_tk(lambda: again.flow.screen) is Screen.DONE, 5)
        assert len(read_package(tmp_path / "outbox" / package_id).frames) == 3
        idle = again.send("restart-kiosk")  # nobody shooting: no force needed
        assert idle == {"outcome": "done", "data": {},
                        "detail": "restarting; no movie was in progress"}
        assert again.ended.wait(5) and again.restart_requested
    finally:
        again.stop()


def test_capture_is_real_when_the_camera_is_free_and_the_preview_while_shooting(
        station: Station) -> None:
    """A real capture when free; the preview while a child shoots (no capture taken)."""
    said = station.send("test-capture")
    assert said["outcome"] == "done", said
    assert said["detail"].startswith("a real capture (640x360), sent as 320x180, ")
    assert station.camera.captures == 1
    picture = Image.open(io.BytesIO(base64.b64decode(said["data"]["jpeg"])))
    assert picture.format == "JPEG" and picture.size == (320, 180)
    assert (said["data"]["width"], said["data"]["height"]) == (320, 180)
    station.shoot(2)
    shooting = station.send("test-capture")
    assert shooting["detail"].startswith("the live preview, 320x180 (a child is shooting: "
                                         "their camera is left alone)")
    assert station.camera.captures == 3  # the child's two; the test took none
    Image.open(io.BytesIO(base64.b64decode(shooting["data"]["jpeg"]))).verify()


def test_a_test_capture_of_a_busy_picture_stays_small() -> None:
    """Even noise fits the size budget."""
    noise = Image.effect_noise((1920, 1080), 120).convert("RGB")
    data, size = small_jpeg(noise)
    assert size == (320, 180) and len(data) <= TEST_BYTES
    assert len(base64.b64encode(data)) < 40 * 1024  # the result stays far below 64 KiB


def test_a_kiosk_that_does_not_answer_fails_in_words_and_never_runs_it_late(
        station: Station) -> None:
    """A stuck loop: the command fails in words and its work is dropped."""
    assert station.kiosk is not None
    station.kiosk.answer_seconds = 0.3
    station.kiosk.inbox.put(("call", (lambda: time.sleep(1.0), _future())))  # a stuck loop
    said = station.send("identify")
    assert said["outcome"] == "failed"
    assert said["detail"] == ("KioskNotAnswering: the kiosk did not answer within 0.3 s (it "
                              "is starting up, or its screen loop is stuck)")
    time.sleep(1.2)
    assert station.on_tk(lambda: station.kiosk.identifying) is False  # type: ignore[union-attr]


def _future() -> Any:
    """A fresh Future (for a call posted by hand)."""
    from concurrent.futures import Future

    return Future()


def test_commands_before_the_kiosk_runs_are_refused(tmp_path: Path) -> None:
    """No kiosk yet: refused, and the answered ids live in the outbox's .commands/."""
    commands = KioskCommands()
    runner = CommandRunner(commands.handlers(), answered_file(tmp_path, "kiosk"))
    now = datetime.now(UTC)
    answer = runner.handle(Command("early-0001", "identify", "ana", now,
                                   now + timedelta(minutes=1)).to_json())
    assert answer is not None and parse_result(answer).outcome == "refused"
    assert "the kiosk is not running" in parse_result(answer).detail
    assert answered_file(tmp_path, "kiosk") == tmp_path / ".commands" / "kiosk.json"


def test_the_restart_command_line_and_systemd(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """The command line of a restart, and what systemd is told before and after."""
    import socket

    assert kiosk_argv(None, False, python="/venv/bin/python") == [
        "/venv/bin/python", "-P", "-m", "stations"]
    assert kiosk_argv(Path("/etc/stopmo/station.toml"), True, python="py") == [
        "py", "-P", "-m", "stations", "--config", "/etc/stopmo/station.toml", "--debug"]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv(RESTARTS, raising=False)
    called: list[tuple[str, list[str], dict[str, str]]] = []
    with pytest.raises(SystemExit):
        reexec(["/venv/bin/python", "-m", "stations"],
               execve=lambda path, argv, env: called.append((path, argv, env)))
    [(path, argv, env)] = called
    assert path == "/venv/bin/python" and argv == ["/venv/bin/python", "-m", "stations"]
    assert restarts(env) == 1 and env["WATCHDOG_USEC"] == "20000000"
    stretched = listener.recv(200).decode()
    assert "WATCHDOG_USEC=120000000" in stretched  # room for the fresh start
    after_ready({"WATCHDOG_USEC": "20000000"})  # a first start: nothing to set back
    after_ready({**os.environ, RESTARTS: "1"})
    assert listener.recv(200).decode().startswith("WATCHDOG_USEC=20000000")
    listener.close()


def test_an_error_while_out_of_order_waits_behind_the_picture(tmp_path: Path) -> None:
    """A capture that fails while out of order: the helper screen comes after, not over."""
    clock = Clock()
    flow = Flow(tmp_path / "outbox", "st-3", timeouts=TIMEOUTS, clock=clock)
    flow.handle(Action.GO)
    flow.handle(Action.GO)
    flow.captured(demo_frame(0, 2, 64, 48))
    flow.handle(Action.GO)  # a capture in flight...
    flow.set_out_of_order(True, by="ana")
    flow.fail(OSError("the camera is gone"))  # ...fails meanwhile
    assert flow.shown is Screen.OUT_OF_ORDER and flow.view().screen is Screen.OUT_OF_ORDER
    clock.now += 60
    flow.tick()
    assert flow.screen is Screen.HELP  # not recovered while held
    flow.set_out_of_order(False, by="ana")
    assert flow.view().screen is Screen.HELP
    clock.now += TIMEOUTS.help
    flow.tick()
    assert flow.screen is Screen.SHOOTING and flow.frames == 1  # the movie carries on
