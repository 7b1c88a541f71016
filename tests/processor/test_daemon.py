"""The daemon in a thread: watch, debounce, rescan, order, bounded concurrency, quarantine."""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from processor.daemon import Daemon
from processor.pipeline import Outcome, Pipeline
from processor.screen import FakeScreen
from processor.state import Step
from tests.corpus import CORPUS
from tests.listing import listed_ids
from tests.processor.conftest import add_package, running
from tests.services import wait_until


class CountingPipeline(Pipeline):
    """A real pipeline that also notes the order and overlap of advance() calls."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.started: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self._count_lock = threading.Lock()

    def advance(self, package_id: str, publish: bool = True) -> Outcome:
        with self._count_lock:
            self.started.append(package_id)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return super().advance(package_id, publish)
        finally:
            with self._count_lock:
                self.running -= 1



def done_ids(pipeline: Pipeline) -> list[str]:
    return [s.package_id for s in pipeline.states.all() if s.step is Step.DONE]


@pytest.mark.slow  # 20 real encodes
def test_a_burst_of_20_is_published_oldest_first_two_at_a_time(pipeline: Pipeline,
                                                               tmp_path: Path) -> None:
    counting = CountingPipeline(replace(pipeline.settings, workers=2), pipeline.store,
                                pipeline.screen)
    minutes = list(range(20))
    random.Random(3).shuffle(minutes)
    # The burst landed while the processor was down (say, rebooting): all there at start-up.
    made = {add_package(counting.settings.inbox, frames=5, minutes=m).name: m for m in minutes}
    oldest_first = sorted(made, key=made.get)  # type: ignore[arg-type]
    daemon = Daemon(counting)
    with running(daemon):
        wait_until(lambda: len(done_ids(counting)) == 20, timeout=120, message="20 done")
    assert list(daemon.dispatched) == oldest_first
    assert sorted(counting.started) == sorted(oldest_first)
    assert counting.most_at_once == 2
    assert set(listed_ids(counting.store)) == set(made)


@pytest.mark.slow  # 20 real encodes
def test_a_burst_arriving_while_running_is_all_published(pipeline: Pipeline,
                                                         tmp_path: Path) -> None:
    counting = CountingPipeline(replace(pipeline.settings, workers=2), pipeline.store,
                                pipeline.screen)
    staging = tmp_path / "staging"
    made = [add_package(staging, frames=5, minutes=m).name for m in range(20)]
    with running(Daemon(counting)):
        for name in made:  # all at once, each by one rename, as a delivery does
            os.rename(staging / name, counting.settings.inbox / name)
        wait_until(lambda: len(done_ids(counting)) == 20, timeout=120, message="20 done")
    assert sorted(counting.started) == sorted(made)  # each exactly once
    assert counting.most_at_once <= 2


def test_moved_in_incomplete_and_preexisting_packages(pipeline: Pipeline, tmp_path: Path) -> None:
    inbox = pipeline.settings.inbox
    before = add_package(inbox, minutes=1)  # there before the daemon started
    with running(Daemon(pipeline)):
        wait_until(lambda: before.name in done_ids(pipeline), timeout=30, message="rescan")
        partial = inbox / ".partial"
        moved = add_package(partial, minutes=2)
        os.rename(moved, inbox / moved.name)  # one `moved` event
        slow = add_package(inbox, minutes=3)
        (slow / "PUBLISH").rename(tmp_path / "flag")  # still arriving
        wait_until(lambda: moved.name in done_ids(pipeline), timeout=30, message="moved")
        assert slow.exists() and slow.name not in done_ids(pipeline)
        (tmp_path / "flag").rename(slow / "PUBLISH")
        wait_until(lambda: slow.name in done_ids(pipeline), timeout=30, message="completed")
    assert list(inbox.iterdir()) == [partial]


def test_a_package_renamed_in_is_taken_at_once_one_written_in_place_once_quiet(
        pipeline: Pipeline, tmp_path: Path) -> None:
    slow = Pipeline(replace(pipeline.settings, debounce_seconds=4.0, rescan_seconds=600.0),
                    pipeline.store, pipeline.screen)
    inbox = slow.settings.inbox
    taken = lambda name: slow.states.load(name) is not None  # noqa: E731
    with running(Daemon(slow)):
        first = add_package(tmp_path / "staging", minutes=1)
        os.rename(first, inbox / first.name)
        wait_until(lambda: taken(first.name), timeout=10, message="the daemon watching")
        # As the receiver delivers (from the inbox's hidden staging folder), and as a move
        # from another folder of the same file system: complete, so taken at once.
        hidden = add_package(inbox / ".partial", minutes=2)
        other = add_package(tmp_path / "staging", minutes=3)
        started = time.monotonic()
        os.rename(hidden, inbox / hidden.name)
        os.rename(other, inbox / other.name)
        written = add_package(inbox, minutes=4)  # files written in place: may be half done
        wait_until(lambda: taken(hidden.name) and taken(other.name), timeout=3,
                   message="renamed-in packages taken without the 4 s debounce")
        assert time.monotonic() - started < 3 and not taken(written.name)
        wait_until(lambda: taken(written.name), timeout=15, message="taken once quiet")
        assert time.monotonic() - started >= 3.9
        wait_until(lambda: set(done_ids(slow)) == {first.name, hidden.name, other.name,
                                                   written.name}, timeout=60, message="done")


def test_bad_packages_are_quarantined_while_the_daemon_carries_on(pipeline: Pipeline,
                                                                  tmp_path: Path) -> None:
    inbox = pipeline.settings.inbox
    staging = tmp_path / "staging"
    with running(Daemon(pipeline)):
        for case, (spoil, _) in sorted(CORPUS.items()):
            entry = spoil(add_package(staging / case, frames=3))
            os.rename(entry, inbox / entry.name)
        good = add_package(staging, minutes=5)
        os.rename(good, inbox / good.name)
        quarantine = pipeline.settings.quarantine_dir
        wait_until(lambda: good.name in done_ids(pipeline)
                   and len(list(quarantine.iterdir())) == len(CORPUS),
                   timeout=60, message="all quarantined, the good one published")
    reasons = sorted((folder / "REASON").read_text() for folder in quarantine.iterdir())
    for _, words in CORPUS.values():
        assert any(words in reason for reason in reasons), words
    assert not [p for p in inbox.iterdir() if not p.name.startswith(".")]
    assert isinstance(pipeline.screen, FakeScreen)
    assert [m.package_id for m in pipeline.screen.shown] == [good.name]
    shutil.rmtree(staging)


class BrokenPipeline(Pipeline):
    """A pipeline whose advance fails outside any step (a bug, say)."""

    calls = 0

    def advance(self, package_id: str, publish: bool = True) -> Outcome:
        type(self).calls += 1
        raise RuntimeError("a bug outside the steps")


def test_a_failure_outside_the_steps_never_spins(pipeline: Pipeline) -> None:
    broken = BrokenPipeline(replace(pipeline.settings, max_attempts=3, retry_base_seconds=0.2),
                            pipeline.store, pipeline.screen)
    package = add_package(broken.settings.inbox, frames=3)
    daemon = Daemon(broken)
    with running(daemon):
        wait_until(lambda: (s := broken.states.load(package.name)) is not None and s.gave_up,
                   timeout=30, message="given up after max_attempts")
        time.sleep(1.0)  # a spinning daemon would call advance thousands of times here
    state = broken.states.load(package.name)
    assert state is not None and state.attempts == 3 and "a bug outside" in state.last_error
    assert BrokenPipeline.calls == 3
