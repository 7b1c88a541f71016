"""The real Tk kiosk under Xvfb, driven through whole movies by GPIO (MockFactory) and keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tkinter as tk
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from moviepkg.owner import key_matches
from moviepkg.reader import read_package
from stations.art import INK
from stations.buttons import DEFAULT_PINS, GpioButtons, KeyboardButtons
from stations.camera import FakeCamera
from stations.flow import Action, Flow, Screen, Timeouts
from stations.kiosk import Kiosk
from stations.render import Renderer
from tests.services import XvfbDisplay, require_binary

pytestmark = pytest.mark.slow  # the Tk kiosk under Xvfb

ARTIFACTS = Path(os.environ.get("STOPMO_SCREENSHOTS", "/tmp/stopmo-station-screens"))


@pytest.fixture(scope="module")
def xvfb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XvfbDisplay]:
    """One X display for the module: Tk in this process keeps its connection to the first
    display it opened, and dies if a later test's Xvfb takes that display's place."""
    with XvfbDisplay(tmp_path_factory.mktemp("xvfb")) as server:
        yield server


@pytest.fixture
def display(xvfb: XvfbDisplay, monkeypatch: pytest.MonkeyPatch) -> XvfbDisplay:
    monkeypatch.setenv("DISPLAY", xvfb.display)
    return xvfb


@pytest.fixture
def root(display: XvfbDisplay) -> Iterator[tk.Tk]:
    window = tk.Tk()
    yield window
    window.destroy()


def pump(root: tk.Tk, until: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        root.update()
        if until():
            return
        time.sleep(0.01)
    raise TimeoutError("the kiosk did not get there")


def test_a_movie_by_gpio_buttons(root: tk.Tk, tmp_path: Path, display: XvfbDisplay) -> None:
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    try:
        flow = Flow(tmp_path / "outbox", "st-4", frame_limit=20)
        kiosk = Kiosk(root, flow, FakeCamera(size=(640, 360), preview_size=(320, 180)),
                      GpioButtons(DEFAULT_PINS, pin_factory=factory), "https://movies.test",
                      size=(1024, 640), fullscreen=False, screenshots=tmp_path / "screens")
        kiosk.start()
        shots = ARTIFACTS / "gpio"
        shots.mkdir(parents=True, exist_ok=True)

        def press(action: Action) -> None:
            pin = factory.pin(DEFAULT_PINS[action])
            pin.drive_low()
            time.sleep(0.08)
            pin.drive_high()
            time.sleep(0.08)

        def shot(name: str) -> None:
            for _ in range(5):
                root.update()
                time.sleep(0.02)
            display.screenshot(shots / f"{name}.png")

        pump(root, lambda: kiosk.frames_drawn > 2)
        shot("1-attract")
        press(Action.GO)
        pump(root, lambda: flow.screen is Screen.SHOOTING)
        for n in range(4):
            press(Action.GO)
            pump(root, lambda n=n: flow.frames == n + 1 and not flow.busy)
        shot("2-shooting")
        press(Action.UNDO)
        pump(root, lambda: flow.frames == 3)
        press(Action.PLAY)
        pump(root, lambda: flow.screen is Screen.PLAYING)
        assert kiosk.period() == pytest.approx(1 / flow.fps)  # the replay's pace: kiosk.fps
        shot("3-playing")
        pump(root, lambda: flow.screen is Screen.SHOOTING, timeout=5)
        press(Action.FINISH)
        pump(root, lambda: flow.screen is Screen.FINISH)
        shot("4-finish")
        press(Action.GO)
        pump(root, lambda: flow.screen is Screen.DONE)
        shot("5-done")
        package = read_package(tmp_path / "outbox" / str(flow.last_package))
        assert package.publish and len(package.frames) == 3
        assert {p.stem for p in (tmp_path / "screens").glob("*.png")} >= {
            "attract", "shooting", "playing", "finish", "done"}
        kiosk.close()
    finally:
        factory.reset()


def test_a_movie_by_keys_with_xdotool(tmp_path: Path, display: XvfbDisplay) -> None:
    xdotool = require_binary("xdotool")
    script = tmp_path / "kiosk.py"
    script.write_text(f"""
