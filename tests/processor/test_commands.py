"""The operators' commands on the processing unit, each through its runner, on a real pipeline."""

from __future__ import annotations

import ctypes
import os
import random
import secrets
import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moviepkg.commands import Command, CommandRunner, parse_result
from moviepkg.ids import movie_code
from processor.commands import Commands, answered_file
from processor.daemon import Daemon
from processor.pipeline import Outcome, Pipeline
from processor.screen import FakeScreen, NullScreen
from processor.screen.mpv import MpvScreen
from processor.state import Step, TakedownList
from processor.store import FileStore
from tests.processor.conftest import add_package, running
from tests.services import MpvProcess, wait_until

Told = list[tuple[str, str, str]]


class Unit:
    """A pipeline with its commands, telling its events to a list and its queue to another."""

    def __init__(self, pipeline: Pipeline, store: FileStore | None = None,
                 screen: Any = None) -> None:
        self.told: Told = []
        self.queued: list[str] = []
        self.pipeline = Pipeline(pipeline.settings, store or pipeline.store,
                                 screen or pipeline.screen, rng=random.Random(5),
                                 events=lambda *event: self.told.append(event))
        self.commands = Commands(self.pipeline, self.queued.append)
        self.runners = {program: self.commands.answering(program)
                        for program in ("processor", "screen")}

    def send(self, name: str, program: str = "processor", **args: Any) -> tuple[str, str]:
        """Send one command as the console would; return (outcome, detail)."""
        outcome, detail, _ = self.send_full(name, program, **args)
        return outcome, detail

    def send_full(self, name: str, program: str = "processor",
                  **args: Any) -> tuple[str, str, dict[str, Any]]:
        now = datetime.now(UTC)
        command = Command(secrets.token_hex(8), name, "ana", now, now + timedelta(minutes=5),
                          args)
        said = self.runners[program](command.to_json())
        assert said is not None
        result = parse_result(said)
        return result.outcome, result.detail, result.data

    def take(self, entry: Path, publish: bool = True) -> Outcome:
        outcome, state = self.pipeline.receive(entry)
        assert outcome is None and state is not None
        return self.pipeline.advance(state.package_id, publish=publish)

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.told]


IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x80, 0x100, 0x200


class Inotify:
    """The kernel's inotify(7) on some folders: what happened in them, in the order it did."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        self.folders: dict[int, str] = {}

    def watch(self, folder: Path, mask: int) -> None:
        """Report these events in folder (by the folder's name)."""
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(folder), mask)
        assert wd >= 0, os.strerror(ctypes.get_errno())
        self.folders[wd] = folder.name

    def events(self) -> list[tuple[str, str]]:
        """(folder, name) of every event so far, oldest first."""
        data = b""
        while True:
            try:
                data += os.read(self.fd, 65536)
            except BlockingIOError:
                break
        seen, offset = [], 0
        while offset < len(data):
            wd, _, _, length = struct.unpack_from("iIII", data, offset)
            name = data[offset + 16:offset + 16 + length].rstrip(b"\0").decode()
            seen.append((self.folders[wd], name))
            offset += 16 + length
        return seen

    def close(self) -> None:
        """Stop watching."""
        os.close(self.fd)


def down_store(tmp_path: Path) -> FileStore:
    """A folder store that does not answer (its parent is missing) until its parent is made."""
    return FileStore(tmp_path / "uplink" / "store")


def test_retry_a_failed_package_refuses_the_others(pipeline: Pipeline, tmp_path: Path) -> None:
    unit = Unit(pipeline, store=down_store(tmp_path))
    failing = add_package(pipeline.settings.inbox, minutes=1)
    _, state = unit.pipeline.receive(failing)
    assert state is not None
    for _ in range(pipeline.settings.max_attempts):
        unit.pipeline.failed(state, OSError("disk on fire"))
    assert unit.pipeline.states.load(failing.name).gave_up  # type: ignore[union-attr]
    outcome, detail = unit.send("retry", package_id=failing.name)
    assert outcome == "done", detail
    assert detail == f"{failing.name} tries again now (it failed: OSError: disk on fire)"
    assert unit.queued == [failing.name]  # straight into the daemon's queue
    again = unit.pipeline.states.load(failing.name)
    assert again is not None and not again.gave_up and again.attempts == 0
    assert unit.told[-1][:2] == ("retried", failing.name) and "(by ana)" in unit.told[-1][2]

    waiting = add_package(pipeline.settings.inbox, minutes=2)
    assert unit.take(waiting) is Outcome.WAITING
    assert unit.send("retry", package_id=waiting.name) == (
        "refused", f"{waiting.name} is not failed: it is waiting to publish")
    assert unit.send("retry", package_id="st-1-20260501t100000z-ffff") == (
        "refused", "no package st-1-20260501t100000z-ffff on this processing unit")
    assert unit.send("retry", package_id="../../etc/passwd")[0] == "refused"
    assert unit.send("retry") == ("refused", "retry needs package id")
    assert unit.queued == [failing.name]


