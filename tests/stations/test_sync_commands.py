"""`deliver-now`: the sync agent stops waiting, runs a cycle, and says what it did.

Against a real sshd on loopback with the station's restricted key (tests/stations/conftest).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from moviepkg.commands import Command, CommandRunner, parse_result
from stations.commands import answered_file
from stations.config import StationSettings
from stations.sync import Agent
from tests.services import closed_port
from tests.stations.conftest import Rig, add_package, visible


@contextmanager
def running(settings: StationSettings) -> Iterator[CommandRunner]:
    """An agent in run_forever on a thread; its command runner."""
    for folder in (settings.paths.outbox, settings.paths.sent):
        folder.mkdir(parents=True, exist_ok=True)  # as the command makes them
    agent = Agent(settings)
    runner = CommandRunner({"deliver-now": agent.deliver_now},
                           answered_file(settings.paths.outbox, "sync"))
    thread = threading.Thread(target=agent.run_forever, daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        agent.stop()
        thread.join(30)
        assert not thread.is_alive()


def deliver_now(runner: CommandRunner) -> tuple[dict[str, Any], float]:
    """Send deliver-now as the reporter would; its answer and how long it took."""
    now = datetime.now(UTC)
    command = Command(f"deliver-{time.monotonic_ns()}", "deliver-now", "ana", now,
                      now + timedelta(minutes=1))
    started = time.monotonic()
    answer = runner.handle(command.to_json())
    assert answer is not None
    result = parse_result(answer)
    return {"outcome": result.outcome, "detail": result.detail}, time.monotonic() - started


def test_deliver_now_runs_a_cycle_at_once_and_says_what_it_did(rig: Rig) -> None:
    """Nothing waiting; two delivered and one refused; refused once stopped."""
    # A cycle every hour and no scan of the outbox: only the command makes it deliver now.
    settings = rig.settings(interval_seconds=3600.0, scan_seconds=3600.0)
    with running(settings) as runner:
        said, _ = deliver_now(runner)
        assert said == {"outcome": "done", "detail": "nothing was waiting"}
        first, second = add_package(rig.outbox), add_package(rig.outbox, minutes=1)
        stranger = add_package(rig.outbox, minutes=2, station="st-2")
        said, took = deliver_now(runner)
        assert said["outcome"] == "done" and took < 20
        assert said["detail"] == (f"2 movies delivered, 1 refused, kept in the outbox "
                                  f"({stranger.name}: not a package of station st-1: it "
                                  "stays in the outbox)")
        assert visible(rig.sent) == [first.name, second.name]
        assert stranger.exists()
    said, _ = deliver_now(runner)  # the agent has stopped
    assert said == {"outcome": "refused", "detail": "the sync agent is stopping"}


def test_deliver_now_cuts_a_long_backoff_short_and_says_why_it_failed(rig: Rig) -> None:
    """An unreachable processor: no wait for the backoff, and the reason in the answer."""
    settings = rig.settings(retry_base_seconds=60.0, retry_max_seconds=120.0)
    add_package(rig.outbox)
    with closed_port() as port, running(replace(
            settings, processor=replace(settings.processor, port=port))) as runner:
        time.sleep(0.5)  # the first cycle failed: the agent now waits 30 s or more
        said, took = deliver_now(runner)
        assert took < 10  # it did not wait for the backoff
        assert said["outcome"] == "failed"
        assert said["detail"].startswith("LinkError: ") and "unreachable" in said["detail"]
