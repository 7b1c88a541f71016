"""The station's reports: the kiosk's screens and movies, and a sync agent on a real broker."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from moviepkg.telemetry import SCREENS as CONTRACT_SCREENS
from moviepkg.telemetry import State, parse_state, topic
from moviepkg.times import utc_now
from stations.camera import FakeCamera
from stations.flow import Action, Command, Flow, Screen
from stations.outbox import Outbox
from stations.telemetry import SCREENS, KioskReport, sync_fields
from tests.moviepkg.watcher import Watcher
from tests.services import MosquittoServer, wait_until
from tests.stations.conftest import STATION, LineReader, Rig, add_package


class Recorder:
    """A reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.states: list[dict[str, object]] = []

    def event(self, kind: str, package_id: str, detail: str = "") -> None:
        self.events.append((kind, package_id, detail))

    def state(self, fields: dict[str, object]) -> None:
        self.states.append(dict(fields))


def test_every_kiosk_screen_has_a_contract_word() -> None:
    assert set(SCREENS) == set(Screen)
    assert set(SCREENS.values()) == set(CONTRACT_SCREENS)


@pytest.mark.parametrize("publish", [True, False])
def test_a_movie_tells_its_start_and_finish(tmp_path: Path, publish: bool) -> None:
    told = Recorder()
    flow = Flow(tmp_path / "outbox", STATION, events=told.event)
    camera = FakeCamera((320, 240), (160, 120))
    report = KioskReport(told)  # type: ignore[arg-type]
    flow.handle(Action.GO)
    for _ in range(3):
        assert flow.handle(Action.GO) is Command.CAPTURE
        flow.captured(camera.capture())
        report.captured()
    report.tick(flow)
    flow.handle(Action.FINISH)
    flow.handle(Action.GO if publish else Action.UNDO)
    package_id = flow.last_package
    assert package_id is not None
    assert told.events == [("shot_started", package_id, ""),
                           ("shot_finished", package_id, "PUBLISH" if publish else "NOPUBLISH")]
    fields = told.states[-1]
    assert fields["screen"] == "shooting" and fields["frames"] == 3 and fields["camera_ok"]
    assert parse_state("kiosk", State("kiosk", utc_now(), fields).to_json()).fields == fields
    report.camera_failed()
    flow.fail(RuntimeError("no camera"))
    assert report.fields(flow)["screen"] == "helper"
    assert report.fields(flow)["last_error"] == "RuntimeError: no camera"
    assert report.fields(flow)["camera_ok"] is False


def test_the_sync_state_counts_what_waits(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox", tmp_path / "sent")
    assert sync_fields(outbox, None, 0, None)["waiting"] == 0
    add_package(outbox.outbox)
    add_package(outbox.outbox, minutes=1)
    fields = sync_fields(outbox, None, 10, "unreachable", now=lambda: time.time() + 60)
    assert fields["waiting"] == 2 and 59 < fields["oldest_waiting_s"] < 70
    assert parse_state("sync", State("sync", utc_now(), fields).to_json()).fields == fields


@pytest.mark.slow
def test_the_sync_agent_reports_and_delivers_while_the_broker_is_away(
        rig: Rig, tmp_path: Path) -> None:
    server = MosquittoServer(tmp_path / "mqtt").start()
    watcher = Watcher(server.port)
    first = add_package(rig.outbox)
    agent = rig.spawn(env=rig.env(STOPMO_MQTT_URL=server.url))
    logs = LineReader(agent)
    try:
        sync = topic(STATION, "sync", "event")
        watcher.wait(sync, timeout=30, kind="delivered", package_id=first.name)
        state = watcher.wait(topic(STATION, "sync", "state"), waiting=0)
        assert state.doc["last_delivery_at"] and state.doc["bytes_sent"] > 0
        system = watcher.wait(topic(STATION, "system", "state"))
        parse_state("system", system.payload())
        watcher.close()
        server.stop()  # the broker goes away; delivery must not notice
        second = add_package(rig.outbox, minutes=1)
        wait_until(lambda: (rig.sent / second.name).exists(), 30, message="a delivery")
        time.sleep(1)
        server.start()
        watcher = Watcher(server.port)
        watcher.wait(sync, timeout=20, kind="delivered", package_id=second.name)
        watcher.wait(topic(STATION, "sync", "online"), status="online")
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        for program in ("sync", "system"):
            watcher.wait(topic(STATION, program, "online"), status="offline")
        assert agent.returncode == 0, logs.text()
        lost = [r for r in logs.records() if "lost the broker" in r.get("msg", "")]
        assert len(lost) <= 2  # one line per reporter, not one per retry
    finally:
        if agent.poll() is None:
            agent.kill()
        watcher.close()
        server.stop()


def test_the_sync_command_without_telemetry_says_so(rig: Rig) -> None:
    done: subprocess.CompletedProcess[str] = rig.sync("--once")
    assert done.returncode == 0
    assert "telemetry off (telemetry.url is empty)" in done.stderr


def test_the_telemetry_keys_are_read_and_checked(tmp_path: Path) -> None:
    from stations.config import ConfigError, load_settings

    settings = load_settings(None, {"STOPMO_STATION_ID": "st-3",
                                    "STOPMO_MQTT_URL": "mqtts://processor.lan:8883",
                                    "STOPMO_MQTT_CA": "/etc/stopmo/mqtt-ca.crt"})
    assert settings.telemetry.url == "mqtts://processor.lan:8883"
    assert settings.telemetry.ca_file == Path("/etc/stopmo/mqtt-ca.crt")
    assert settings.telemetry.device == ""  # the reporters use the station id
    config = tmp_path / "station.toml"
    config.write_text('[telemetry]\nurl = "mqtt://192.168.1.10"\ndevice = "St-3"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})
    assert [p.split(":")[0] for p in caught.value.problems] == ["telemetry.url",
                                                                "telemetry.device"]
