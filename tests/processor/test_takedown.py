"""Taking a movie down: off the store (folder and S3), the index and, unless kept, the screen."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from moviepkg.ids import movie_code, new_package_id
from moviepkg.logs import setup_logging
from moviepkg.record import INDEX_KEY, parse_index
from processor.pipeline import Outcome, Pipeline
from processor.report import package_line, status_document
from processor.s3store import S3Store
from processor.screen import FakeScreen, read_fake_screen
from processor.state import PackageState, Step
from processor.store import FileStore, Store
from processor.takedown import AmbiguousCode, NoSuchMovie, find_movie, take_down
from processor.telemetry import ProcessorTelemetry
from tests.processor.conftest import add_package, daemon, daemon_env, state_of
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
    return store.list_keys("movies/")


def indexed(store: Store) -> list[str]:
    data = store.get_bytes(INDEX_KEY)
    return [m.id for m in parse_index(data).movies] if data else []


def test_take_down_removes_every_object_and_the_index_entry(unit: Pipeline) -> None:
    gone, stays = publish(unit, 1), publish(unit, 2)
    assert indexed(unit.store) == [stays, gone]
    done = take_down(unit, movie_code(gone).lower(), "ana")
    assert not done.already and done.package_id == gone and not done.keep_on_screen
    assert keys(unit.store) == sorted([INDEX_KEY, *(f"movies/{stays}{suffix}" for suffix in
                                                    (".jpg", ".json", ".mp4"))])
    assert indexed(unit.store) == [stays]
    state = unit.states.load(gone)
    assert state is not None and state.taken_down and state.taken_down_by == "ana"
    assert not state.keep_on_screen and state.unpublished_at >= state.taken_down_at
    assert state.step is Step.DONE and state.status == "taken-down"
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
    assert keys(unit.store) in ([], [INDEX_KEY]) and indexed(unit.store) == []
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
    assert keys(unit.store) in ([], [INDEX_KEY]) and indexed(unit.store) == []
    state = unit.states.load(package_id)
    assert state is not None and state.taken_down and state.publish
    with pytest.raises(NoSuchMovie, match="no movie st-1-20260501t100000z-ffff on this "):
        take_down(unit, "st-1-20260501t100000z-ffff", "ana")


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
    assert sorted(p.name for p in store.iterdir()) == ["index.json"]
    assert (tmp_path / "work" / "movies" / f"{package.name}.mp4").exists()
    state = json.loads((tmp_path / "work" / "state" / f"{package.name}.json").read_text())
    assert state["taken_down_by"] == "ana" and state["keep_on_screen"] is True
    again = unpublish(package.name, "--by", "bob", env=env)
    assert again.returncode == 0 and again.stdout.startswith("already taken down at ")
    assert again.stdout.rstrip().endswith(" by ana; now off the big screen too")
    assert not (tmp_path / "work" / "movies" / f"{package.name}.mp4").exists()
    unknown = "7AXKMY" if code != "7AXKMY" else "7AXKMZ"
    missing = unpublish(unknown, env=env)
    assert (missing.returncode, missing.stdout) == (5, "")
    assert missing.stderr.strip() == f"unpublish: no movie with code {unknown} on this " \
                                     f"processing unit"
    status = subprocess.run([sys.executable, "-m", "processor", "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert f"{package.name}  taken-down  at " in status.stdout
    assert " by ana" in status.stdout


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
    assert published == sorted(["index.json", *(f"{second}{s}" for s in (".jpg", ".json",
                                                                          ".mp4"))])
    state = json.loads((tmp_path / "work" / "state" / f"{first}.json").read_text())
    assert state["step"] == "done" and state["taken_down_by"] == "ana"
    assert state["published_at"] == 0
