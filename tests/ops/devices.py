"""Devices that take commands, for the console's tests: real Reporters, simple handlers.

A `FakeStation` is station st-N's kiosk (and, when asked, its sync agent) as
moviepkg.reporting.Reporter with a moviepkg.commands.CommandRunner; its handlers answer
as a kiosk would (a refusal while a child is shooting, a small picture for a test
capture) and write down what they ran. A `FakeProcessor` is the processing unit's
processor and screen. `fleet_broker` is a real mosquitto with the fleet's own ACL.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from moviepkg.broker import TelemetrySettings
from moviepkg.commands import Command, CommandRunner, Handler, Refused
from moviepkg.reporting import Reporter
from tests.services import MosquittoServer

ACL = Path(__file__).resolve().parents[2] / "ansible/roles/broker/templates/acl.j2"
PASSWORDS = {"st-3": "station-3-password", "processor": "processor-password",
             "console": "console-password"}


def fleet_acl() -> str:
    """The broker's ACL as Ansible renders it, the console's user being `console`."""
    return "".join(line.replace("{{ broker_console_user }}", "console")
                   for line in ACL.read_text().splitlines(keepends=True)
                   if "ansible_managed" not in line)


def fleet_broker(folder: Path) -> MosquittoServer:
    """A mosquitto (not started) with the fleet's users and ACL."""
    return MosquittoServer(folder, users=PASSWORDS, acl=fleet_acl())


def station_picture(width: int = 160, height: int = 120) -> bytes:
    """A small JPEG that looks like a station's view: a table, a clay figure, a lamp."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (236, 226, 204))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height * 2 // 3, width, height), fill=(150, 104, 62))
    draw.ellipse((width // 3, height // 3, width // 3 + 34, height // 3 + 40),
                 fill=(224, 87, 60))
    draw.ellipse((width // 3 + 9, height // 3 - 18, width // 3 + 25, height // 3 + 2),
                 fill=(255, 190, 92))
    draw.ellipse((width - 40, 8, width - 12, 36), fill=(255, 244, 180))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


class _Device:
    """Reporters of one box whose commands are run by one runner."""

    def __init__(self, broker: MosquittoServer, name: str, programs: tuple[str, ...],
                 handlers: dict[str, Handler], answered: Path) -> None:
        self.ran: list[Command] = []
        runner = CommandRunner(handlers, answered)
        settings = TelemetrySettings(url=broker.url)
        self.reporters = [Reporter(settings, name, program, password=PASSWORDS.get(name),
                                   commands=runner.handle) for program in programs]

    def start(self) -> None:
        """Connect every program."""
        for reporter in self.reporters:
            reporter.start()

    def stop(self) -> None:
        """Say offline and disconnect."""
        for reporter in self.reporters:
            reporter.stop()

    def names(self) -> list[str]:
        """The commands run so far, in order."""
        return [command.name for command in self.ran]


class FakeStation(_Device):
    """Station st-N's kiosk (and sync agent) answering commands as the real ones would."""

    def __init__(self, broker: MosquittoServer, answered: Path, name: str = "st-3",
                 programs: tuple[str, ...] = ("kiosk",)) -> None:
        self.shooting = False
        super().__init__(broker, name, programs, {
            "identify": self._identify, "out-of-order": self._out_of_order,
            "restart-kiosk": self._restart, "test-capture": self._capture,
            "deliver-now": self._deliver}, answered)

    def _identify(self, command: Command) -> str:
        self.ran.append(command)
        return "the station number is on the screen for 15 s"

    def _out_of_order(self, command: Command) -> str:
        self.ran.append(command)
        return "the out-of-order picture is up" if command.args["on"] else "back to work"

    def _restart(self, command: Command) -> str:
        if self.shooting and command.args.get("force") is not True:
            raise Refused("a child is shooting a movie (12 frames): restarting now would "
                          "interrupt them")
        self.ran.append(command)
        return "restarting; back in about 5 s"

    def _capture(self, command: Command) -> tuple[str, dict[str, Any]]:
        self.ran.append(command)
        picture = station_picture()
        return "a test picture, 160 × 120", {
            "jpeg": base64.b64encode(picture).decode(), "width": 160, "height": 120}

    def _deliver(self, command: Command) -> str:
        self.ran.append(command)
        return "2 movies delivered"


class FakeProcessor(_Device):
    """The processing unit's processor and screen, answering every command with done."""

    def __init__(self, broker: MosquittoServer, answered: Path) -> None:
        names = ("retry", "release", "delete", "publish-now", "take-down", "next", "play",
                 "reload")
        super().__init__(broker, "processor", ("processor", "screen"),
                         {name: self._done for name in names}, answered)

    def _done(self, command: Command) -> str:
        self.ran.append(command)
        return f"{command.name} done"