def test_release_and_delete_quarantined_entries(pipeline: Pipeline) -> None:
    unit = Unit(pipeline)
    inbox, quarantine = pipeline.settings.inbox, pipeline.settings.quarantine_dir
    package = add_package(inbox, frames=4)
    (package / "0002.jpg").write_bytes(b"not a jpeg")
    assert unit.pipeline.receive(package)[0] is Outcome.QUARANTINED
    reason = (quarantine / package.name / "REASON").read_text().strip()
    assert "0002.jpg" in reason

    outcome, detail, data = unit.send_full("release", entry=package.name)
    assert outcome == "done", detail
    assert detail == (f"{package.name} is back in the inbox for another try (it was "
                      f"quarantined: {reason})")
    assert data == {"reason": reason, "entry": package.name}
    assert (inbox / package.name / "MANIFEST").exists()
    assert not (inbox / package.name / "REASON").exists()  # it would fail the package
    assert not (quarantine / package.name).exists()
    assert unit.pipeline.states.load(package.name) is None  # looked at afresh
    assert unit.told[-1][:2] == ("released", package.name)
    # Another try: still broken, so quarantined again, with the same reason.
    assert unit.pipeline.receive(inbox / package.name)[0] is Outcome.QUARANTINED

    outcome, detail = unit.send("delete", entry=package.name)
    assert (outcome, detail) == ("done", f"{package.name} is deleted for good (it was "
                                         f"quarantined: {reason})")
    assert not (quarantine / package.name).exists()
    assert unit.pipeline.states.load(package.name) is None
    assert unit.kinds()[-1] == "deleted"

    stray = inbox / "notes.txt"  # not a package at all: a file, set aside in a folder
    stray.write_text("hello\n")
    assert unit.pipeline.receive(stray)[0] is Outcome.QUARANTINED
    told = len(unit.told)
    assert unit.send("release", entry="notes.txt")[0] == "done"
    assert stray.read_text() == "hello\n" and not (quarantine / "notes.txt").exists()
    assert len(unit.told) == told  # no movie: no event


def test_release_refuses_what_is_not_an_entry_or_would_be_a_duplicate(
        pipeline: Pipeline) -> None:
    unit = Unit(pipeline)
    quarantine = pipeline.settings.quarantine_dir
    done = add_package(pipeline.settings.inbox)
    assert unit.take(done) is Outcome.PUBLISHED
    (quarantine / done.name).mkdir()  # a second, bad copy of a movie already done
    (quarantine / done.name / "REASON").write_text("MANIFEST: not JSON\n")
    assert unit.send("release", entry=done.name) == (
        "refused", f"{done.name} is done already: this copy would only be set aside as a "
                   f"duplicate; delete it instead")
    assert unit.send("delete", entry=done.name)[0] == "done"
    assert unit.pipeline.states.load(done.name) is not None  # the movie itself stays done
    (pipeline.settings.work_dir / "secret").mkdir()
    for name, words in (("../secret", "is not an entry of the quarantine"),
                        ("..", "is not an entry of the quarantine"),
                        (".hidden", "is not an entry of the quarantine"),
                        ("a/b", "is not an entry of the quarantine"),
                        ("nope", "nothing called 'nope' is in the quarantine")):
        for command in ("release", "delete"):
            outcome, detail = unit.send(command, entry=name)
            assert outcome == "refused" and words in detail, (command, name, detail)
    assert (pipeline.settings.work_dir / "secret").is_dir()


