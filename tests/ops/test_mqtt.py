"""The console against a real mosquitto: it keeps the fleet, survives a restart, alerts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ops.app import create_app
from ops.config import Settings
from ops.console import Console
from ops.fleet import load_fleet
from ops.hours import OpeningHours
from tests.ops.conftest import Clock, Webhook, make_console
from tests.ops.simulator import Publisher, event, fleet_messages
from tests.services import MosquittoServer, wait_until


@pytest.fixture
def publisher(mosquitto: MosquittoServer) -> Iterator[Publisher]:
    """The simulated fleet's client."""
    found = Publisher(mosquitto.port)
    yield found
    found.close()


def _listening(settings: Settings, mosquitto: MosquittoServer, clock: Clock,
               webhook: Webhook | None = None, **changes: object) -> Console:
    console = make_console(settings, clock, webhook, mqtt_url=mosquitto.url, **changes)
    console.start(listen=True, alerts=False)
    wait_until(lambda: console.broker_connected, 10, message="the console to connect")
    return console


def _stations(console: Console) -> int:
    fleet = load_fleet(console.db, (), console.settings.processor)
    return sum(1 for d in fleet.stations if d.program("system").fields)


def test_the_console_keeps_what_the_fleet_reports(settings: Settings, clock: Clock,
                                                  mosquitto: MosquittoServer,
                                                  publisher: Publisher) -> None:
    publisher.send(fleet_messages(clock.now, offline=[3], under_voltage=[7], backlog=[10]))
    console = _listening(settings, mosquitto, clock)  # retained messages arrive on subscribe
    try:
        wait_until(lambda: _stations(console) == 12, 10, message="12 stations")
        publisher.send([("stopmo/v1/st-1/kiosk/state", b"not json", False),
                        ("stopmo/v1/ST 1/kiosk/state", b"{}", False),
                        event("st-7", "kiosk", "shot_finished", "st-7-20260501t120000z-0007",
                              clock.now, "PUBLISH")])
        wait_until(lambda: console.db.events("st-7"), 10, message="the event")
        fleet = load_fleet(console.db, settings.stations, settings.processor)
        assert fleet.devices["st-3"].program("kiosk").online is False
        assert fleet.devices["st-7"].program("system").get("under_voltage_now") is True
        assert fleet.devices["st-10"].program("sync").get("oldest_waiting_s") == 480.0
        assert fleet.processor.program("screen").get("playing") == "st-2-20260501t120000z-beef"
        assert fleet.devices["st-7"].last_finished == clock.now
        client = create_app({"TESTING": True, "OPS_CONSOLE": console}).test_client()
        with client.session_transaction() as session:
            session["user"] = "ana"
        html = client.get("/").get_data(as_text=True)
        assert html.count('<article class="tile') == 15  # 12 stations, unit, screen, uplink
        assert "9 OK · 2 attention · 1 down" in html
        assert "Broker: connected" in html
    finally:
        console.stop()


def test_a_restart_shows_the_same_picture_at_once(settings: Settings, clock: Clock,
                                                  mosquitto: MosquittoServer,
                                                  publisher: Publisher) -> None:
    publisher.send(fleet_messages(clock.now, offline=[3], under_voltage=[7], backlog=[10]))
    first = _listening(settings, mosquitto, clock)
    wait_until(lambda: _stations(first) == 12, 10, message="12 stations")
    first.engine.tick()
    clock.advance(6)  # past offline_s: st-3's alert opens
    first.engine.tick()
    pages = []
    for console in (first, None):
        if console is None:
            first.stop()
            mosquitto.stop()  # no broker to refill it: only the database speaks
            console = make_console(settings, clock)
        client = create_app({"TESTING": True, "OPS_CONSOLE": console}).test_client()
        with client.session_transaction() as session:
            session["user"] = "ana"
            session["csrf"] = "the same operator"  # the live part holds the command forms
        pages.append(client.get("/live/overview").get_data(as_text=True))
        pages.append(client.get("/live/devices/st-7").get_data(as_text=True))
    assert "<strong>st-3: the whole box is offline</strong>" in pages[0]  # the open alert
    assert pages[0] == pages[2]
    assert pages[1] == pages[3]


