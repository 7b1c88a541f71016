"""`python -m stations`: build the kiosk from the settings and run it full-screen."""

from __future__ import annotations

import logging
import tkinter as tk

from .buttons import Buttons, GpioButtons, KeyboardButtons
from .camera import Camera, FakeCamera, Picamera2Camera
from .config import StationSettings
from .flow import Flow, Timeouts
from .ui import Kiosk, run

log = logging.getLogger("stopmo.station")


def make_camera(settings: StationSettings) -> Camera:
    """The camera the settings name (never a silent fallback to the fake)."""
    camera = settings.camera
    if camera.kind == "fake":
        return FakeCamera(camera.size, camera.preview_size)
    return Picamera2Camera(camera.size, camera.preview_size)


def make_buttons(settings: StationSettings) -> Buttons:
    """GPIO buttons or keyboard keys, as the settings say."""
    buttons = settings.buttons
    if buttons.kind == "keyboard":
        return KeyboardButtons()
    return GpioButtons(buttons.pins(), bounce_seconds=buttons.bounce_seconds)


def make_flow(settings: StationSettings) -> Flow:
    """The state machine for this station's outbox."""
    kiosk = settings.kiosk
    return Flow(settings.paths.outbox, settings.station_id, frame_limit=kiosk.frame_limit,
                timeouts=Timeouts(still_there=kiosk.still_there_seconds,
                                  give_up=kiosk.give_up_seconds,
                                  finish_choice=kiosk.finish_seconds,
                                  done=kiosk.done_seconds),
                fps=kiosk.fps)


def run_kiosk(settings: StationSettings) -> None:
    """Open the window and run until it is closed (systemd restarts it if it freezes)."""
    camera = make_camera(settings)
    buttons = make_buttons(settings)

    def make(root: tk.Tk) -> Kiosk:
        size = None if settings.kiosk.fullscreen else settings.kiosk.window_size
        return Kiosk(root, make_flow(settings), camera, buttons, settings.kiosk.website_url,
                     size=size, fullscreen=settings.kiosk.fullscreen)

    log.info("kiosk starting", extra={"camera": settings.camera.kind,
                                      "buttons": settings.buttons.kind})
    run(make)
