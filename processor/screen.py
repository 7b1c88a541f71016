"""The big screen, as the pipeline sees it: hand it a finished movie.

The mpv player implements this interface in its own module; here are the
no-op default and a fake that writes what it was given, for tests and demos.
"""

from __future__ import annotations

import abc
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from moviepkg.atomic import fsync_dir


@dataclass(frozen=True, slots=True)
class ScreenMovie:
    """A movie ready for the big screen."""

    package_id: str
    path: Path
    title: str | None
    public: bool


class Screen(abc.ABC):
    """Shows finished movies. `show` must return quickly and never raise for a bad movie."""

    @abc.abstractmethod
    def show(self, movie: ScreenMovie) -> None:
        """Queue movie to play next on the screen."""

    def close(self) -> None:  # noqa: B027 - most screens hold nothing
        """Release whatever the screen holds."""


class NullScreen(Screen):
    """No screen attached: movies are only published."""

    def show(self, movie: ScreenMovie) -> None:
        """Do nothing."""


class FakeScreen(Screen):
    """Append one JSON line per movie to a file (and keep a list), for tests and demos."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.shown: list[ScreenMovie] = []
        self._lock = threading.Lock()

    def show(self, movie: ScreenMovie) -> None:
        """Record that movie was handed to the screen."""
        line = json.dumps({"package_id": movie.package_id, "path": str(movie.path),
                           "title": movie.title, "public": movie.public}, ensure_ascii=False)
        with self._lock:
            self.shown.append(movie)
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
            fsync_dir(self.log.parent)


def read_fake_screen(log: Path) -> list[dict[str, object]]:
    """Read what a FakeScreen recorded."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
