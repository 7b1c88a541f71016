"""Build the station's parts from its settings: camera, buttons, the kiosk's flow.

No Tk here: the headless demo (`stopmo-station demo`) builds its flow from this
module too, and must run where there is no display and no tkinter.
"""

from __future__ import annotations

from .buttons import Buttons, GpioButtons, KeyboardButtons
from .camera import Camera, FakeCamera, Picamera2Camera
from .config import StationSettings
from .flow import Events, Flow, Timeouts


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


def make_flow(settings: StationSettings, events: Events | None = None) -> Flow:
    """The state machine for this station's outbox (its replay runs at kiosk.fps); events
    hears of every movie started and finished."""
    kiosk = settings.kiosk
    return Flow(settings.paths.outbox, settings.station_id, frame_limit=kiosk.frame_limit,
                timeouts=Timeouts(still_there=kiosk.still_there_seconds,
                                  give_up=kiosk.give_up_seconds,
                                  finish_choice=kiosk.finish_seconds,
                                  done=kiosk.done_seconds),
                fps=kiosk.fps, events=events)
