"""The reporter against a real mosquitto: presence, state, events, outages, bad logins."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moviepkg.broker import TelemetrySettings, mqtt_url, parse_mqtt_url, telemetry_keys
from moviepkg.reporting import NullReporter, Reporter, open_reporter
from moviepkg.settings import read_keys
from moviepkg.telemetry import parse_event, parse_presence, parse_state, topic
from tests.moviepkg.watcher import Watcher
from tests.services import MosquittoServer

PACKAGE = "st-3-20260710t120000z-beef"
SYNC = {"waiting": 0, "oldest_waiting_s": None, "last_delivery_at": None, "bytes_sent": 0,
        "last_error": None}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def watcher(mosquitto: MosquittoServer) -> Iterator[Watcher]:
    watch = Watcher(mosquitto.port)
    yield watch
    watch.close()


def reporter(url: str, program: str = "sync", **options: object) -> Reporter:
    made = open_reporter(TelemetrySettings(url=url), "st-3", program, **options)
    assert isinstance(made, Reporter)
    return made


def test_urls_and_keys() -> None:
    assert parse_mqtt_url("mqtts://processor.lan").port == 8883
    assert parse_mqtt_url("mqtt://127.0.0.1:1884").tls is False
    assert parse_mqtt_url("mqtt://localhost").port == 1883
    assert mqtt_url("  ") == ""
    for bad in ("mqtt://10.0.0.2:1883", "http://127.0.0.1", "mqtts://", "mqtts://h:99999",
                "mqtts://user:pw@h", "mqtts://h/topic"):
        with pytest.raises(ValueError):
            mqtt_url(bad)
    problems: list[str] = []
    values = read_keys(telemetry_keys(), {"telemetry.url": "mqtt://10.1.1.1",
                                          "telemetry.device": "St 3"},
                       {"STOPMO_MQTT_PASSWORD_FILE": "relative"}, problems)
    assert not values
    assert problems[0].startswith("telemetry.url: plain mqtt:// is for loopback only")
    assert problems[1].startswith("telemetry.device: expected lowercase")
    assert problems[2].startswith("STOPMO_MQTT_PASSWORD_FILE: expected an absolute path")
    assert next(k.target for k in telemetry_keys("telemetry_")) == "telemetry_url"


def test_off_is_said_once_and_reports_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "stopmo.telemetry"):
        made = open_reporter(TelemetrySettings(), "st-3", "kiosk")
    assert isinstance(made, NullReporter)
    assert "telemetry off (telemetry.url is empty)" in caplog.text
    made.state({"screen": "attract"})
    made.event("shot_started", PACKAGE)
    made.stop()


def test_presence_state_and_events(mosquitto: MosquittoServer, watcher: Watcher) -> None:
    sync = reporter(mosquitto.url, state_seconds=0.6, min_interval=0.1)
    sync.state(SYNC)
    sync.event("delivered", PACKAGE, "x" * 600)
    online = watcher.wait(topic("st-3", "sync", "online"), status="online")
    event = watcher.wait(topic("st-3", "sync", "event"))
    assert parse_event(event.payload()).package_id == PACKAGE
    assert len(event.doc["detail"]) == 500
    # A console that connects later still finds presence and state (retained).
    late = Watcher(mosquitto.port)
    try:
        assert late.wait(online.topic).retained
        state = late.wait(topic("st-3", "sync", "state"))
        assert state.retained and parse_state("sync", state.payload()).fields == SYNC
    finally:
        late.close()
    # Unchanged: again every state_seconds; changed: at once (after min_interval).
    time.sleep(1.5)
    states = watcher.on(topic("st-3", "sync", "state"))
    assert 2 <= len(states) <= 4
    gaps = [b.at - a.at for a, b in itertools.pairwise(states)]
    assert all(0.4 < gap < 1.0 for gap in gaps), gaps
    changed = time.monotonic()
    sync.state({**SYNC, "waiting": 2})
    arrived = watcher.wait(topic("st-3", "sync", "state"), waiting=2)
    assert arrived.at - changed < 0.4
    sync.stop()
    offline = watcher.wait(online.topic, status="offline")
    assert parse_presence(offline.payload()).online is False


def test_a_sampled_state_follows_refresh(mosquitto: MosquittoServer, watcher: Watcher) -> None:
    count = [0]

    def sample() -> dict[str, object]:
        count[0] += 1
        return {**SYNC, "waiting": count[0]}

    sync = reporter(mosquitto.url, sample=sample, state_seconds=30, min_interval=0.1)
    try:
        watcher.wait(topic("st-3", "sync", "state"), waiting=1)
        sync.refresh()
        watcher.wait(topic("st-3", "sync", "state"), waiting=2, timeout=3)
    finally:
        sync.stop()


@pytest.mark.slow
def test_kill_9_brings_the_will_within_8_seconds(mosquitto: MosquittoServer,
                                                 watcher: Watcher) -> None:
    code = textwrap.dedent(f"""
        import time
        from moviepkg.broker import TelemetrySettings
        from moviepkg.reporting import open_reporter
        r = open_reporter(TelemetrySettings(url={mosquitto.url!r}), "st-7", "kiosk")
        time.sleep(120)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        name = topic("st-7", "kiosk", "online")
        watcher.wait(name, status="online", timeout=15)
        killed = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        will = watcher.wait(name, status="offline", timeout=12)
        assert will.at - killed < 8.0
    finally:
        child.kill()
        child.wait(10)


