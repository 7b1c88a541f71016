"""The processing unit's reports: the pipeline's events, the state, and the daemon on a broker."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from moviepkg.telemetry import State, parse_event, parse_state, topic
from moviepkg.times import utc_now
from processor.config import load_settings
from processor.pipeline import Outcome, Pipeline
from processor.state import PackageState, Step
from processor.telemetry import (
    ProcessorTelemetry,
    last_durations,
    quarantined_today,
    screen_fields,
    step_counts,
)
from tests.moviepkg.watcher import Watcher
from tests.processor.conftest import add_package, daemon, daemon_env
from tests.services import MosquittoServer

Told = list[tuple[str, str, str]]


def listening(pipeline: Pipeline) -> tuple[Pipeline, Told]:
    """The same pipeline, telling its events to a list."""
    told: Told = []
    return Pipeline(pipeline.settings, pipeline.store, pipeline.screen,
                    events=lambda *event: told.append(event)), told


def test_a_movie_tells_each_step(pipeline: Pipeline) -> None:
    pipeline, told = listening(pipeline)
    package = add_package(pipeline.settings.inbox)
    outcome, state = pipeline.receive(package)
    assert outcome is None and state is not None
    assert pipeline.advance(package.name) is Outcome.PUBLISHED
    assert [kind for kind, _, _ in told] == ["received", "validated", "encoded", "on_screen",
                                            "published"]
    assert {package_id for _, package_id, _ in told} == {package.name}
    assert told[0][2] == "PUBLISH"
    assert pipeline.publisher.status().store_reachable is True


def test_quarantine_and_giving_up_tell_why(pipeline: Pipeline) -> None:
    pipeline, told = listening(pipeline)
    package = add_package(pipeline.settings.inbox, frames=4)
    (package / "0002.jpg").write_bytes(b"not a jpeg")
    assert pipeline.receive(package)[0] is Outcome.QUARANTINED
    assert told[-1][:2] == ("quarantined", package.name) and "0002.jpg" in told[-1][2]
    other = add_package(pipeline.settings.inbox, minutes=1)
    _, state = pipeline.receive(other)
    assert state is not None
    for _ in range(pipeline.settings.max_attempts):
        outcome = pipeline.failed(state, OSError("disk on fire"))
    assert outcome is Outcome.FAILED
    assert told[-1] == ("failed", other.name, "OSError: disk on fire")


def test_state_readings(tmp_path: Path) -> None:
    done = PackageState("st-1-20260501t100000z-aaaa", Step.DONE, durations={"encoded": 2.0},
                        updated_at=20.0)
    older = PackageState("st-1-20260501t090000z-bbbb", Step.DONE, durations={"encoded": 9.0},
                         updated_at=10.0)
    waiting = PackageState("st-1-20260501t110000z-cccc", Step.SHOWN, publish=True,
                           updated_at=5.0, durations={"encoded": 1.0})
    failed = PackageState("st-1-20260501t120000z-dddd", Step.VALIDATED, gave_up=True)
    states = [done, older, waiting, failed]
    assert step_counts(states) == {"done": 2, "waiting-to-publish": 1, "failed": 1}
    assert last_durations(states) == {"encoded": 2.0}
    tz = ZoneInfo("Europe/Paris")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "REASON").write_text("bad\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "REASON").write_text("bad\n")
    old = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    os.utime(tmp_path / "b" / "REASON", (old, old))
    assert quarantined_today(tmp_path, tz, time.time()) == 1
    assert quarantined_today(tmp_path / "none", tz, time.time()) == 0
    assert screen_fields({"connected": True, "playing": None,
                          "playlist": ["(idle card)"]})["playlist"] == 0


def test_the_processor_state_fits_the_contract(pipeline: Pipeline) -> None:
    telemetry = ProcessorTelemetry(pipeline.settings)
    telemetry.pipeline = pipeline
    show = telemetry.progress(lambda package_id: lambda done, total: None)("st-1-x")
    show(3, 10)
    fields = telemetry.processor_fields()
    assert fields["encoding"] == {"package_id": "st-1-x", "done": 3, "total": 10}
    assert fields["store_reachable"] is None and fields["publish_backlog"] == 0
    assert fields["encoder"] == "libx264" and fields["encode_fps"] is None  # none made yet
    assert parse_state("processor", State("processor", utc_now(), fields).to_json()).fields \
        == fields
    telemetry.event("encoded", "st-1-x", "")
    assert telemetry.processor_fields()["encoding"] is None
    screen = telemetry.screen_fields()
    assert parse_state("screen", State("screen", utc_now(), screen).to_json()).fields == screen


def test_the_encoder_and_its_speed_are_reported(pipeline: Pipeline) -> None:
    telemetry = ProcessorTelemetry(pipeline.settings)
    telemetry.pipeline = pipeline
    package = add_package(pipeline.settings.inbox, frames=5)
    outcome, state = pipeline.receive(package)
    assert outcome is None and state is not None
    assert pipeline.advance(package.name) is Outcome.PUBLISHED
    fields = telemetry.processor_fields()
    assert fields["encoder"] == "libx264"
    assert isinstance(fields["encode_fps"], float) and fields["encode_fps"] > 0
    assert parse_state("processor", State("processor", utc_now(), fields).to_json()).fields \
        == fields


def test_the_telemetry_keys_are_read(tmp_path: Path) -> None:
    settings = load_settings(None, {"STOPMO_MQTT_URL": "mqtts://processor.lan",
                                    "STOPMO_MQTT_PASSWORD_FILE": "/etc/stopmo/mqtt-password",
                                    "STOPMO_WORK_DIR": str(tmp_path / "work"),
                                    "STOPMO_INBOX": str(tmp_path / "inbox")})
    assert settings.telemetry.url == "mqtts://processor.lan"
    assert settings.telemetry.password_file == Path("/etc/stopmo/mqtt-password")
    assert settings.telemetry.device == ""


@pytest.mark.slow
def test_the_daemon_reports_a_movie_from_inbox_to_store(tmp_path: Path,
                                                        mosquitto: MosquittoServer) -> None:
    watcher = Watcher(mosquitto.port)
    env = daemon_env(tmp_path, (tmp_path / "store").as_uri(),
                     {"STOPMO_MQTT_URL": mosquitto.url, "STOPMO_OUTPUT_SIZE": "640x360"})
    try:
        with daemon(env, tmp_path / "daemon.log") as proc:
            watcher.wait(topic("processor", "processor", "online"), 30, status="online")
            package = add_package(tmp_path / "inbox")
            events = topic("processor", "processor", "event")
            watcher.wait(events, 60, kind="published", package_id=package.name)
            kinds = [parse_event(m.payload()) for m in watcher.on(events)]
            assert [e.kind for e in kinds] == ["received", "validated", "encoded", "on_screen",
                                               "published"]
            assert {e.package_id for e in kinds} == {package.name}
            deadline = time.monotonic() + 15
            state = watcher.wait(topic("processor", "processor", "state"))
            while time.monotonic() < deadline:
                state = watcher.on(topic("processor", "processor", "state"))[-1]
                if state.doc["steps"] == {"done": 1}:
                    break
                time.sleep(0.2)
            fields = parse_state("processor", state.payload()).fields
            assert fields["steps"] == {"done": 1} and fields["store_reachable"] is True
            assert fields["publish_backlog"] == 0 and set(fields["last_durations"]) >= {
                "encoded", "shown"}
            assert fields["encoder"] == "libx264" and fields["encode_fps"] > 0
            watcher.wait(topic("processor", "screen", "state"), 15, playing=package.name)
            parse_state("system", watcher.wait(topic("processor", "system", "state")).payload())
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        for program in ("processor", "screen", "system"):
            watcher.wait(topic("processor", program, "online"), 10, status="offline")
    finally:
        watcher.close()
