"""The big screen: a controller that owns the loop and drives mpv over its IPC socket.

Policy: a newly finished movie plays next; then the loop goes on over the most
recent movies (NOPUBLISH ones too), oldest pruned from mpv's playlist; an idle
card shows while there is none. One controller thread talks to mpv: `show`,
operator commands and mpv's events are all put on its queue, so nothing races.
mpv runs as its own process (see `mpv_args`): if it crashes or restarts, the
controller reconnects with backoff and pushes the loop again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moviepkg.backoff import Backoff
from moviepkg.errors import RecordError
from moviepkg.record import parse_record

from ..titlecard import TitleCard, save_title_card
from .base import Screen, ScreenMovie
from .ipc import Event, MpvDisconnected, MpvError, MpvIpc

log = logging.getLogger("stopmo.processor.screen")
BACKOFF_START, BACKOFF_MAX = 0.2, 2.0  # a local socket: look again soon


def mpv_args(socket: Path, *, fullscreen: bool = True, vo: str | None = None,
             hwdec: str = "auto-safe") -> list[str]:
    """Build mpv's command line for the TV (the systemd unit and the local run use it)."""
    args = ["mpv", "--idle=yes", "--force-window=yes", "--loop-playlist=inf",
            f"--input-ipc-server={socket}", "--no-config", "--no-terminal", "--really-quiet",
            "--osc=no", "--osd-level=0", "--osd-bar=no", "--no-input-default-bindings",
            "--cursor-autohide=always", "--image-display-duration=inf",
            "--keep-open=no", f"--hwdec={hwdec}", "--audio=no"]
    if fullscreen:
        args.append("--fullscreen")
    if vo is not None:
        args.append(f"--vo={vo}")
    return args


def save_idle_card(path: Path, festival: str, size: tuple[int, int]) -> Path:
    """Draw the card the screen shows while there is no movie yet."""
    card = TitleCard(title="Your movies will play here soon",
                     station_id="", created_at=datetime.now(UTC), festival=festival,
                     footer=False)
    return save_title_card(card, path, size)


def recent_movies(movies_dir: Path, count: int) -> list[ScreenMovie]:
    """The most recent `count` encoded movies on disk, oldest first (rebuilds the loop)."""
    found = []
    for record_path in movies_dir.glob("*.json"):
        movie = movies_dir / f"{record_path.stem}.mp4"
        if record_path.name.startswith(".") or not movie.exists():
            continue
        try:
            record = parse_record(record_path.read_bytes())
        except (RecordError, OSError):
            log.warning("skipping %s: not a readable movie record", record_path.name,
                        extra={"package_id": record_path.stem})
            continue
        found.append((record.created_at, ScreenMovie(record.id, movie, record.title,
                                                     record.public)))
    found.sort(key=lambda pair: (pair[0], pair[1].package_id))
    return [movie for _, movie in found[-count:]]


@dataclass(slots=True)
class _Entry:
    movie: ScreenMovie | None  # None: the idle card
    entry_id: int


