"""The big-screen controller against a real mpv on its IPC socket."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from moviepkg.ids import movie_code
from moviepkg.record import MovieRecord, poster_key, video_key
from processor.screen import ScreenMovie
from processor.screen.mpv import MpvScreen, mpv_args, recent_movies, save_idle_card
from tests.services import MpvProcess, require_binary, wait_until

pytestmark = pytest.mark.slow  # a real mpv in real time

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 3-second H.264 movie to copy under many names."""
    ffmpeg = require_binary("ffmpeg")
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x90:rate=10:duration=3", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
    return path


class Shelf:
    """A processor's movies folder: an MP4 and a record per movie."""

    def __init__(self, folder: Path, clip: Path) -> None:
        self.folder = folder
        self.clip = clip
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, broken: bool = False, public: bool = True) -> ScreenMovie:
        self.count += 1
        package_id = f"st-1-{name}"
        path = self.folder / f"{package_id}.mp4"
        if broken:
            path.write_bytes(b"this is not a movie")
        else:
            shutil.copy(self.clip, path)
        record = MovieRecord(id=package_id, code=movie_code(package_id), title=name,
                             station_id="st-1", created_at=T0 + timedelta(minutes=self.count),
                             duration_s=3.0, fps=10, frames=30, video=video_key(package_id),
                             poster=poster_key(package_id), public=public)
        (self.folder / f"{package_id}.json").write_bytes(record.to_json())
        return ScreenMovie(package_id, path, name, public)


@pytest.fixture
def shelf(tmp_path: Path, clip: Path) -> Shelf:
    return Shelf(tmp_path / "movies", clip)


@pytest.fixture
def mpv(tmp_path: Path) -> Iterator[MpvProcess]:
    with MpvProcess(tmp_path / "mpv") as process:
        yield process


@pytest.fixture
def screen_factory(tmp_path: Path, shelf: Shelf, mpv: MpvProcess) -> Iterator[
        type[MpvScreen]]:
    made: list[MpvScreen] = []
    idle = save_idle_card(tmp_path / "idle.png", "Test Festival", (320, 180))

    def make(recent: int = 30) -> MpvScreen:
        screen = MpvScreen(mpv.socket, shelf.folder, recent=recent, idle_card=idle)
        made.append(screen)
        return screen

    yield make  # type: ignore[misc]
    for screen in made:
        screen.close()


def names(paths: list[str]) -> list[str]:
    return [Path(p).stem.removeprefix("st-1-") for p in paths]


def current_index(mpv: MpvProcess) -> int:
    return next(i for i, item in enumerate(mpv.ask("get_property", "playlist"))
                if item.get("current"))


def test_mpv_args_for_the_tv() -> None:
    args = mpv_args(Path("/run/stopmo/mpv.sock"))
    assert "--input-ipc-server=/run/stopmo/mpv.sock" in args
    assert {"--fullscreen", "--idle=yes", "--osc=no", "--loop-playlist=inf",
            "--hwdec=auto-safe"} <= set(args)
    assert "--vo=null" in mpv_args(Path("/s"), fullscreen=False, vo="null")


def test_idle_card_then_appended_movies(screen_factory: type[MpvScreen], shelf: Shelf,
                                        mpv: MpvProcess, tmp_path: Path) -> None:
    screen = screen_factory()
    wait_until(lambda: mpv.playlist() == [str(tmp_path / "idle.png")], timeout=10,
               message="idle card")
    first = shelf.add("a")
    screen.show(first)
    wait_until(lambda: names(mpv.playlist()) == ["a"], timeout=10, message="a replaces idle")
    screen.show(shelf.add("b"))
    wait_until(lambda: len(mpv.playlist()) == 2, timeout=10, message="b appended")
    assert sorted(names(mpv.playlist())) == ["a", "b"]
    status = screen.status()
    assert status["connected"] and sorted(status["playlist"]) == ["st-1-a", "st-1-b"]


