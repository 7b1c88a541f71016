"""Commands from the console to a running station, over a real mosquitto with the fleet's ACL.

The console is a plain paho client with the console's broker user. The kiosk is the
real program (`python -m stations`: Tk under Xvfb, the fake camera, keyboard buttons)
in a child process; the sync agent is `python -m stations sync` delivering over a real
sshd. Screenshots of the display go to the same folder as test_kiosk_tk's.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from moviepkg.commands import Command, new_command
from moviepkg.reader import read_package
from moviepkg.telemetry import topic
from stations.render import ASLEEP, IDENTIFY_COLOURS
from tests.moviepkg.watcher import Message, Watcher
from tests.services import MosquittoServer, XvfbDisplay, require_binary, wait_until
from tests.stations.conftest import STATION, LineReader, Rig, add_package, visible

pytestmark = pytest.mark.slow  # a real kiosk, identify's 15 s, a restart

ARTIFACTS = Path(os.environ.get("STOPMO_SCREENSHOTS", "/tmp/stopmo-station-screens"))
ACL = Path(__file__).resolve().parents[2] / "ansible/roles/broker/templates/acl.j2"
KIOSK = "st-3"
USERS = {KIOSK: "kiosk-password", STATION: "sync-password", "console": "console-password"}


def fleet_acl() -> str:
    """The broker's ACL as Ansible renders it (the console's user is `console`)."""
    return "".join(line.replace("{{ broker_console_user }}", "console")
                   for line in ACL.read_text().splitlines(keepends=True)
                   if "ansible_managed" not in line)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    """mosquitto with the fleet's ACL and a user per device."""
    with MosquittoServer(tmp_path / "broker", users=USERS, acl=fleet_acl()) as server:
        yield server


class Console:
    """The operators' console, as far as commands go: send one, wait for its answer."""

    def __init__(self, broker: MosquittoServer) -> None:
        self.watcher = Watcher(broker.port, "console", USERS["console"])

    def send(self, device: str, program: str, command: Command, answers: int = 1,
             timeout: float = 20.0) -> dict[str, Any]:
        """Publish command and return the answers-th answer with its id."""
        results = topic(device, program, "cmd/result")
        self.watcher.client.publish(topic(device, program, "cmd"), command.to_json(),
                                    qos=1).wait_for_publish(5)
        wait_until(lambda: len(self.answers(results, command.id)) >= answers, timeout,
                   message=f"the answer to {command.name}")
        return self.answers(results, command.id)[answers - 1].doc

    def answers(self, results: str, command_id: str) -> list[Message]:
        """The answers to one command so far."""
        return [m for m in self.watcher.on(results) if m.doc.get("id") == command_id]

    def ask(self, device: str, program: str, name: str, **args: Any) -> dict[str, Any]:
        """A fresh command of the catalogue; its answer."""
        return self.send(device, program, new_command(name, "ana", args, datetime.now(UTC)))

    def after(self, name: str, since: float, timeout: float = 15.0, **fields: Any) -> Message:
        """The first message on topic name since (time.monotonic()) with these fields."""
        found: list[Message] = []

        def seen() -> bool:
            """Whether such a message arrived (kept in found)."""
            found[:] = [m for m in self.watcher.on(name) if m.at >= since
                        and all(m.doc.get(k) == v for k, v in fields.items())]
            return bool(found)

        wait_until(seen, timeout, message=f"{name} with {fields}")
        return found[0]


def decoded(result: dict[str, Any]) -> Image.Image:
    """The test capture's JPEG, opened."""
    assert len(json.dumps(result)) < 64 * 1024
    picture = Image.open(io.BytesIO(base64.b64decode(result["data"]["jpeg"])))
    assert picture.format == "JPEG"
    assert picture.size == (result["data"]["width"], result["data"]["height"])
    assert picture.width <= 320
    return picture


def started(logs: LineReader) -> int:
    """How often the kiosk program started (its first log line)."""
    return sum(1 for r in logs.records() if r.get("msg") == "kiosk starting")