def test_a_quarantined_movie_taken_down_stays_down_after_release(pipeline: Pipeline) -> None:
    unit = Unit(pipeline)
    inbox = pipeline.settings.inbox
    package = add_package(inbox)
    unit.pipeline.quarantine(package, "held back for a look")
    assert unit.send("take-down", movie=movie_code(package.name))[0] == "done"
    state = unit.pipeline.states.load(package.name)
    assert state is not None and state.step is Step.QUARANTINED and state.taken_down
    assert unit.send("release", entry=package.name)[0] == "done"
    assert unit.pipeline.states.load(package.name) is None  # looked at afresh
    outcome, state = unit.pipeline.receive(inbox / package.name)
    assert outcome is Outcome.SHOWN and state is not None and state.step is Step.DONE
    assert state.taken_down_by == "ana" and not state.keep_on_screen
    assert unit.pipeline.store.list_keys("movies/") in ([], ["movies/index.json"])
    assert pipeline.settings.screen_log is not None and not pipeline.settings.screen_log.exists()
    assert "published" not in unit.kinds() and "on_screen" not in unit.kinds()


def test_delete_keeps_the_take_down_for_a_copy_that_arrives_later(pipeline: Pipeline,
                                                                   tmp_path: Path) -> None:
    unit = Unit(pipeline)
    package = add_package(tmp_path / "outbox")
    unit.pipeline.quarantine(package, "held back for a look", keep=True)  # the station keeps it
    assert unit.send("take-down", movie=package.name)[0] == "done"
    assert unit.send("delete", entry=package.name)[0] == "done"
    assert unit.pipeline.states.load(package.name) is None
    [listed] = TakedownList(pipeline.settings.work_dir).entries()
    assert (listed.package_id, listed.by) == (package.name, "ana")
    package.rename(pipeline.settings.inbox / package.name)  # delivered once more
    outcome, state = unit.pipeline.receive(pipeline.settings.inbox / package.name)
    assert outcome is Outcome.SHOWN and state is not None and state.taken_down_by == "ana"
    assert "published" not in unit.kinds()


def test_a_take_down_only_in_a_quarantined_state_survives_release_and_a_new_copy(
        pipeline: Pipeline, tmp_path: Path) -> None:
    unit = Unit(pipeline)
    inbox = pipeline.settings.inbox
    released, copied = add_package(inbox, minutes=1), add_package(tmp_path / "outbox", minutes=2)
    for package in (released, copied):  # state files from before the take-down list
        unit.pipeline.quarantine(package, "held back for a look", keep=package is copied)
        state = unit.pipeline.states.load(package.name)
        assert state is not None
        state.taken_down_at, state.taken_down_by = 1.8e9, "ana"
        unit.pipeline.states.save(state, 1.8e9)
    assert unit.send("release", entry=released.name)[0] == "done"
    copied.rename(inbox / copied.name)  # a second delivery; its first copy stays quarantined
    for package in (released, copied):
        outcome, state = unit.pipeline.receive(inbox / package.name)
        assert outcome is Outcome.SHOWN and state is not None, package.name
        assert (state.taken_down_at, state.taken_down_by) == (1.8e9, "ana")
    assert unit.pipeline.store.list_keys("movies/") == []


def test_release_forgets_the_state_before_the_entry_reaches_the_inbox(
        pipeline: Pipeline) -> None:
    unit = Unit(pipeline)
    package = add_package(pipeline.settings.inbox)
    unit.pipeline.quarantine(package, "held back for a look")
    watch = Inotify()
    try:
        watch.watch(unit.pipeline.states.folder, IN_DELETE)
        watch.watch(pipeline.settings.inbox, IN_CREATE | IN_MOVED_TO)
        assert unit.send("release", entry=package.name)[0] == "done"
        seen = watch.events()
    finally:
        watch.close()
    # A daemon may take the entry in the moment it appears: its state is gone by then.
    assert seen.index(("state", f"{package.name}.json")) < seen.index(("inbox", package.name))


