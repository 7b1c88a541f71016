"""`stopmo-station demo`: a scripted station without a screen.

It drives the kiosk's own state machine (`Flow`) with the presses a child
would make -- start, capture N frames, finish, publish or not -- and the fake
camera, so the package it writes went the real way. The local festival
(`scripts/festival`) uses it where there is no display, the end-to-end test and
`bench/e2e.py` use it to shoot movies on demand.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .camera import FakeCamera
from .config import StationSettings
from .factory import make_flow
from .flow import Action, Command, Events, Flow, Screen


@dataclass(frozen=True, slots=True)
class Shot:
    """One movie the scripted station finished."""

    package_id: str
    code: str
    frames: int
    publish: bool
    path: Path
    finished_at: float  # time.time() right after the finish press

    def as_json(self) -> str:
        """One line for whoever started us (tests, benchmarks)."""
        return json.dumps({"package_id": self.package_id, "code": self.code,
                           "frames": self.frames, "publish": self.publish,
                           "path": str(self.path), "finished_at": self.finished_at})


class _SceneClock:
    """The fake camera's clock: one tenth of a second per frame, so the scene moves."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def shoot(settings: StationSettings, frames: int, *, publish: bool = True,
          events: Events | None = None) -> Shot:
    """Shoot one movie of `frames` frames with the fake camera, as a child would; its start
    and finish are told to events (telemetry) like the kiosk's."""
    if frames < 1:
        raise ValueError("a movie needs at least one frame")
    clock = _SceneClock()
    camera = FakeCamera(settings.camera.size, settings.camera.preview_size, clock=clock)
    flow: Flow = make_flow(settings, events=events)
    flow.handle(Action.GO)  # attract -> shooting
    _expect(flow, Screen.SHOOTING)
    for _ in range(frames):
        if flow.handle(Action.GO) is not Command.CAPTURE:
            raise RuntimeError(f"the station did not capture (screen {flow.screen})")
        if flow.captured(camera.capture()) < 0:
            raise RuntimeError(f"a frame was not stored: {flow.error}")
        clock.now += 0.1
    flow.handle(Action.FINISH)
    _expect(flow, Screen.FINISH)
    flow.handle(Action.GO if publish else Action.UNDO)
    finished_at = time.time()
    _expect(flow, Screen.DONE)
    assert flow.last_package is not None and flow.last_code is not None
    return Shot(flow.last_package, flow.last_code, frames, publish,
                settings.paths.outbox / flow.last_package, finished_at)


def _expect(flow: Flow, screen: Screen) -> None:
    if flow.screen is not screen:
        detail = f": {flow.error}" if flow.error else ""
        raise RuntimeError(f"expected the {screen} screen, the station shows {flow.screen}{detail}")


def wait_for_port(where: str, timeout: float) -> bool:
    """Wait until a TCP port (`host:port`) accepts a connection; False after timeout."""
    host, _, port = where.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
                return True
        except (OSError, ValueError):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def wait_for_stop() -> None:
    """Stay up until SIGTERM or SIGINT (so a process manager sees a running station)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