import tkinter as tk
from dataclasses import replace
from pathlib import Path
from stations.buttons import KeyboardButtons
from stations.camera import FakeCamera
from stations.flow import Flow
from stations.kiosk import Kiosk, run
run(lambda root: Kiosk(root, Flow(Path({str(tmp_path / 'outbox')!r}), "st-5", frame_limit=50),
                       FakeCamera(size=(640, 360), preview_size=(320, 180)), KeyboardButtons(),
                       "https://movies.test", size=(1024, 640), fullscreen=False,
                       screenshots=Path({str(tmp_path / 'screens')!r})))
""")
    import sys

    proc = subprocess.Popen([sys.executable, str(script)], env={**os.environ})
    try:
        def key(name: str, wait: float = 0.3) -> None:
            subprocess.run([xdotool, "search", "--sync", "--name", "stopmo", "windowfocus",
                            "--sync", "key", name], check=True, timeout=10,
                           env={**os.environ, "DISPLAY": display.display})
            time.sleep(wait)

        key("space", 1.0)  # attract -> shooting
        for _ in range(3):
            key("space", 0.6)
        key("BackSpace")
        key("f")
        key("space", 1.0)  # publish
        outbox = tmp_path / "outbox"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list(outbox.glob("*/PUBLISH")):
            time.sleep(0.1)
        [flag] = list(outbox.glob("*/PUBLISH"))
        assert len(read_package(flag.parent).frames) == 2
        shots = ARTIFACTS / "keys"
        shutil.copytree(tmp_path / "screens", shots, dirs_exist_ok=True)
        assert {"attract", "shooting", "finish", "done"} <= {p.stem for p in shots.glob("*.png")}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    _ = KeyboardButtons


STOPS = {
    # systemd (or a test) stops the kiosk the moment it reports itself up, which can be
    # before Tk's loop has started: the stop must not be lost.
    "before-the-loop": ("", "os.kill(os.getpid(), signal.SIGTERM)", ""),
    # A stop that came while a restart was starting this process waited, blocked and
    # pending across execve (run_kiosk): the new kiosk takes it and stops at once.
    "pending-from-a-restart": ("signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
                               "os.kill(os.getpid(), signal.SIGTERM)", "", ""),
    # A stop while the kiosk closes (its loop over, for a restart): no restart then.
    "after-the-loop": ("", "root.after(300, root.quit)",
                       "os.kill(os.getpid(), signal.SIGTERM)"),
}


@pytest.mark.parametrize("when", list(STOPS))
def test_a_stop_is_never_lost(tmp_path: Path, display: XvfbDisplay, when: str) -> None:
    import signal
    import sys

    before, in_make, in_close = STOPS[when]
    script = tmp_path / "kiosk.py"
    script.write_text(f"""
import os, signal
from pathlib import Path
from stations.buttons import KeyboardButtons
from stations.camera import FakeCamera
from stations.flow import Flow
from stations.kiosk import Kiosk, run

class Closing(Kiosk):
    def close(self):
        {in_close or "pass"}
        super().close()

def make(root):
    kiosk = Closing(root, Flow(Path({str(tmp_path / 'outbox')!r}), "st-7"),
                    FakeCamera(size=(640, 360), preview_size=(320, 180)), KeyboardButtons(),
                    size=(800, 500), fullscreen=False)
    {in_make or "pass"}
    return kiosk

{before}
kiosk = run(make)
print("stopped", kiosk.stop_asked.is_set())
""")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert (proc.returncode, out.strip()) == (0, "stopped True")


def test_kill_9_mid_movie_then_resume(tmp_path: Path, display: XvfbDisplay) -> None:
    import hashlib
    import signal
    import sys

    xdotool = require_binary("xdotool")
    outbox = tmp_path / "outbox"
    script = tmp_path / "kiosk.py"
    script.write_text(f"""
from dataclasses import replace
from pathlib import Path
from stations.buttons import KeyboardButtons
from stations.camera import FakeCamera
from stations.flow import Flow
from stations.kiosk import Kiosk, run
run(lambda root: Kiosk(root, Flow(Path({str(outbox)!r}), "st-6"),
                       FakeCamera(size=(640, 360), preview_size=(320, 180)), KeyboardButtons(),
                       size=(800, 500), fullscreen=False))
