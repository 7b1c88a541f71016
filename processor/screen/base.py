"""The big screen, as the pipeline and the operators see it.

The daemon hands it finished movies (`show`); operators ask it what plays and
steer it (`status`, `next`, `reload`, `play`) through the daemon's control
socket. mpv implements it in `mpv.py`; here are the no-op default (no screen
attached) and a fake that writes what it was given, for tests and demos.
"""

from __future__ import annotations

import abc
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moviepkg.atomic import fsync_dir


@dataclass(frozen=True, slots=True)
class ScreenMovie:
    """A movie ready for the big screen."""

    package_id: str
    path: Path
    title: str | None
    public: bool


class ScreenUnavailable(Exception):
    """The command needs a screen that can be steered, and this one cannot."""


class Screen(abc.ABC):
    """Shows finished movies and takes the operators' commands.

    An implementation must: return from `show` quickly and never raise for a bad
    movie; answer `status` with at least {"kind", "connected"}; raise KeyError from
    `play` for a movie it does not know, and ScreenUnavailable from a command it
    cannot carry out at all.
    """

    @abc.abstractmethod
    def show(self, movie: ScreenMovie) -> None:
        """Queue movie to play next on the screen."""

    @abc.abstractmethod
    def status(self) -> dict[str, Any]:
        """Report the connection, what plays and the loop."""

    @abc.abstractmethod
    def next(self) -> None:
        """Skip to the next movie in the loop."""

    @abc.abstractmethod
    def reload(self) -> int:
        """Rebuild the loop from the movies on disk; return its length."""

    @abc.abstractmethod
    def play(self, package_id: str) -> None:
        """Play package_id now."""

    def close(self) -> None:  # noqa: B027 - most screens hold nothing
        """Release whatever the screen holds."""


class NullScreen(Screen):
    """No screen attached: movies are only published; commands are refused."""

    def show(self, movie: ScreenMovie) -> None:
        """Do nothing."""

    def status(self) -> dict[str, Any]:
        """Say that there is no screen."""
        return {"kind": "none", "connected": False}

    def _refuse(self) -> ScreenUnavailable:
        return ScreenUnavailable('no screen is attached (set screen.kind = "mpv")')

    def next(self) -> None:
        """Refuse: nothing plays."""
        raise self._refuse()

    def reload(self) -> int:
        """Refuse: there is no loop."""
        raise self._refuse()

    def play(self, package_id: str) -> None:
        """Refuse: nothing can play."""
        raise self._refuse()


class FakeScreen(Screen):
    """Append one JSON line per movie to a file (and keep a list), for tests and demos.

    Its loop is the movies shown so far whose file was still there at the last reload:
    enough to test the commands.
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        self.shown: list[ScreenMovie] = []
        self.playing: str | None = None
        self._lock = threading.Lock()

    def show(self, movie: ScreenMovie) -> None:
        """Record that movie was handed to the screen."""
        line = json.dumps({"package_id": movie.package_id, "path": str(movie.path),
                           "title": movie.title, "public": movie.public}, ensure_ascii=False)
        with self._lock:
            self.shown.append(movie)
            self.playing = movie.package_id
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
            fsync_dir(self.log.parent)

    def _loop(self) -> list[str]:
        return list(dict.fromkeys(m.package_id for m in self.shown))

    def status(self) -> dict[str, Any]:
        """What a test needs: the loop and what plays."""
        with self._lock:
            return {"kind": "fake", "connected": True, "playing": self.playing,
                    "playlist": self._loop()}

    def next(self) -> None:
        """Move to the next movie of the loop (around the end)."""
        with self._lock:
            loop = self._loop()
            if loop:
                at = loop.index(self.playing) if self.playing in loop else -1
                self.playing = loop[(at + 1) % len(loop)]

    def reload(self) -> int:
        """Drop from the loop the movies whose file is gone (taken down); return its length."""
        with self._lock:
            self.shown = [movie for movie in self.shown if movie.path.exists()]
            if self.playing not in self._loop():
                self.playing = None
            return len(self._loop())

    def play(self, package_id: str) -> None:
        """Play a movie that was shown."""
        with self._lock:
            if package_id not in self._loop():
                raise KeyError(f"{package_id}: no such movie on this processor")
            self.playing = package_id


def read_fake_screen(log: Path) -> list[dict[str, object]]:
    """Read what a FakeScreen recorded."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
