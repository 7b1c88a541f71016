"""Taking a movie down: off the store (folder and S3), the index and, unless kept, the screen."""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from moviepkg.commands import Command, parse_result
from moviepkg.ids import movie_code, new_package_id
from moviepkg.logs import setup_logging
from moviepkg.record import INDEX_PREFIX
from processor import cli, commands, report, takedown
from processor.daemon import Daemon
from processor.pipeline import Outcome, Pipeline
from processor.report import clock_time, package_line, pending_line, status_document
from processor.s3store import S3Store
from processor.screen import FakeScreen, read_fake_screen
from processor.state import PackageState, Step, TakedownList
from processor.store import FileStore, Store, StoreError
from processor.takedown import (
    AmbiguousCode,
    NoSuchMovie,
    OnTheList,
    TakenDown,
    find_movie,
    take_down,
)
from processor.telemetry import ProcessorTelemetry
from tests.listing import listed_ids
from tests.processor.conftest import add_package, daemon, daemon_env, running, state_of
from tests.processor.test_cli import base_env
from tests.services import S3Server, wait_until


@pytest.fixture(scope="module")
def shared_s3() -> Iterator[S3Server]:
    """One moto endpoint for the module; each test gets its own bucket."""
    with S3Server() as server:
        yield server


@pytest.fixture(params=["file", "s3"])
def unit(request: pytest.FixtureRequest, pipeline: Pipeline) -> Pipeline:
    """The pipeline, publishing to a folder store or to S3 (a bucket of its own, a prefix)."""
    if request.param == "file":
        return pipeline
    server: S3Server = request.getfixturevalue("shared_s3")
    bucket = f"stopmo-{uuid.uuid4().hex[:12]}"
    client = server.client()
    client.create_bucket(Bucket=bucket)
    return Pipeline(pipeline.settings, S3Store(bucket, "fest", client=client), pipeline.screen)


def publish(pipeline: Pipeline, minutes: int) -> str:
    package = add_package(pipeline.settings.inbox, minutes=minutes)
    outcome, state = pipeline.receive(package)
    assert outcome is None and state is not None
    assert pipeline.advance(package.name) is Outcome.PUBLISHED
    return package.name


def keys(store: Store) -> list[str]:
    """The store's movie objects, without the indexes."""
    return [key for key in store.list_keys("movies/") if not key.startswith(INDEX_PREFIX)]


def listening(pipeline: Pipeline) -> tuple[Pipeline, list[tuple[str, str, str]]]:
    """The same pipeline, telling its events to a list."""
    told: list[tuple[str, str, str]] = []
    return Pipeline(pipeline.settings, pipeline.store, pipeline.screen,
                    events=lambda *event: told.append(event)), told


def shown(pipeline: Pipeline) -> list[str]:
    """The movies handed to the fake big screen, in order."""
    assert pipeline.settings.screen_log is not None
    return [movie["package_id"] for movie in read_fake_screen(pipeline.settings.screen_log)]


def indexed(store: Store) -> list[str]:
    return listed_ids(store)


def test_take_down_removes_every_object_and_the_index_entry(unit: Pipeline) -> None:
    gone, stays = publish(unit, 1), publish(unit, 2)
    assert indexed(unit.store) == [stays, gone]
    done = take_down(unit, movie_code(gone).lower(), "ana")
    assert not done.already and done.package_id == gone and not done.keep_on_screen
    assert keys(unit.store) == sorted(f"movies/{stays}{suffix}" for suffix in
                                      (".jpg", ".json", ".mp4"))
    assert indexed(unit.store) == [stays]
    state = unit.states.load(gone)
    assert state is not None and state.taken_down and state.taken_down_by == "ana"
    assert not state.keep_on_screen and state.unpublished_at >= state.taken_down_at
    assert state.step is Step.DONE and state.status == "taken-down"
    [listed] = TakedownList(unit.settings.work_dir).entries()  # outlives the state file
    assert (listed.package_id, listed.code, listed.by, listed.keep_on_screen) == (
        gone, movie_code(gone), "ana", False)
    assert (listed.at, listed.unpublished_at) == (state.taken_down_at, state.unpublished_at)
    assert not list(unit.movies_dir.glob(f"{gone}.*"))  # the screen's copy, too
    assert (unit.movies_dir / f"{stays}.mp4").exists()
    tz = ZoneInfo(unit.settings.timezone)
    hhmm = datetime.fromtimestamp(state.taken_down_at, tz).strftime("%H:%M")
    again = take_down(unit, gone, "bob")
    assert again.already and again.describe(tz) == f"already taken down at {hhmm} by ana"
    assert unit.states.load(gone).taken_down_by == "ana"  # type: ignore[union-attr]


