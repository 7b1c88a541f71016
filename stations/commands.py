"""The kiosk's commands from the console: identify, out of order, restart, test capture.

A command runs on the reporter's thread (moviepkg.commands.CommandRunner). Whatever it
does to the flow, the screen or the camera is handed to the Tk thread with the kiosk's
`call`, which waits for the answer a few seconds at most; only a test capture's slow
camera work runs on the reporter's thread, holding the kiosk's camera lock so that it
never overlaps a child's capture. The ids already answered are kept in the outbox's
hidden `.commands/` folder (the station's state, never inside a package).
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from PIL import Image

from moviepkg.commands import Command, Handler, Refused

from .camera import Camera
from .flow import Flow
from .thumbs import thumbnail

log = logging.getLogger("stopmo.station.commands")
IDENTIFY_SECONDS = 15.0
RESTART_DELAY_SECONDS = 1.0  # the answer goes out first; then the reporter says offline
TEST_WIDTH = 320  # a test capture's copy is at most this wide (and high)
TEST_BYTES = 24_000  # and at most this big: in base64 the answer stays far below 64 KiB
T = TypeVar("T")


def answered_file(outbox: Path, program: str) -> Path:
    """Where program keeps the command ids it answered (beside the packages, hidden)."""
    return outbox / ".commands" / f"{program}.json"


class KioskControl(Protocol):
    """What the commands need of the kiosk (stations.kiosk.Kiosk)."""

    flow: Flow
    camera: Camera
    camera_lock: threading.Lock

    def call(self, work: Callable[[], T], timeout: float | None = None) -> T:
        """Run work on the Tk thread; return its result."""

    def identify(self, seconds: float) -> None:
        """Show the station's number, flashing, for seconds."""

    def restart(self, delay: float) -> None:
        """End the loop for a restart after delay."""


def frames_words(count: int) -> str:
    """'1 frame', '12 frames'."""
    return f"{count} frame{'' if count == 1 else 's'}"


def shooting_words(flow: Flow) -> str | None:
    """Why a child would lose out now, in words; None when nobody is shooting."""
    if not flow.shooting():
        return None
    if flow.last_press is None:
        pressed = "no press since the kiosk started"
    else:
        pressed = f"last press {max(0.0, flow.clock() - flow.last_press):.0f} s ago"
    return f"a child is shooting a movie ({frames_words(flow.frames)}, {pressed})"


def small_jpeg(picture: Image.Image) -> tuple[bytes, tuple[int, int]]:
    """A copy of picture at most TEST_WIDTH wide and TEST_BYTES big, and its size."""
    image = picture.convert("RGB")
    image.thumbnail((TEST_WIDTH, TEST_WIDTH))
    data = b""
    for quality in (80, 65, 50, 35, 20):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        data = buffer.getvalue()
        if len(data) <= TEST_BYTES:
            break
    return data, image.size


class KioskCommands:
    """The kiosk program's command handlers; `attach` the kiosk once it is built."""

    def __init__(self, identify_seconds: float = IDENTIFY_SECONDS,
                 restart_delay: float = RESTART_DELAY_SECONDS) -> None:
        """Handlers for a kiosk yet to be attached (timings: see the module's constants)."""
        self.identify_seconds = identify_seconds
        self.restart_delay = restart_delay
        self._kiosk: KioskControl | None = None

    def attach(self, kiosk: KioskControl) -> None:
        """The kiosk is built: commands may reach it."""
        self._kiosk = kiosk

    def detach(self) -> None:
        """The kiosk has ended: commands are refused."""
        self._kiosk = None

    def handlers(self) -> dict[str, Handler]:
        """Command name -> handler, for a moviepkg.commands.CommandRunner."""
        return {"identify": self.identify, "out-of-order": self.out_of_order,
                "restart-kiosk": self.restart, "test-capture": self.test_capture}

    def _ready(self) -> KioskControl:
        """The attached kiosk; Refused while there is none."""
        kiosk = self._kiosk
        if kiosk is None:
            raise Refused("the kiosk is not running (starting or stopping); send it again "
                          "in a few seconds")
        return kiosk

    def identify(self, command: Command) -> str:
        """Show the station's number, huge and flashing, then what it showed before."""
        kiosk = self._ready()
        kiosk.call(lambda: kiosk.identify(self.identify_seconds))
        return (f"{kiosk.flow.station_id} shows its number, flashing, for "
                f"{self.identify_seconds:g} s")

    def out_of_order(self, command: Command) -> str:
        """on: the sleeping camera, buttons ignored, the movie kept; off: back to work."""
        kiosk = self._ready()
        on = command.args["on"] is True
        flow = kiosk.flow

        def switch() -> tuple[bool, int | None]:
            """Tk thread: switch; whether it was on, and the movie's frames if any."""
            was = flow.out_of_order
            flow.set_out_of_order(on, by=command.sender)
            return was, flow.frames if flow.writer is not None else None

        was, frames = kiosk.call(switch)
        if on:
            said = "out of order: the kiosk shows a sleeping camera and ignores its buttons"
            if frames is not None:
                said += f"; the movie in progress ({frames_words(frames)}) waits"
            return said + (" (it was out of order already)" if was else "")
        said = "back in service"
        if frames is not None:
            said += f": the movie in progress ({frames_words(frames)}) carries on"
        return said + ("" if was else " (it was not out of order)")

    def restart(self, command: Command) -> str:
        """Restart the kiosk program; refused while a child is shooting, unless forced."""
        kiosk = self._ready()
        force = command.args.get("force") is True
        flow = kiosk.flow

        def check() -> tuple[str | None, int | None]:
            """Tk thread: refuse, or set the restart; who was shooting, the frames if any."""
            why = shooting_words(flow)
            if why is not None and not force:
                raise Refused(f"{why}; send it again with force to restart anyway")
            kiosk.restart(self.restart_delay)
            return why, flow.frames if flow.writer is not None else None

        why, frames = kiosk.call(check)
        log.warning("restart asked by %s%s", command.sender, f" although {why}" if why else "")
        if frames is None:
            return "restarting; no movie was in progress"
        said = f"restarting; the movie in progress ({frames_words(frames)}) comes back"
        return f"{said} (forced: {why})" if why else said

    def test_capture(self, command: Command) -> tuple[str, dict[str, Any]]:
        """A small JPEG of what the camera sees: a real capture when the camera is free,
        the live preview while a child is shooting (their captures are never delayed)."""
        kiosk = self._ready()

        def choose() -> tuple[str, Image.Image | None]:
            """Tk thread: the preview and why, or ("", None) with the camera lock taken."""
            if kiosk.flow.shooting():
                return "a child is shooting: their camera is left alone", \
                    kiosk.camera.preview()
            if not kiosk.camera_lock.acquire(blocking=False):
                return "the camera is busy with a capture", kiosk.camera.preview()
            return "", None  # the lock is ours: capture on this thread, then let it go

        reason, preview = kiosk.call(choose)
        if preview is None:
            try:
                jpeg = kiosk.camera.capture()
            finally:
                kiosk.camera_lock.release()
            full = thumbnail(jpeg, (TEST_WIDTH, TEST_WIDTH))
            with Image.open(io.BytesIO(jpeg)) as opened:
                size = opened.size
            data, (width, height) = small_jpeg(full)
            said = f"a real capture ({size[0]}x{size[1]}), sent as {width}x{height}"
        else:
            data, (width, height) = small_jpeg(preview)
            said = f"the live preview, {width}x{height} ({reason})"
        said += f", {len(data) / 1000:.1f} kB"
        return said, {"jpeg": base64.b64encode(data).decode("ascii"), "width": width,
                      "height": height}