class MpvScreen(Screen):
    """The Screen that plays movies in a separate mpv process."""

    def __init__(self, socket: Path, movies_dir: Path, recent: int = 30,
                 idle_card: Path | None = None) -> None:
        self.socket = socket
        self.movies_dir = movies_dir
        self.recent = recent
        self.idle_card = idle_card
        self._loop: list[_Entry] = []  # mirrors mpv's playlist, in its order
        self._movies: list[ScreenMovie] = recent_movies(movies_dir, recent)
        self._broken: set[Path] = set()
        self._playing: int | None = None
        self._actions: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._ipc = MpvIpc(str(socket), on_event=lambda event: self._actions.put(("event", event)),
                           on_disconnect=lambda: self._actions.put(("gone", None)))
        self._thread = threading.Thread(target=self._run, name="screen", daemon=True)
        self._thread.start()

    # --- what the daemon and the operator call --------------------------------------------

    def show(self, movie: ScreenMovie) -> None:
        """Queue movie to play next (returns at once)."""
        self._actions.put(("show", movie))

    def call(self, what: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run what in the controller thread and return its result (operator commands)."""
        future: Future[Any] = Future()
        self._actions.put(("call", (what, future)))
        return future.result(timeout)

    def status(self) -> dict[str, Any]:
        """Report the connection, what plays and the loop (in mpv's order)."""
        report: dict[str, Any] = self.call(lambda: {
            "kind": "mpv", "socket": str(self.socket), "connected": self._ipc.connected,
            "playing": self._id_of(self._playing),
            "playlist": [e.movie.package_id if e.movie else "(idle card)" for e in self._loop],
            "recent": self.recent, "skipped": sorted(p.stem for p in self._broken)})
        return report

    def next(self) -> None:
        """Skip to the next movie in the loop."""
        self.call(lambda: self._ipc.command("playlist-next", "force"))

    def reload(self) -> int:
        """Rebuild the loop from the movies on disk and push it to mpv; return its length."""
        def reload() -> int:
            self._movies = [m for m in recent_movies(self.movies_dir, self.recent)
                            if m.path not in self._broken]
            self._push_all()
            return len(self._movies)
        return int(self.call(reload))

    def play(self, package_id: str) -> None:
        """Play package_id now (from the loop, or from disk if it left the loop)."""
        def play() -> None:
            index = next((i for i, e in enumerate(self._loop)
                          if e.movie and e.movie.package_id == package_id), None)
            if index is None:
                movie = next((m for m in recent_movies(self.movies_dir, 10_000)
                              if m.package_id == package_id), None)
                if movie is None:
                    raise KeyError(f"{package_id}: no such movie on this processor")
                self._insert_next(movie)
                index = self._current_index() + 1 if len(self._loop) > 1 else 0
            self._ipc.command("playlist-play-index", index)
        self.call(play)

    def close(self) -> None:
        """Stop the controller thread and close the socket (mpv keeps running)."""
        self._stop.set()
        self._actions.put(("stop", None))
        self._thread.join(timeout=5)
        self._ipc.close()

    # --- the controller thread ------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(BACKOFF_START, BACKOFF_MAX, rng=lambda: 1.0)  # a local socket
        while not self._stop.is_set():
            if not self._ipc.connected:
                try:
                    self._ipc.connect()
                    self._push_all()
                    log.info("connected to mpv at %s", self.socket)
                    backoff.reset()
                except (OSError, MpvError) as exc:
                    self._ipc.close()
                    if backoff.failures == 0:
                        log.warning("mpv is not answering at %s (%s); retrying", self.socket, exc)
                    self._drain(timeout=backoff.next_delay())
                    continue
            self._drain(timeout=1.0)

    def _drain(self, timeout: float) -> None:
        """Handle queued actions for up to timeout seconds."""
        try:
            kind, item = self._actions.get(timeout=timeout)
        except queue.Empty:
            return
        try:
            if kind == "show":
                self._add(item)
            elif kind == "event":
                self._on_event(item)
            elif kind == "gone":
                if not self._stop.is_set():
                    log.warning("lost mpv at %s; reconnecting", self.socket)
                    self._playing = None
            elif kind == "call":
                what, future = item
                try:
                    future.set_result(what())
                except Exception as exc:
                    future.set_exception(exc)
        except MpvDisconnected:
            self._ipc.close()  # reconnect, then push everything again
        except MpvError as exc:
            log.warning("mpv refused a command: %s", exc)

    def _add(self, movie: ScreenMovie) -> None:
        self._movies = [m for m in self._movies if m.package_id != movie.package_id] + [movie]
        log.info("to the big screen next", extra={"package_id": movie.package_id})
        if self._ipc.connected:
            self._insert_next(movie)
            self._prune()

    def _id_of(self, entry_id: int | None) -> str | None:
        entry = next((e for e in self._loop if e.entry_id == entry_id), None)
        return entry.movie.package_id if entry and entry.movie else None

    def _current_index(self) -> int:
        return next((i for i, e in enumerate(self._loop) if e.entry_id == self._playing), 0)

    def _load(self, path: Path, mode: str) -> int:
        data = self._ipc.command("loadfile", str(path), mode)
        return int(data["playlist_entry_id"]) if isinstance(data, dict) else -1

    def _insert_next(self, movie: ScreenMovie) -> None:
        """Put movie right after what plays now (or replace the idle card)."""
        self._loop = [e for e in self._loop if not (e.movie and
                                                    e.movie.package_id == movie.package_id)]
        self._sync_from_mpv()
        if not self._loop or self._loop[0].movie is None:
            self._loop = [_Entry(movie, self._load(movie.path, "replace"))]
            return
        entry = _Entry(movie, self._load(movie.path, "append"))
        target = self._current_index() + 1
        last = len(self._loop)
        if target < last:
            self._ipc.command("playlist-move", last, target)
        self._loop.insert(target, entry)

    def _prune(self) -> None:
        """Drop the oldest movies beyond `recent` from mpv's playlist (never the one playing)."""
        while len(self._movies) > self.recent:
            oldest = self._movies.pop(0)
            for index, entry in enumerate(self._loop):
                if entry.movie and entry.movie.package_id == oldest.package_id \
                        and entry.entry_id != self._playing:
                    self._ipc.command("playlist-remove", index)
                    del self._loop[index]
                    break

    def _drop_stale(self) -> None:
        """Remove entries pruned while they played, now that something else plays."""
        keep = {m.package_id for m in self._movies}
        for index in range(len(self._loop) - 1, -1, -1):
            entry = self._loop[index]
            if entry.movie and entry.movie.package_id not in keep \
                    and entry.entry_id != self._playing:
                self._ipc.command("playlist-remove", index)
                del self._loop[index]

    def _sync_from_mpv(self) -> None:
        """Make our mirror match mpv's playlist (mpv is the truth about its order)."""
        playlist = self._ipc.command("get_property", "playlist")
        by_id = {e.entry_id: e for e in self._loop}
        mirrored = []
        for item in playlist:
            entry = by_id.get(item.get("id"))
            if entry is not None:
                mirrored.append(entry)
            if item.get("current"):
                self._playing = item.get("id")
        self._loop = mirrored

    def _push_all(self) -> None:
        """Make mpv's playlist the loop: adopt it if it already is, else load it afresh."""
        self._ipc.command("set_property", "loop-playlist", "inf")
        wanted = [m for m in self._movies if m.path not in self._broken and m.path.exists()]
        playlist = self._ipc.command("get_property", "playlist")
        have = {item.get("filename"): item.get("id") for item in playlist}
        if wanted and len(playlist) == len(wanted) and all(str(m.path) in have for m in wanted):
            by_name = {str(m.path): m for m in wanted}
            self._loop = [_Entry(by_name[item["filename"]], item["id"]) for item in playlist]
            self._playing = next((i["id"] for i in playlist if i.get("current")), None)
            return
        self._loop, self._playing = [], None
        if not wanted:
            if self.idle_card is not None:
                self._loop = [_Entry(None, self._load(self.idle_card, "replace"))]
            else:
                self._ipc.command("stop")
            return
        for position, movie in enumerate(wanted):
            mode = "replace" if position == 0 else "append"
            self._loop.append(_Entry(movie, self._load(movie.path, mode)))
        log.info("pushed %d movies to mpv", len(wanted))

    def _on_event(self, event: Event) -> None:
        name = event.get("event")
        entry_id = event.get("playlist_entry_id")
        if name == "start-file":
            self._playing = entry_id
            self._drop_stale()
        elif name == "end-file" and event.get("reason") == "error":
            entry = next((e for e in self._loop if e.entry_id == entry_id), None)
            if entry is None or entry.movie is None:
                return
            movie = entry.movie
            log.error("mpv cannot play this movie (%s): skipped, not retried",
                      event.get("file_error", "error"), extra={"package_id": movie.package_id})
            self._broken.add(movie.path)
            self._movies = [m for m in self._movies if m.path != movie.path]
            self._sync_from_mpv()
            index = next((i for i, e in enumerate(self._loop) if e.entry_id == entry_id), None)
            if index is not None:
                self._ipc.command("playlist-remove", index)
                del self._loop[index]
