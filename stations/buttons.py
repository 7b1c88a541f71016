"""Big arcade buttons (GPIO, through gpiozero) or keyboard keys: both only post actions.

A GPIO callback runs on gpiozero's own thread: it puts the action on a queue and
returns. The Tk loop drains the queue with `after()`, so the flow only ever runs
on the UI thread. Which input is used is a setting, never a silent fallback.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Mapping
from typing import Any

from .flow import Action

log = logging.getLogger("stopmo.station.buttons")
Post = Callable[[Action], None]

# Keys for a desk, a demo or a helper with a keyboard; the same actions as the buttons.
KEYS: dict[str, Action] = {
    "space": Action.GO, "g": Action.GO, "1": Action.GO,
    "BackSpace": Action.UNDO, "Delete": Action.UNDO, "r": Action.UNDO, "2": Action.UNDO,
    "p": Action.PLAY, "3": Action.PLAY,
    "o": Action.ONION, "4": Action.ONION,
    "f": Action.FINISH, "Return": Action.FINISH, "5": Action.FINISH,
}

# Default wiring (BCM numbers): one big button per action, to ground, internal pull-up.
DEFAULT_PINS: dict[Action, int] = {Action.GO: 17, Action.UNDO: 27, Action.PLAY: 22,
                                   Action.ONION: 23, Action.FINISH: 24}


class Buttons(abc.ABC):
    """Physical input. Implementations call `post(action)` from any thread, nothing else."""

    @abc.abstractmethod
    def start(self, post: Post) -> None:
        """Begin posting actions."""

    def close(self) -> None:  # noqa: B027 - keyboard input holds nothing
        """Release the inputs."""


class GpioButtons(Buttons):
    """Arcade buttons on GPIO pins, debounced by gpiozero."""

    def __init__(self, pins: Mapping[Action, int], bounce_seconds: float = 0.05,
                 pin_factory: Any = None) -> None:
        self.pins = dict(pins)
        self.bounce_seconds = bounce_seconds
        self.pin_factory = pin_factory
        self._buttons: list[Any] = []

    def start(self, post: Post) -> None:
        """Open every pin; a press posts its action."""
        from gpiozero import Button

        for action, pin in self.pins.items():
            button = Button(pin, pull_up=True, bounce_time=self.bounce_seconds,
                            pin_factory=self.pin_factory)
            button.when_pressed = _poster(post, action)
            self._buttons.append(button)
        log.info("listening on GPIO pins %s",
                 ", ".join(f"{a.value}={p}" for a, p in self.pins.items()))

    def close(self) -> None:
        """Release the pins."""
        for button in self._buttons:
            button.close()
        self._buttons.clear()


def _poster(post: Post, action: Action) -> Callable[[], None]:
    def pressed() -> None:
        post(action)
    return pressed


class KeyboardButtons(Buttons):
    """Keys of a keyboard; the Tk window binds them (see `KEYS`)."""

    def __init__(self, keys: Mapping[str, Action] | None = None) -> None:
        self.keys = dict(keys or KEYS)
        self.post: Post | None = None

    def start(self, post: Post) -> None:
        """Remember where to post; the UI calls `key(name)` for each key press."""
        self.post = post

    def key(self, name: str) -> None:
        """A key was pressed."""
        action = self.keys.get(name)
        if action is not None and self.post is not None:
            self.post(action)
