"""The publish queue: the screen never waits for the store, and nothing gives up."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from processor.pipeline import Outcome, Pipeline
from processor.publishing import PUBLISH_RETRY_CAP
from processor.report import package_line, queue_summary, status_document
from processor.screen import FakeScreen
from processor.state import Step
from processor.store import FileStore
from tests.listing import listed_ids
from tests.processor.conftest import add_package


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def down_pipeline(pipeline: Pipeline, tmp_path: Path, clock: Clock) -> tuple[Pipeline, Path]:
    """A pipeline whose store is a folder that is not there (its parent is missing)."""
    root = tmp_path / "uplink" / "store"
    store = FileStore(root)
    return Pipeline(pipeline.settings, store, pipeline.screen, clock=clock,
                    rng=random.Random(7)), root


def take(pipeline: Pipeline, entry: Path, publish: bool = False) -> Outcome:
    outcome, state = pipeline.receive(entry)
    assert outcome is None and state is not None
    return pipeline.advance(state.package_id, publish=publish)


def test_on_screen_at_once_while_the_store_is_down(pipeline: Pipeline, tmp_path: Path) -> None:
    clock = Clock()
    down, _ = down_pipeline(pipeline, tmp_path, clock)
    package = add_package(pipeline.settings.inbox)
    assert take(down, package, publish=True) is Outcome.WAITING
    assert isinstance(down.screen, FakeScreen)
    assert [m.package_id for m in down.screen.shown] == [package.name]
    state = down.states.load(package.name)
    assert state is not None and state.step is Step.SHOWN and state.waiting_to_publish
    assert state.attempts == 1 and "parent folder does not exist" in state.last_error
    assert not state.gave_up and state.waiting_since == clock.now
    assert down.pending(now=float("inf")) == []  # the encoders are done with it


def test_a_two_hour_outage_gives_up_nothing(pipeline: Pipeline, tmp_path: Path) -> None:
    clock = Clock()
    down, root = down_pipeline(pipeline, tmp_path, clock)
    first = add_package(pipeline.settings.inbox, minutes=1)
    second = add_package(pipeline.settings.inbox, minutes=2, publish=False)
    third = add_package(pipeline.settings.inbox, minutes=3)
    assert take(down, first) is Outcome.WAITING
    assert take(down, second) is Outcome.SHOWN  # NOPUBLISH never waits for anything
    assert take(down, third) is Outcome.WAITING
    start, delays = clock.now, []
    while clock.now - start < 2 * 3600:
        before = {p.name: down.states.load(p.name) for p in (first, third)}
        assert down.publisher.drain() == 0
        wait = down.publisher.next_due_in()
        assert 0 < wait <= PUBLISH_RETRY_CAP
        delays.append(wait)
        clock.now += wait
        for name, earlier in before.items():
            state = down.states.load(name)
            assert state is not None and earlier is not None
            assert state.waiting_to_publish and not state.gave_up
    states = [down.states.load(p.name) for p in (first, third)]
    assert all(s is not None and s.attempts > 100 for s in states)  # tried all along
    assert max(delays[-20:]) <= PUBLISH_RETRY_CAP and min(delays[-20:]) > 0
    text = package_line(states[0], _tz())  # type: ignore[arg-type]
    assert "waiting to publish since" in text and "tries" in text
    summary = queue_summary(down.states.all(), clock.now, _tz())
    assert summary["waiting"] == 2 and summary["oldest_waiting_seconds"] >= 2 * 3600
    assert "parent folder does not exist" in summary["last_error"]

    root.parent.mkdir()  # the uplink is back
    assert down.publisher.drain() == 2  # the whole backlog at once, not one per backoff
    assert listed_ids(root) == [third.name, first.name]
    for package in (first, third):
        state = down.states.load(package.name)
        assert state is not None and state.step is Step.DONE and state.last_error == ""
        assert (root / "movies" / f"{package.name}.mp4").exists()
    assert not list((root / "movies").glob(f"{second.name}*"))
    assert down.publisher.drain() == 0  # exactly once
    assert status_document(down.states.all(), clock.now, _tz())["publish_queue"]["waiting"] == 0


def test_oldest_first_and_two_failures_end_a_round(pipeline: Pipeline, tmp_path: Path) -> None:
    clock = Clock()
    down, root = down_pipeline(pipeline, tmp_path, clock)
    packages = [add_package(pipeline.settings.inbox, minutes=m) for m in (5, 1, 3)]
    for package in packages:
        assert take(down, package) is Outcome.WAITING
    assert down.publisher.drain() == 0
    tried = {p.name: down.states.load(p.name).attempts for p in packages}  # type: ignore
    # Oldest (minute 1) and next (minute 3) were tried; the round ended there.
    assert tried == {packages[1].name: 1, packages[2].name: 1, packages[0].name: 0}
    root.parent.mkdir()
    clock.now += PUBLISH_RETRY_CAP
    published: list[str] = []
    original = down.publisher.publish

    def record(state):  # type: ignore[no-untyped-def]
        published.append(state.package_id)
        original(state)

    down.publisher.publish = record  # type: ignore[method-assign]
    assert down.publisher.drain() == 3
    assert published == [packages[1].name, packages[2].name, packages[0].name]


def test_a_package_that_cannot_publish_does_not_block_the_others(
        pipeline: Pipeline, tmp_path: Path) -> None:
    clock = Clock()
    up = Pipeline(pipeline.settings, pipeline.store, pipeline.screen, clock=clock)
    broken, fine = (add_package(pipeline.settings.inbox, minutes=m) for m in (1, 2))
    assert take(up, broken) is Outcome.WAITING
    assert take(up, fine) is Outcome.WAITING
    (up.movies_dir / f"{broken.name}.mp4").unlink()  # its own problem, not the store's
    assert up.publisher.drain() == 1
    state = up.states.load(broken.name)
    assert state is not None and state.waiting_to_publish and state.attempts >= 1
    assert "No such file" in state.last_error or "cannot" in state.last_error
    assert up.states.load(fine.name).step is Step.DONE  # type: ignore[union-attr]


def test_an_older_daemons_published_state_is_shown_then_done(pipeline: Pipeline) -> None:
    package = add_package(pipeline.settings.inbox)
    assert take(pipeline, package, publish=True) is Outcome.PUBLISHED
    state = pipeline.states.load(package.name)
    assert state is not None
    state.step = Step.PUBLISHED  # killed by an older daemon between publish and show
    pipeline.states.save(state, 0.0)
    assert isinstance(pipeline.screen, FakeScreen)
    pipeline.screen.shown.clear()
    assert pipeline.advance(package.name) is Outcome.PUBLISHED
    assert [m.package_id for m in pipeline.screen.shown] == [package.name]
    assert pipeline.states.load(package.name).step is Step.DONE  # type: ignore[union-attr]


def test_process_and_status_commands_during_an_outage(tmp_path: Path) -> None:
    from tests.processor.test_cli import base_env, processor

    env = base_env(tmp_path)
    env["STORAGE_URL"] = (tmp_path / "missing" / "store").as_uri()
    package = add_package(tmp_path / "outside")
    done = processor("process", str(package), env=env)
    assert done.returncode == 1 and done.stdout.strip() == "waiting", done.stderr
    status = processor("status", env=env)
    assert f"{package.name}  waiting-to-publish  on screen, waiting to publish since" \
        in status.stdout
    assert "publish queue: 1 movie(s) on screen waiting to publish" in status.stdout
    report = json.loads(processor("status", "--json", env=env).stdout)
    assert report["publish_queue"]["waiting"] == 1 and report["waiting"][0]["tries"] == 1
    (tmp_path / "missing").mkdir()
    again = processor("retry", package.name, env=env)  # an operator: publish now
    assert again.returncode == 0 and again.stdout.strip() == "published", again.stderr
    assert "publish queue: empty" in processor("status", env=env).stdout
    shutil.rmtree(tmp_path / "missing")


def _tz():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Jerusalem")
