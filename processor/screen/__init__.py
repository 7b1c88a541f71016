"""The big screen: the interface (base), mpv over its JSON IPC socket (mpv, ipc), and the
daemon's control socket that operators steer it through (control)."""

from .base import FakeScreen, NullScreen, Screen, ScreenMovie, ScreenUnavailable, read_fake_screen

__all__ = ["FakeScreen", "NullScreen", "Screen", "ScreenMovie", "ScreenUnavailable",
           "read_fake_screen"]