def test_keep_on_screen_keeps_the_halls_copy_only(unit: Pipeline) -> None:
    package_id = publish(unit, 1)
    done = take_down(unit, package_id, "ana", keep_on_screen=True)
    assert done.keep_on_screen
    assert "it stays on the big screen" in done.describe(ZoneInfo("UTC"))
    assert keys(unit.store) == [] and indexed(unit.store) == []
    assert sorted(p.suffix for p in unit.movies_dir.glob(f"{package_id}.*")) == [
        ".jpg", ".json", ".mp4"]
    assert isinstance(unit.screen, FakeScreen)
    assert unit.screen.reload() == 1  # still in the loop
    later = take_down(unit, package_id, "bob")  # and now off the screen, too
    assert later.already and later.off_screen_now and not later.keep_on_screen
    assert not list(unit.movies_dir.glob(f"{package_id}.*"))
    state = unit.states.load(package_id)
    assert state is not None and not state.keep_on_screen and state.taken_down_by == "ana"


def test_a_movie_waiting_to_publish_is_never_published_after(pipeline: Pipeline,
                                                              tmp_path: Path) -> None:
    root = tmp_path / "uplink" / "store"
    down = Pipeline(pipeline.settings, FileStore(root), pipeline.screen)
    package = add_package(pipeline.settings.inbox)
    _, state = down.receive(package)
    assert state is not None and down.advance(package.name) is Outcome.WAITING
    down.publisher.reload()  # the daemon's queue holds it
    take_down(down, movie_code(package.name), "ana")  # e.g. `processor unpublish`
    root.parent.mkdir()
    assert down.publisher.make_due() == []
    assert down.publisher.drain() == 0 and down.publisher.status().waiting == 0
    assert not root.exists() or keys(down.store) == []
    down.retry(package.name)  # even an operator's retry publishes nothing
    assert down.advance(package.name) is Outcome.SHOWN and keys(down.store) == []
    shown = read_fake_screen(pipeline.settings.screen_log)  # type: ignore[arg-type]
    assert [s["package_id"] for s in shown] == [package.name]  # it was, before


def test_a_movie_taken_down_before_it_is_encoded_is_never_shown_nor_published(
        pipeline: Pipeline) -> None:
    package = add_package(pipeline.settings.inbox)
    _, state = pipeline.receive(package)
    assert state is not None
    take_down(pipeline, package.name, "ana")
    assert pipeline.advance(package.name) is Outcome.SHOWN  # nothing left to do
    assert keys(pipeline.store) == []
    assert read_fake_screen(pipeline.settings.screen_log) == []  # type: ignore[arg-type]


def test_a_movie_only_the_store_knows_can_be_taken_down(unit: Pipeline) -> None:
    package_id = publish(unit, 1)
    unit.states.remove(package_id)  # a new install: no state, no local copy
    unit.remove_local_movie(package_id)
    done = take_down(unit, movie_code(package_id), "ana")
    assert done.package_id == package_id and not done.already
    assert keys(unit.store) == [] and indexed(unit.store) == []
    state = unit.states.load(package_id)
    assert state is not None and state.taken_down and state.publish
    with pytest.raises(NoSuchMovie, match="no movie st-1-20260501t100000z-ffff on this "):
        find_movie(unit, "st-1-20260501t100000z-ffff")