def test_a_new_movie_jumps_the_queue(screen_factory: type[MpvScreen], shelf: Shelf,
                                     mpv: MpvProcess) -> None:
    for name in "abcd":
        shelf.add(name)
    screen = screen_factory()  # the loop is rebuilt from the movies on disk
    wait_until(lambda: names(mpv.playlist()) == ["a", "b", "c", "d"], timeout=10,
               message="loop from disk")
    screen.show(shelf.add("new"))
    wait_until(lambda: "new" in names(mpv.playlist()), timeout=10, message="new movie")
    playlist = names(mpv.playlist())
    assert playlist.index("new") == current_index(mpv) + 1
    assert len(playlist) == 5


def test_old_movies_are_pruned(screen_factory: type[MpvScreen], shelf: Shelf,
                               mpv: MpvProcess) -> None:
    screen = screen_factory(recent=3)
    for name in "abcde":
        screen.show(shelf.add(name))
    # The one playing is never cut off; it goes once something else plays.
    wait_until(lambda: sorted(names(mpv.playlist())) == ["c", "d", "e"], timeout=20,
               message="three most recent")


def test_a_broken_file_is_skipped_not_retried(screen_factory: type[MpvScreen], shelf: Shelf,
                                              mpv: MpvProcess) -> None:
    screen = screen_factory()
    screen.show(shelf.add("good"))
    wait_until(lambda: names(mpv.playlist()) == ["good"], timeout=10, message="good")
    screen.show(shelf.add("broken", broken=True))
    wait_until(lambda: screen.status()["skipped"] == ["st-1-broken"], timeout=15,
               message="broken skipped")
    for _ in range(10):  # and it stays out while the loop goes round
        assert names(mpv.playlist()) == ["good"]
        time.sleep(0.3)
    assert screen.reload() == 1  # a reload from disk does not bring it back either...
    assert names(mpv.playlist()) == ["good"]


def test_mpv_killed_and_restarted_gets_the_loop_back(screen_factory: type[MpvScreen],
                                                     shelf: Shelf, mpv: MpvProcess) -> None:
    screen = screen_factory()
    for name in "xyz":
        screen.show(shelf.add(name))
    wait_until(lambda: sorted(names(mpv.playlist())) == ["x", "y", "z"], timeout=10,
               message="three")
    mpv.kill()
    wait_until(lambda: not screen.status()["connected"], timeout=10, message="noticed")
    mpv.start()
    assert mpv.playlist() == []  # a restarted mpv knows nothing
    wait_until(lambda: sorted(names(mpv.playlist())) == ["x", "y", "z"], timeout=15,
               message="loop pushed again")
    assert screen.status()["connected"]


def test_recent_movies_reads_records_and_skips_junk(shelf: Shelf) -> None:
    for name in "pqr":
        shelf.add(name, public=name != "q")
    (shelf.folder / "junk.json").write_text("{")
    (shelf.folder / "junk.mp4").write_text("x")
    movies = recent_movies(shelf.folder, 2)
    assert [(m.package_id, m.public) for m in movies] == [("st-1-q", False), ("st-1-r", True)]


def test_real_frames_are_rendered(tmp_path: Path, shelf: Shelf) -> None:
    """mpv with an image video output writes the frames it shows: our movie's pixels."""
    red = tmp_path / "red.mp4"
    subprocess.run([require_binary("ffmpeg"), "-v", "error", "-f", "lavfi", "-i",
                    "color=c=0xE03C32:size=320x180:rate=10:duration=2", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(red)], check=True, timeout=60)
    out = tmp_path / "frames"
    out.mkdir()
    with MpvProcess(tmp_path / "mpv-image", extra=[
            "--vo=image", "--vo-image-format=png", f"--vo-image-outdir={out}"]) as mpv:
        screen = MpvScreen(mpv.socket, shelf.folder, idle_card=None)
        try:
            screen.show(ScreenMovie("st-1-red", red, "red", True))
            wait_until(lambda: len(list(out.glob("*.png"))) >= 3, timeout=15,
                       message="frames written")
        finally:
            screen.close()
    frame = Image.open(sorted(out.glob("*.png"))[1]).convert("RGB")
    assert frame.size == (320, 180)
    r, g, b = frame.getpixel((160, 90))  # type: ignore[misc]
    assert abs(r - 0xE0) < 20 and abs(g - 0x3C) < 20 and abs(b - 0x32) < 20