def test_the_console_commands_a_running_kiosk(tmp_path: Path, xvfb_display: XvfbDisplay,
                                              broker: MosquittoServer) -> None:
    """Every kiosk command over the broker, seen on the screen, across a real restart."""
    xdotool = require_binary("xdotool")
    outbox = tmp_path / "outbox"
    password = tmp_path / "mqtt-password"
    password.write_text(USERS[KIOSK] + "\n")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("STOPMO_") and key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env.update({"DISPLAY": xvfb_display.display, "STOPMO_STATION_ID": KIOSK,
                "STOPMO_OUTBOX": str(outbox), "STOPMO_CAMERA": "fake",
                "STOPMO_BUTTONS": "keyboard", "STOPMO_FULLSCREEN": "no",
                "STOPMO_CAPTURE_SIZE": "640x360", "STOPMO_MQTT_URL": broker.url,
                "STOPMO_MQTT_PASSWORD_FILE": str(password)})
    shots = ARTIFACTS / "commands"
    shots.mkdir(parents=True, exist_ok=True)
    console = Console(broker)
    state, online = topic(KIOSK, "kiosk", "state"), topic(KIOSK, "kiosk", "online")
    kiosk = subprocess.Popen([sys.executable, "-m", "stations"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    logs = LineReader(kiosk)

    def key(name: str) -> None:
        """Press a key in the kiosk's window."""
        subprocess.run([xdotool, "search", "--sync", "--name", "stopmo", "windowfocus",
                        "--sync", "key", name], check=True, timeout=10, env=env)

    def frames_on_disk() -> int:
        """Frames of the kiosk's packages in the outbox."""
        return len(list(outbox.glob(f"{KIOSK}-*/[0-9][0-9][0-9][0-9].jpg")))

    def screenshot(name: str) -> Image.Image:
        """The whole display, saved under name."""
        path = xvfb_display.screenshot(shots / f"{name}.png")
        return Image.open(path).convert("RGB")

    try:
        console.after(state, 0, timeout=30, screen="attract")
        key("space")  # attract -> shooting
        for n in range(3):
            key("space")
            wait_until(lambda n=n: frames_on_disk() == n + 1, 10, message="a frame")
        console.after(state, 0, frames=3, screen="shooting")
        screenshot("0-shooting")

        # identify: 15 s of the number, flashing; the child's movie waits meanwhile
        said = console.ask(KIOSK, "kiosk", "identify")
        assert said["outcome"] == "done", said
        assert said["detail"] == "st-3 shows its number, flashing, for 15 s"
        since = time.monotonic()
        console.after(state, since, identify=True, screen="shooting", frames=3)
        colours: dict[tuple[int, ...], Image.Image] = {}
        for n in range(12):  # two colours swap four times a second
            picture = screenshot(f"1-identify-{n}")
            colours.setdefault(picture.getpixel((100, 100)), picture)  # type: ignore[arg-type]
            time.sleep(0.11)
        assert set(colours) == set(IDENTIFY_COLOURS), set(colours)
        for keep, picture in enumerate(colours.values()):
            picture.save(shots / f"1-identify-{'ab'[keep]}.png")
        for n in range(12):
            (shots / f"1-identify-{n}.png").unlink()
        key("space")  # ignored: nobody sees the movie now

        # meanwhile: a test capture (the preview: a child is shooting), a refused restart,
        # and a command that arrives too late
        capture = console.ask(KIOSK, "kiosk", "test-capture")
        assert capture["outcome"] == "done", capture
        assert capture["detail"].startswith("the live preview, ")
        decoded(capture).save(shots / "2-test-capture-preview.png")
        refused = console.ask(KIOSK, "kiosk", "restart-kiosk")
        assert refused["outcome"] == "refused"
        assert refused["detail"].startswith("a child is shooting a movie (3 frames, last press ")
        assert refused["detail"].endswith(" s ago); send it again with force to restart anyway")
        now = datetime.now(UTC)
        late = Command("late-out-of-order-01", "out-of-order", "ana", now - timedelta(minutes=2),
                       now - timedelta(minutes=1), {"on": True})
        too_late = console.send(KIOSK, "kiosk", late)
        assert too_late["outcome"] == "refused" and "arrived too late" in too_late["detail"]
        console.after(state, since, timeout=25, identify=False, screen="shooting", frames=3)
        assert frames_on_disk() == 3
        assert not (outbox / ".out-of-order").exists()
        assert all(m.doc["out_of_order"] is False for m in console.watcher.on(state))

        # out of order: the sleeping camera; every button ignored; the movie kept
        said = console.ask(KIOSK, "kiosk", "out-of-order", on=True)
        assert said["detail"] == ("out of order: the kiosk shows a sleeping camera and ignores "
                                  "its buttons; the movie in progress (3 frames) waits")
        console.after(state, time.monotonic() - 2, screen="out_of_order", out_of_order=True)
        time.sleep(0.3)
        colours_now = {colour for _, colour in screenshot("3-out-of-order").getcolors(1 << 20)}
        assert ASLEEP in colours_now
        key("space")
        key("f")
        time.sleep(1)
        assert frames_on_disk() == 3
        [package] = [p for p in outbox.iterdir() if p.name.startswith(f"{KIOSK}-")]

        # a forced restart: the same process runs the program again
        restart = new_command("restart-kiosk", "ana", {"force": True}, datetime.now(UTC))
        since = time.monotonic()
        said = console.send(KIOSK, "kiosk", restart)
        assert said["outcome"] == "done", said
        assert said["detail"] == "restarting; the movie in progress (3 frames) comes back"
        console.after(online, since, status="offline")
        up = console.after(online, since, timeout=30, status="online")
        back = console.after(state, up.at, timeout=20, screen="out_of_order")
        assert back.doc["frames"] == 3 and back.doc["out_of_order"] is True
        assert kiosk.poll() is None
        environ = Path(f"/proc/{kiosk.pid}/environ").read_bytes().split(b"\0")
        assert b"STOPMO_KIOSK_RESTARTS=1" in environ  # set at exec: a new program
        cmdline = Path(f"/proc/{kiosk.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[:4] == [sys.executable.encode(), b"-P", b"-m", b"stations"]
        wait_until(lambda: started(logs) == 2, 10, message="the second start in the log")
        assert [p.name for p in outbox.iterdir() if p.name.startswith(f"{KIOSK}-")] == [
            package.name]
        assert frames_on_disk() == 3
        wait_until(lambda: ASLEEP in {colour for _, colour in
                                      screenshot("4-after-restart").getcolors(1 << 20)},
                   10, interval=0.2, message="the new window, still out of order")

        # the same command again (a replay): answered as before, not run again
        since = time.monotonic()
        replayed = console.send(KIOSK, "kiosk", restart, answers=2)
        assert replayed == said
        time.sleep(2.5)
        assert not [m for m in console.watcher.on(online) if m.at >= since]
        assert started(logs) == 2 and kiosk.poll() is None

        # back in service: the child carries on with the same movie
        said = console.ask(KIOSK, "kiosk", "out-of-order", on=False)
        assert said["detail"] == "back in service: the movie in progress (3 frames) carries on"
        console.after(state, time.monotonic() - 1, screen="shooting", out_of_order=False)
        key("space")
        wait_until(lambda: frames_on_disk() == 4, 10, message="the fourth frame")
        screenshot("5-back-in-service")
        key("f")
        console.after(state, time.monotonic() - 1, screen="finish")
        key("space")  # publish
        console.after(state, time.monotonic() - 1, screen="done")
        movie = read_package(package)
        assert movie.publish and len(movie.frames) == 4

        # nobody shooting: a real capture
        capture = console.ask(KIOSK, "kiosk", "test-capture")
        assert capture["detail"].startswith("a real capture (640x360), sent as 320x180")
        decoded(capture).save(shots / "6-test-capture-real.png")

        kiosk.terminate()
        assert kiosk.wait(timeout=15) == 0
        console.after(online, time.monotonic() - 0.5, timeout=5, status="offline")
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
            kiosk.wait(10)
        console.watcher.close()
    assert not [r for r in logs.records() if r.get("level") == "error"], logs.text()


def test_the_console_asks_the_sync_agent_to_deliver_now(rig: Rig, tmp_path: Path,
                                                        broker: MosquittoServer) -> None:
    """deliver-now over the broker; the box's own reporter takes no commands."""
    password = tmp_path / "sync-password"
    password.write_text(USERS[STATION] + "\n")
    env = rig.env(STOPMO_MQTT_URL=broker.url, STOPMO_MQTT_PASSWORD_FILE=str(password))
    console = Console(broker)
    # A cycle an hour, no scan of the outbox: only the command delivers now.
    agent = rig.spawn(env=env, interval_seconds=3600.0, scan_seconds=3600.0)
    logs = LineReader(agent)
    try:
        console.after(topic(STATION, "sync", "state"), 0, timeout=30, waiting=0)
        package = add_package(rig.outbox)
        said = console.ask(STATION, "sync", "deliver-now")
        assert said == {**said, "outcome": "done", "detail": "1 movie delivered"}
        assert visible(rig.sent) == [package.name]
        again = console.ask(STATION, "sync", "deliver-now")
        assert again["outcome"] == "done" and again["detail"] == "nothing was waiting"
        with pytest.raises(TimeoutError):  # the box's own reporter takes no commands
            console.send(STATION, "system",
                         new_command("deliver-now", "ana", {}, datetime.now(UTC)), timeout=2)
    finally:
        agent.terminate()
        agent.wait(30)
        console.watcher.close()
    assert agent.returncode == 0, logs.text()