def test_a_movie_taken_down_before_it_arrives_is_never_shown_nor_published(
        pipeline: Pipeline, tmp_path: Path) -> None:
    unit, told = listening(pipeline)
    package = add_package(tmp_path / "outbox")  # still in its station's outbox
    code = movie_code(package.name)
    pending = take_down(unit, f"{code[:3].lower()}-{code[3:]}", "ana")
    assert isinstance(pending, OnTheList) and not pending.already
    tz = ZoneInfo(unit.settings.timezone)
    assert pending.describe(tz) == (
        f"no movie with code {code} here yet (it may still be at its station): it is on the "
        f"take-down list; when it arrives it is never published, nor shown")
    assert pending.data()["package_id"] is None and pending.data()["pending"] is True
    hhmm = clock_time(pending.listed.at, tz)
    again = take_down(unit, code, "bob")
    assert isinstance(again, OnTheList) and again.already
    assert f"it is on the take-down list since {hhmm} by ana; when" in again.describe(tz)
    assert told == []  # no package id to tell telemetry about yet
    takedowns = TakedownList(unit.settings.work_dir)
    document = status_document(unit.states.all(), unit.clock(), tz, takedowns.entries())
    assert document["taken_down_pending"] == [{
        "package_id": None, "code": code, "at": pending.listed.at, "at_local": hhmm,
        "by": "ana", "keep_on_screen": False, "store_checked": True}]
    assert pending_line(takedowns.entries()[0], tz) == (
        f"{code}  pending-take-down  at {hhmm} by ana: not here yet; when it arrives it is "
        f"never published, nor shown")

    arrived = unit.settings.inbox / package.name
    package.rename(arrived)  # the station is back online
    outcome, state = unit.receive(arrived)
    assert outcome is Outcome.SHOWN and state is not None and state.step is Step.DONE
    assert (state.taken_down_by, state.taken_down_at) == ("ana", pending.listed.at)
    assert not arrived.exists() and (unit.packages_dir / package.name).is_dir()  # taken in
    assert [kind for kind, _, _ in told] == ["received"]
    unit.publisher.reload()
    assert unit.publisher.status().waiting == 0 and unit.publisher.drain() == 0
    assert keys(unit.store) == [] and shown(unit) == []
    document = status_document(unit.states.all(), unit.clock(), tz, takedowns.entries())
    assert document["taken_down_pending"] == []
    assert [movie["package_id"] for movie in document["taken_down"]] == [package.name]
    later = take_down(unit, code, "bob")
    assert isinstance(later, TakenDown) and later.describe(tz) == (
        f"already taken down at {hhmm} by ana")


def test_kept_on_screen_before_it_arrives_it_is_shown_never_published(
        pipeline: Pipeline, tmp_path: Path) -> None:
    unit, told = listening(pipeline)
    package = add_package(tmp_path / "outbox")
    pending = take_down(unit, package.name, "ana", keep_on_screen=True)
    assert isinstance(pending, OnTheList) and pending.listed.package_id == package.name
    assert pending.describe(ZoneInfo("UTC")).endswith(
        "on the take-down list; when it arrives it is never published")
    assert told == [("taken_down", package.name, "by ana, not here yet: on the take-down list")]
    package.rename(unit.settings.inbox / package.name)
    outcome, state = unit.receive(unit.settings.inbox / package.name)
    assert outcome is None and state is not None and state.keep_on_screen
    assert unit.advance(package.name) is Outcome.SHOWN
    assert keys(unit.store) == [] and shown(unit) == [package.name]
    kinds = [kind for kind, _, _ in told]
    assert "on_screen" in kinds and "published" not in kinds