def test_publish_now_makes_the_waiting_movies_due(pipeline: Pipeline, tmp_path: Path) -> None:
    store = down_store(tmp_path)
    unit = Unit(pipeline, store=store)
    first, second = (add_package(pipeline.settings.inbox, minutes=m) for m in (1, 2))
    assert unit.take(first) is Outcome.WAITING and unit.take(second) is Outcome.WAITING
    assert unit.kinds().count("publish_failed") == 2
    failed = next(told for told in unit.told if told[0] == "publish_failed")
    assert "parent folder does not exist" in failed[2] and "next at" in failed[2]
    assert all(unit.pipeline.states.load(p.name).next_attempt_at > 0  # type: ignore[union-attr]
               for p in (first, second))
    unit.pipeline.publisher.wake.clear()
    assert unit.send("publish-now") == ("done", "2 movies waiting to publish are due now")
    assert unit.pipeline.publisher.wake.is_set()
    assert all(unit.pipeline.states.load(p.name).next_attempt_at == 0  # type: ignore[union-attr]
               for p in (first, second))
    assert unit.send("publish-now", package_id=second.name) == (
        "done", "1 movie waiting to publish is due now")
    assert unit.send("publish-now", package_id="st-1-20260501t100000z-ffff")[1] == \
        "no package st-1-20260501t100000z-ffff on this processing unit"
    store.root.parent.mkdir()  # the uplink is back
    assert unit.pipeline.publisher.drain() == 2
    assert unit.send("publish-now") == ("refused", "no movie is waiting to publish")
    assert unit.send("publish-now", package_id=first.name) == (
        "refused", f"{first.name} is not waiting to publish: it is done")


def test_take_down_by_code_then_again_and_unknown_codes(pipeline: Pipeline) -> None:
    unit = Unit(pipeline)
    package = add_package(pipeline.settings.inbox)
    assert unit.take(package) is Outcome.PUBLISHED
    code = movie_code(package.name)
    typed = f"{code[:3].lower()}-{code[3:].lower()}"
    outcome, detail, data = unit.send_full("take-down", movie=typed)
    assert outcome == "done", detail
    assert detail == (f"taken down: {package.name} (code {code}) is off the website and the "
                      f"store; off the big screen too")
    assert data["package_id"] == package.name and data["taken_down_by"] == "ana"
    assert unit.told[-1] == ("taken_down", package.name, "by ana")
    assert unit.pipeline.store.get_bytes(f"movies/{package.name}.mp4") is None
    state = unit.pipeline.states.load(package.name)
    assert state is not None and state.taken_down_by == "ana"
    hhmm = datetime.fromtimestamp(state.taken_down_at, unit.commands.tz).strftime("%H:%M")
    assert unit.send("take-down", movie=code) == ("done",
                                                  f"already taken down at {hhmm} by ana")
    assert unit.kinds().count("taken_down") == 1
    unknown = "7AXKMY" if code != "7AXKMY" else "7AXKMZ"
    assert unit.send("take-down", movie=unknown) == (
        "done", f"no movie with code {unknown} here yet (it may still be at its station): it "
                f"is on the take-down list; when it arrives it is never published, nor shown")
    assert unit.send("take-down", movie="hello world!") == (
        "refused", "'hello world!' is neither a movie code nor a package id")
    assert unit.send("take-down") == ("refused", "take-down needs movie")


def test_screen_commands_on_the_pipelines_screen(pipeline: Pipeline) -> None:
    unit = Unit(pipeline)
    first, second = (add_package(pipeline.settings.inbox, minutes=m) for m in (1, 2))
    for package in (first, second):
        assert unit.take(package) is Outcome.PUBLISHED
    assert isinstance(unit.pipeline.screen, FakeScreen)
    assert unit.send("next", "screen") == ("done", "skipped to the next movie")
    assert unit.pipeline.screen.status()["playing"] == first.name
    assert unit.send("play", "screen", package_id=second.name) == ("done",
                                                                   f"{second.name} plays now")
    assert unit.pipeline.screen.status()["playing"] == second.name
    assert unit.send("reload", "screen") == ("done", "the loop has 2 movies")
    assert unit.send("play", "screen", package_id="st-9-20260501t100000z-0000") == (
        "refused", "no movie st-9-20260501t100000z-0000 on this processing unit")
    assert unit.send("take-down", movie=first.name)[0] == "done"
    assert unit.pipeline.screen.status()["playlist"] == [second.name]  # reloaded
    outcome, detail = unit.send("play", "screen", package_id=first.name)
    assert outcome == "refused" and "was taken down at" in detail and "by ana" in detail
    assert unit.send("retry", "screen", package_id=first.name) == (
        "refused", "this program does not know 'retry'")

    blind = Unit(pipeline, screen=NullScreen())
    for name in ("next", "reload"):
        assert blind.send(name, "screen") == (
            "refused", "no big screen is attached to this processing unit")