@pytest.mark.slow
def test_the_broker_away_costs_the_program_nothing(tmp_path: Path) -> None:
    server = MosquittoServer(tmp_path / "mqtt").start()
    watcher = Watcher(server.port)
    sync = reporter(server.url, state_seconds=0.5, min_interval=0.1, max_events=5)
    try:
        watcher.wait(topic("st-3", "sync", "online"), status="online")
        watcher.close()
        server.stop()
        time.sleep(0.5)  # paho notices the closed socket
        started = time.monotonic()
        for n in range(8):  # the program's work goes on; nothing here may wait
            sync.state({**SYNC, "waiting": n})
            sync.event("delivered", f"st-3-20260710t12000{n}z-beef")
        assert time.monotonic() - started < 0.1
        assert sync.dropped == 3  # the three oldest
        time.sleep(1.5)
        server.start()
        watcher = Watcher(server.port)
        watcher.wait(topic("st-3", "sync", "state"), waiting=7, timeout=15)
        ids = [m.doc["package_id"] for m in watcher.on(topic("st-3", "sync", "event"))]
        watcher.wait(topic("st-3", "sync", "event"), package_id="st-3-20260710t120007z-beef")
        ids = [m.doc["package_id"] for m in watcher.on(topic("st-3", "sync", "event"))]
        assert ids == [f"st-3-20260710t12000{n}z-beef" for n in range(3, 8)]
    finally:
        sync.stop()
        watcher.close()
        server.stop()


def test_a_wrong_password_is_one_clear_error(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    password = tmp_path / "mqtt-password"
    password.write_text("not-the-password\n")
    acl = "pattern write stopmo/v1/%u/+/online\npattern write stopmo/v1/%u/+/state\n"
    with MosquittoServer(tmp_path / "mqtt", users={"st-3": "right"}, acl=acl) as server, \
            caplog.at_level(logging.INFO, "stopmo.telemetry"):
        settings = TelemetrySettings(url=server.url, password_file=password)
        made = open_reporter(settings, "st-3", "kiosk", min_interval=0.1)
        started = time.monotonic()
        made.state({"screen": "attract"})
        made.event("shot_started", PACKAGE)
        assert time.monotonic() - started < 0.05
        time.sleep(4)  # paho retries after 1 s, 2 s ...
        started = time.monotonic()
        made.stop()
        assert time.monotonic() - started < 5
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, caplog.text
    assert "refused st-3/kiosk" in errors[0].getMessage()
    assert "telemetry.password_file" in errors[0].getMessage()


def test_the_right_password_fits_a_pattern_acl(tmp_path: Path) -> None:
    password = tmp_path / "mqtt-password"
    password.write_text("right\n")
    acl = ("user console\ntopic read stopmo/#\n"
           + "".join(f"pattern write stopmo/v1/%u/+/{kind}\n"
                     for kind in ("online", "state", "event", "cmd/result"))
           + "pattern read stopmo/v1/%u/+/cmd\n")
    with MosquittoServer(tmp_path / "mqtt", users={"st-3": "right", "console": "c"},
                         acl=acl) as server:
        watcher = Watcher(server.port, "console", "c")
        made = open_reporter(TelemetrySettings(url=server.url, password_file=password),
                             "st-3", "kiosk", min_interval=0.1)
        try:
            made.state({"screen": "attract"})
            made.event("shot_started", PACKAGE)
            watcher.wait(topic("st-3", "kiosk", "state"), screen="attract")
            watcher.wait(topic("st-3", "kiosk", "event"), package_id=PACKAGE)
        finally:
            made.stop()
            watcher.wait(topic("st-3", "kiosk", "online"), status="offline")
            watcher.close()


def test_an_unreadable_password_file_turns_telemetry_off_loudly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = TelemetrySettings(url="mqtt://127.0.0.1:1", password_file=tmp_path / "none")
    made = open_reporter(settings, "st-3", "kiosk")
    assert isinstance(made, NullReporter)
    assert "telemetry.password_file: cannot read" in caplog.text