def test_a_take_down_goes_on_the_list_when_the_store_does_not_answer(
        pipeline: Pipeline, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    down = Pipeline(pipeline.settings, FileStore(blocked / "store"), pipeline.screen)
    package = add_package(tmp_path / "outbox")
    code = movie_code(package.name)
    with pytest.raises(StoreError):
        take_down(down, code, "ana")
    [listed] = TakedownList(pipeline.settings.work_dir).entries()
    assert (listed.code, listed.package_id, listed.by, listed.unpublished_at) == (
        code, "", "ana", 0.0)
    tz = ZoneInfo(pipeline.settings.timezone)
    assert pending_line(listed, tz).endswith(
        "; the store was NOT checked: take it down again once it answers")
    package.rename(pipeline.settings.inbox / package.name)
    outcome, state = down.receive(pipeline.settings.inbox / package.name)
    assert outcome is Outcome.SHOWN and state is not None and state.taken_down
    assert package_line(state, tz).endswith("NOT yet removed from the store: take it down again")
    again = take_down(pipeline, code, "bob")  # the store answers again
    assert isinstance(again, TakenDown) and again.already
    assert pipeline.states.load(package.name).unpublished_at > 0  # type: ignore[union-attr]


def test_a_state_made_again_after_a_crash_still_obeys_the_list(pipeline: Pipeline,
                                                                tmp_path: Path) -> None:
    package = add_package(tmp_path / "outbox")
    assert isinstance(take_down(pipeline, package.name, "ana"), OnTheList)
    os.rename(package, pipeline.packages_dir / package.name)  # taken in, killed at once
    [state] = pipeline.pending()
    assert not state.taken_down  # made from the package alone
    assert pipeline.advance(package.name) is Outcome.SHOWN
    state = pipeline.states.load(package.name)  # type: ignore[assignment]
    assert state.step is Step.DONE and state.taken_down_by == "ana"
    assert keys(pipeline.store) == [] and shown(pipeline) == []


def test_the_daemon_takes_in_a_movie_taken_down_before_it_came(pipeline: Pipeline,
                                                               tmp_path: Path) -> None:
    package = add_package(tmp_path / "outbox")
    with running(Daemon(pipeline)) as daemon:
        wait_until(lambda: pipeline.settings.control_socket.exists(), timeout=10,
                   message="the daemon up")
        now = datetime.now(UTC)
        said = commands.Commands(pipeline, daemon.accept).runner("processor").handle(Command(
            "c0ffee-0011", "take-down", "ana", now, now + timedelta(minutes=1),
            {"movie": movie_code(package.name)}).to_json())
        assert said is not None and parse_result(said).outcome == "done"
        package.rename(pipeline.settings.inbox / package.name)  # the station is back online
        wait_until(lambda: (pipeline.packages_dir / package.name).exists()
                   and state_of(tmp_path, package.name) == "done", timeout=20,
                   message="taken in")
        time.sleep(0.5)
    assert list(daemon.dispatched) == []  # never encoded
    assert keys(pipeline.store) == [] and shown(pipeline) == []
    assert pipeline.states.load(package.name).taken_down_by == "ana"  # type: ignore[union-attr]


def test_one_clock_for_take_downs_and_a_docstring_on_every_function() -> None:
    assert takedown.clock_time is report.clock_time is commands.clock_time
    assert not hasattr(commands, "_looks_like_id")
    for module in (takedown, commands, report, "processor/quarantine.py", "processor/state.py"):
        path = Path(module if isinstance(module, str) else str(module.__file__))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name != "__init__":
                assert ast.get_docstring(node), f"{path.name}: {node.name}"
    assert Daemon._take_accepted.__doc__ and cli._unpublish.__doc__


def test_a_code_shared_by_two_movies_needs_the_id(pipeline: Pipeline) -> None:
    seen: dict[str, str] = {}
    pair: tuple[str, str] | None = None
    for n in range(200_000):  # 29^6 codes: a collision turns up within some 30 000 ids
        package_id = new_package_id(f"st-{n // 65536 + 1}", datetime(2026, 5, 1, tzinfo=UTC),
                                    nonce=f"{n % 65536:04x}")
        code = movie_code(package_id)
        if code in seen:
            pair = (seen[code], package_id)
            break
        seen[code] = package_id
    assert pair is not None
    for package_id in pair:
        pipeline.states.save(PackageState(package_id, Step.DONE, publish=True), 0.0)
    with pytest.raises(AmbiguousCode, match=r"2 movies have the code .*give the package id"):
        find_movie(pipeline, movie_code(pair[0]))
    assert find_movie(pipeline, pair[1]).package_id == pair[1]


def test_status_and_telemetry_list_taken_down_movies(pipeline: Pipeline) -> None:
    package_id = publish(pipeline, 1)
    take_down(pipeline, package_id, "ana", keep_on_screen=True)
    tz = ZoneInfo(pipeline.settings.timezone)
    state = pipeline.states.load(package_id)
    assert state is not None
    hhmm = datetime.fromtimestamp(state.taken_down_at, tz).strftime("%H:%M")
    assert package_line(state, tz) == (f"{package_id}  taken-down  at {hhmm} by ana, still "
                                       f"on the big screen")
    document = status_document(pipeline.states.all(), state.taken_down_at, tz)
    assert document["packages"] == {"taken-down": 1}
    assert document["taken_down"] == [{
        "package_id": package_id, "code": movie_code(package_id), "at": state.taken_down_at,
        "at_local": hhmm, "by": "ana", "keep_on_screen": True, "removed_from_store": True}]
    telemetry = ProcessorTelemetry(pipeline.settings)
    telemetry.pipeline = pipeline
    assert telemetry.processor_fields()["taken_down"] == 1


def test_every_line_about_a_movie_carries_its_id(pipeline: Pipeline, tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = setup_logging("processor", logging.INFO, stream=stream, json_lines=True)
    try:
        root = tmp_path / "uplink" / "store"
        down = Pipeline(pipeline.settings, FileStore(root), pipeline.screen)
        package = add_package(pipeline.settings.inbox)
        _, state = down.receive(package)
        assert state is not None
        for _ in range(pipeline.settings.max_attempts):
            down.failed(state, OSError("disk on fire"))
        down.retry(package.name)
        assert down.advance(package.name) is Outcome.WAITING
        root.parent.mkdir()
        down.publisher.make_due()
        assert down.publisher.drain() == 1
        take_down(down, package.name, "ana")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    about = [line for line in lines if line["logger"].startswith("stopmo.processor")]
    assert len(about) >= 10
    assert [line["msg"] for line in about if line.get("package_id") != package.name] == []


def unpublish(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "processor", "unpublish", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_unpublish_command(tmp_path: Path) -> None:
    env = base_env(tmp_path, USER="ana")
    package = add_package(tmp_path / "elsewhere")
    done = subprocess.run([sys.executable, "-m", "processor", "process", str(package)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout == "published\n", done.stderr
    code, store = movie_code(package.name), tmp_path / "work" / "store" / "movies"
    kept = unpublish(code.lower(), "--keep-on-screen", env=env)
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout == (f"taken down: {package.name} (code {code}) is off the website and "
                           f"the store; it stays on the big screen\n")
    assert sorted(p.name for p in store.iterdir()) in ([], ["index"])
    assert listed_ids(store.parent) == []
    assert (tmp_path / "work" / "movies" / f"{package.name}.mp4").exists()
    state = json.loads((tmp_path / "work" / "state" / f"{package.name}.json").read_text())
    assert state["taken_down_by"] == "ana" and state["keep_on_screen"] is True
    again = unpublish(package.name, "--by", "bob", env=env)
    assert again.returncode == 0 and again.stdout.startswith("already taken down at ")
    assert again.stdout.rstrip().endswith(" by ana; now off the big screen too")
    assert not (tmp_path / "work" / "movies" / f"{package.name}.mp4").exists()
    unknown = "7AXKMY" if code != "7AXKMY" else "7AXKMZ"
    missing = unpublish(unknown, env=env)
    assert missing.returncode == 0, missing.stderr
    assert missing.stdout == (f"no movie with code {unknown} here yet (it may still be at its "
                              f"station): it is on the take-down list; when it arrives it is "
                              f"never published, nor shown\n")
    nonsense = unpublish("hello world!", env=env)
    assert (nonsense.returncode, nonsense.stdout) == (5, "")
    assert nonsense.stderr.strip() == "unpublish: 'hello world!' is neither a movie code nor " \
                                      "a package id"
    status = subprocess.run([sys.executable, "-m", "processor", "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert f"{package.name}  taken-down  at " in status.stdout
    assert " by ana" in status.stdout
    assert f"\n{unknown}  pending-take-down  at " in status.stdout


def test_unpublish_before_the_movie_arrives(tmp_path: Path) -> None:
    env = base_env(tmp_path, USER="ana")
    package = add_package(tmp_path / "elsewhere")
    early = unpublish(package.name, "--keep-on-screen", env=env)
    assert early.returncode == 0, early.stderr
    assert early.stdout == (f"no movie {package.name} here yet (it may still be at its "
                            f"station): it is on the take-down list; when it arrives it is "
                            f"never published\n")

    def status() -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "processor", "status", "--json"], env=env,
                              capture_output=True, text=True, timeout=60)
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    [pending] = status()["taken_down_pending"]
    assert {key: pending[key] for key in ("package_id", "code", "by", "keep_on_screen",
                                          "store_checked")} == {
        "package_id": package.name, "code": movie_code(package.name), "by": "ana",
        "keep_on_screen": True, "store_checked": True}
    done = subprocess.run([sys.executable, "-m", "processor", "process", str(package)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout == "shown\n", done.stderr
    store = tmp_path / "work" / "store" / "movies"
    assert not store.exists() or not list(store.glob(f"{package.name}.*"))
    assert (tmp_path / "work" / "movies" / f"{package.name}.mp4").exists()  # the hall's
    after = status()
    assert after["taken_down_pending"] == []
    assert [movie["package_id"] for movie in after["taken_down"]] == [package.name]


@pytest.mark.slow  # the daemon waits for an uplink to come back
def test_unpublish_beside_a_running_daemon(tmp_path: Path) -> None:
    uplink = tmp_path / "uplink"
    env = daemon_env(tmp_path, (uplink / "store").as_uri(), {"STOPMO_OUTPUT_SIZE": "640x360",
                                                             "USER": "ana"})
    first, second = (add_package(tmp_path / "inbox", minutes=m).name for m in (1, 2))

    def screen_status() -> dict[str, object]:
        done = subprocess.run([sys.executable, "-m", "processor", "screen", "status"],
                              env=env, capture_output=True, text=True, timeout=60)
        return json.loads(done.stdout) if done.returncode == 0 else {}

    with daemon(env, tmp_path / "daemon.log"):
        wait_until(lambda: state_of(tmp_path, first) == state_of(tmp_path, second) == "shown",
                   timeout=60, message="both on screen, waiting to publish")
        wait_until(lambda: screen_status().get("playlist") == [first, second], timeout=10,
                   message="both in the loop")
        taken = unpublish(movie_code(first), env=env)
        assert taken.returncode == 0 and taken.stdout.startswith(f"taken down: {first}"), \
            taken.stderr
        assert screen_status()["playlist"] == [second]  # the daemon's screen reloaded
        uplink.mkdir()  # the uplink is back: the queue drains, without the movie taken down
        wait_until(lambda: state_of(tmp_path, second) == "done", timeout=60,
                   message="the other one published")
    published = sorted(p.name for p in (uplink / "store" / "movies").iterdir())
    assert published == sorted(["index", *(f"{second}{s}" for s in (".jpg", ".json", ".mp4"))])
    assert listed_ids(uplink / "store") == [second]
    state = json.loads((tmp_path / "work" / "state" / f"{first}.json").read_text())
    assert state["step"] == "done" and state["taken_down_by"] == "ana"
    assert state["published_at"] == 0