def test_each_program_remembers_its_answers_in_the_work_dir(pipeline: Pipeline) -> None:
    unit = Unit(pipeline)
    now = datetime.now(UTC)
    command = Command("c0ffee-0042", "reload", "ana", now, now + timedelta(minutes=1))
    first = unit.runners["screen"](command.to_json())
    again = CommandRunner(unit.commands.handlers("screen"),
                          answered_file(pipeline.settings.work_dir, "screen"))
    assert again.handle(command.to_json()) == first
    assert (pipeline.settings.work_dir / "commands" / "screen.json").exists()
    assert not (pipeline.settings.work_dir / "commands" / "processor.json").exists()


def test_a_taken_down_waiting_movie_in_the_daemons_queue_stays_unpublished(
        pipeline: Pipeline, tmp_path: Path) -> None:
    store = down_store(tmp_path)
    unit = Unit(pipeline, store=store)
    package = add_package(pipeline.settings.inbox)
    assert unit.take(package) is Outcome.WAITING
    assert unit.send("take-down", movie=package.name, keep_on_screen=True)[0] == "done"
    state = unit.pipeline.states.load(package.name)
    assert state is not None and state.step is Step.DONE and state.keep_on_screen
    store.root.parent.mkdir()
    unit.pipeline.publisher.make_due()
    assert unit.pipeline.publisher.drain() == 0
    assert store.list_keys("movies/") in ([], ["movies/index.json"])
    assert (unit.pipeline.movies_dir / f"{package.name}.mp4").exists()  # the hall keeps it


@pytest.mark.slow  # a real mpv
def test_a_take_down_leaves_a_real_mpvs_loop(pipeline: Pipeline, tmp_path: Path) -> None:
    mpv = MpvProcess(tmp_path / "mpv").start()
    screen = MpvScreen(mpv.socket, pipeline.movies_dir)
    try:
        unit = Unit(pipeline, screen=screen)
        made = [add_package(pipeline.settings.inbox, minutes=m).name for m in (1, 2)]
        for package_id in made:
            assert unit.take(pipeline.settings.inbox / package_id) is Outcome.PUBLISHED

        def on_mpv() -> list[str]:
            return sorted(Path(name).stem for name in mpv.playlist())
        wait_until(lambda: on_mpv() == made, timeout=15, message="both on mpv")
        assert unit.send("play", "screen", package_id=made[0]) == ("done",
                                                                   f"{made[0]} plays now")
        assert unit.send("take-down", movie=made[0])[0] == "done"
        wait_until(lambda: on_mpv() == [made[1]], timeout=15, message="taken off mpv")
        assert unit.send("reload", "screen") == ("done", "the loop has 1 movie")
        mpv.stop()
        wait_until(lambda: not screen.status()["connected"], timeout=10, message="mpv gone")
        assert unit.send("next", "screen") == ("refused",
                                               "the big screen is off: mpv does not answer")
    finally:
        screen.close()
        mpv.stop()


def test_the_daemon_takes_a_retried_package_at_once(pipeline: Pipeline) -> None:
    package = add_package(pipeline.settings.inbox)
    _, state = pipeline.receive(package)
    assert state is not None
    for _ in range(pipeline.settings.max_attempts):
        pipeline.failed(state, OSError("disk on fire"))
    with running(Daemon(pipeline)) as daemon:
        wait_until(lambda: pipeline.settings.control_socket.exists(), timeout=10,
                   message="the daemon up")
        time.sleep(0.5)
        assert pipeline.states.load(package.name).gave_up  # type: ignore[union-attr]
        assert list(daemon.dispatched) == []  # a failed package waits for an operator
        said = Commands(pipeline, daemon.accept).runner("processor").handle(Command(
            "c0ffee-0007", "retry", "ana", datetime.now(UTC),
            datetime.now(UTC) + timedelta(minutes=1), {"package_id": package.name}).to_json())
        assert said is not None and parse_result(said).outcome == "done"
        wait_until(lambda: pipeline.states.load(package.name).step  # type: ignore[union-attr]
                   is Step.DONE, timeout=20, message="encoded and published")
        assert list(daemon.dispatched) == [package.name]