""")

    def key(name: str) -> None:
        subprocess.run([xdotool, "search", "--sync", "--name", "stopmo", "windowfocus",
                        "--sync", "key", name], check=True, timeout=10,
                       env={**os.environ, "DISPLAY": display.display})

    def frames() -> list[Path]:
        return sorted(outbox.glob("*/[0-9][0-9][0-9][0-9].jpg"))

    def wait_for(check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not check():
            time.sleep(0.05)
        assert check()

    first = subprocess.Popen([sys.executable, str(script)])
    try:
        key("space")  # attract -> shooting
        for n in range(4):
            key("space")
            wait_for(lambda n=n: len(frames()) == n + 1)
        time.sleep(0.3)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in frames()}
    assert len(before) == 4
    second = subprocess.Popen([sys.executable, str(script)])
    try:
        time.sleep(1.5)  # it opens straight into the movie it was shooting
        key("space")
        wait_for(lambda: len(frames()) == 5)
        key("f")
        time.sleep(0.5)
        key("space")
        wait_for(lambda: bool(list(outbox.glob("*/PUBLISH"))))
    finally:
        second.terminate()
        second.wait(timeout=10)
    [package_dir] = [p for p in outbox.iterdir() if p.is_dir()]
    package = read_package(package_dir)
    assert len(package.frames) == 5
    for name, digest in before.items():
        assert hashlib.sha256((package_dir / name).read_bytes()).hexdigest() == digest


def test_the_kiosk_command(tmp_path: Path, display: XvfbDisplay) -> None:
    import sys

    xdotool = require_binary("xdotool")
    env = {**os.environ, "STOPMO_STATION_ID": "st-7", "STOPMO_OUTBOX": str(tmp_path / "out"),
           "STOPMO_CAMERA": "fake", "STOPMO_BUTTONS": "keyboard", "STOPMO_FULLSCREEN": "no",
           "STOPMO_CAPTURE_SIZE": "640x360"}
    bad = subprocess.run([sys.executable, "-m", "stations"], capture_output=True, text=True,
                         env={**env, "STOPMO_CAMERA": "webcam"}, timeout=30)
    assert bad.returncode == 3
    assert bad.stderr.strip() == "STOPMO_CAMERA: expected one of picamera2, fake, found 'webcam'"
    proc = subprocess.Popen([sys.executable, "-m", "stations"], env=env)
    try:
        found = subprocess.run([xdotool, "search", "--sync", "--name", "stopmo"],
                               capture_output=True, text=True, timeout=20, env=env)
        assert found.returncode == 0 and found.stdout.strip()
        for name in ("space", "space"):
            subprocess.run([xdotool, "search", "--sync", "--name", "stopmo", "windowfocus",
                            "--sync", "key", name], check=True, timeout=10, env=env)
            time.sleep(0.8)
        assert len(list((tmp_path / "out").glob("st-7-*/0000.jpg"))) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("fps", [5, 12])
def test_the_replay_runs_at_kiosk_fps(tmp_path: Path, fps: int) -> None:
    from stations.config import KioskSettings, StationSettings
    from stations.factory import make_flow
    from stations.kiosk import LIVE_FPS, tick_period

    settings = StationSettings(station_id="st-2", kiosk=KioskSettings(fps=fps))
    flow = make_flow(replace(settings, paths=replace(settings.paths, outbox=tmp_path)))
    assert flow.fps == fps
    assert tick_period(Screen.PLAYING, flow.fps) == pytest.approx(1 / fps)
    assert tick_period(Screen.SHOOTING, flow.fps) == pytest.approx(1 / LIVE_FPS)


def test_the_headless_demo_never_imports_tkinter() -> None:
    import sys

    probe = ("import sys, stations.demo, stations.factory, stations.cli; "
             "sys.exit(1 if 'tkinter' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr or "tkinter was imported"


class Later:
    """The flow's clock: it stands still until the test moves it on."""

    def __init__(self) -> None:
        self.offset = 1000.0

    def __call__(self) -> float:
        """The flow's time now."""
        return self.offset


def countdown_share(picture: Image.Image, box: tuple[int, int, int, int]) -> float:
    """How full the countdown bar in box is, read from a screenshot."""
    y = (box[1] + box[3]) // 2
    row = [picture.getpixel((x, y)) for x in range(box[0], box[2])]
    return sum(p == INK for p in row) / len(row)