def test_events_sent_while_the_console_is_away_reach_it_when_it_is_back(
        settings: Settings, clock: Clock, mosquitto: MosquittoServer,
        publisher: Publisher) -> None:
    package = "st-7-20260501t120000z-0007"
    first = _listening(settings, mosquitto, clock)
    publisher.send([event("st-7", "kiosk", "shot_started", package, clock.now)])
    wait_until(lambda: first.db.events("st-7"), 10, message="the first event")
    first.stop()  # an upgrade: the console is away, its session stays on the broker
    publisher.send([event("st-7", "kiosk", "shot_finished", package, clock.now, "PUBLISH")])
    again = _listening(settings, mosquitto, clock)
    try:
        wait_until(lambda: len(again.db.events("st-7")) == 2, 10,
                   message="the event sent while the console was away")
        assert [row["kind"] for row in again.db.events("st-7")] == ["shot_finished",
                                                                   "shot_started"]
    finally:
        again.stop()
    # Without a session name, each start is a fresh session: what was sent meanwhile is lost.
    fresh = replace(settings, mqtt_session="")
    third = _listening(fresh, mosquitto, clock)
    third.stop()
    publisher.send([event("st-8", "kiosk", "shot_finished", package, clock.now, "PUBLISH")])
    fourth = _listening(fresh, mosquitto, clock)
    try:
        publisher.send([event("st-9", "kiosk", "shot_finished", package, clock.now)])
        wait_until(lambda: fourth.db.events("st-9"), 10, message="an event sent now")
        assert fourth.db.events("st-8") == []
    finally:
        fourth.stop()


DEVICE = """
import sys, time
import paho.mqtt.client as mqtt
from datetime import UTC, datetime
from moviepkg.telemetry import Presence, State, topic
port = int(sys.argv[1])
def now():
    return datetime.now(UTC)
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="st-1-kiosk")
client.will_set(topic("st-1", "kiosk", "online"), Presence(False, now()).to_json(), 1, True)
client.on_connect = lambda c, *_: c.publish(topic("st-1", "kiosk", "online"),
                                            Presence(True, now()).to_json(), 1, True)
client.connect("127.0.0.1", port, keepalive=5)
client.loop_start()
while True:
    fields = {"screen": "attract", "frames": 0, "camera_ok": True, "version": "t"}
    client.publish(topic("st-1", "kiosk", "state"), State("kiosk", now(), fields).to_json(),
                   1, True)
    time.sleep(1)
"""


def test_kill_9_of_a_device_alerts_the_webhook_then_resolves(
        settings: Settings, mosquitto: MosquittoServer, webhook: Webhook,
        tmp_path: Path) -> None:
    settings = replace(settings, stations=("st-1",), every_s=0.2, opening_hours=OpeningHours(),
                       thresholds=replace(settings.thresholds, stale_s=3600.0))
    console = make_console(settings, time.time, webhook,  # type: ignore[arg-type]
                           mqtt_url=mosquitto.url)
    console.start()
    script = tmp_path / "device.py"
    script.write_text(DEVICE)
    root = str(Path(__file__).resolve().parents[2])
    device = subprocess.Popen([sys.executable, str(script), str(mosquitto.port)], cwd=root)
    try:
        fleet = lambda: load_fleet(console.db, (), "processor")  # noqa: E731
        wait_until(lambda: fleet().devices.get("st-1") and
                   fleet().devices["st-1"].program("kiosk").online, 15, message="online")
        time.sleep(1)
        assert webhook.bodies == []
        killed = time.monotonic()
        device.kill()
        device.wait()
        wait_until(lambda: webhook.bodies, 20, message="the alert")
        took = time.monotonic() - killed
        assert webhook.titles() == ["stopmo alert: st-1: the kiosk is offline"]
        assert took < 10, took  # the will at once, then offline_s (5 s)
        device = subprocess.Popen([sys.executable, str(script), str(mosquitto.port)], cwd=root)
        wait_until(lambda: len(webhook.bodies) == 2, 20, message="resolved")
        assert webhook.titles()[1] == "stopmo resolved: st-1: the kiosk is offline"
    finally:
        device.kill()
        device.wait()
        console.stop()