def test_every_screen_for_the_eye(root: tk.Tk, tmp_path: Path, display: XvfbDisplay) -> None:
    """Walk every screen and state of the real kiosk; screenshot each (docs/station.md)."""
    url = "https://movies.example.org"
    later = Later()
    timeouts = Timeouts(still_there=90, give_up=30, finish_choice=60, done=45, help=8)
    flow = Flow(tmp_path / "outbox", "st-8", frame_limit=8, timeouts=timeouts, clock=later)
    kiosk = Kiosk(root, flow, FakeCamera(size=(640, 360), preview_size=(640, 360)),
                  KeyboardButtons(), url, size=(display.width, display.height),
                  fullscreen=False, language="he")
    kiosk.start()
    shots = ARTIFACTS / "screens"
    shots.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> Image.Image:
        """Screenshot the whole display (the kiosk fills it) once it shows the flow's now."""
        drawn = kiosk.frames_drawn
        pump(root, lambda: kiosk.frames_drawn >= drawn + 2)  # what the flow says now
        with Image.open(display.screenshot(shots / f"{name}.png")) as picture:
            return picture.convert("RGB")

    def press(action: Action, until: Callable[[], bool]) -> None:
        """Press a button (as its GPIO callback does) and wait for what it does."""
        kiosk.post(action)
        pump(root, until)

    def capture() -> None:
        """Press green and wait for the frame."""
        frames = flow.frames
        press(Action.GO, lambda: flow.frames == frames + 1 and not flow.busy)

    pump(root, lambda: kiosk.frames_drawn > 2)
    shot("01-attract")
    press(Action.GO, lambda: flow.screen is Screen.SHOOTING)
    for _ in range(3):
        capture()
        time.sleep(0.1)  # the fake scene moves on: the onion skin shows
    shot("02-shooting-onion-on")
    press(Action.ONION, lambda: not flow.onion)
    shot("03-shooting-onion-off")
    press(Action.ONION, lambda: flow.onion)
    while flow.frames < flow.frame_limit:
        capture()
    assert Action.GO not in flow.view().acts
    shot("04-frame-limit")
    press(Action.PLAY, lambda: flow.screen is Screen.PLAYING)
    assert kiosk.period() == pytest.approx(1 / flow.fps)
    pump(root, lambda: kiosk._play_index >= flow.frames // 2 - 2)  # the shot waits 2 more
    shot("05-replay")
    press(Action.PLAY, lambda: flow.screen is Screen.SHOOTING)

    later.offset += timeouts.still_there
    pump(root, lambda: flow.screen is Screen.STILL_THERE)
    box = kiosk.renderer.countdown_box(Screen.STILL_THERE)
    assert countdown_share(shot("06-still-there-start"), box) == pytest.approx(1.0, abs=0.01)
    later.offset += timeouts.give_up * 0.9
    assert countdown_share(shot("07-still-there-end"), box) == pytest.approx(0.1, abs=0.02)
    press(Action.GO, lambda: flow.screen is Screen.SHOOTING)

    press(Action.FINISH, lambda: flow.screen is Screen.FINISH)
    assert kiosk.period() == pytest.approx(1 / flow.fps)  # the movie loops at kiosk.fps
    time.sleep(0.4)
    shot("08-question")
    press(Action.GO, lambda: flow.screen is Screen.DONE)
    later.offset += timeouts.done_guard
    published = shot("09-done-publish")
    [found] = zxingcpp.read_barcodes(published)
    package = read_package(flow.outbox / str(flow.last_package))
    assert found.text == f"{url}/m/{package.code}#k={flow.last_owner_key}"
    assert key_matches(flow.last_owner_key, package.manifest.owner_key_sha256)

    later.offset += timeouts.done
    pump(root, lambda: flow.screen is Screen.ATTRACT)
    press(Action.GO, lambda: flow.screen is Screen.SHOOTING)
    capture()
    capture()
    press(Action.FINISH, lambda: flow.screen is Screen.FINISH)
    later.offset += timeouts.finish_choice  # nobody answers: it stays at the festival
    pump(root, lambda: flow.screen is Screen.DONE)
    later.offset += timeouts.done_guard
    assert zxingcpp.read_barcodes(shot("10-done-nopublish")) == []
    assert not read_package(flow.outbox / str(flow.last_package)).publish

    for language in ("he", "ar", "en"):
        kiosk.renderer = Renderer(kiosk.renderer.size, url, language)
        flow.fail(RuntimeError("the camera's cable is out"))
        pump(root, lambda: flow.screen is Screen.HELP)
        shot(f"11-helper-{language}")
    kiosk.close()
