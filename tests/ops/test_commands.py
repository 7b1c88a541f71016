"""The console sends commands over a real mosquitto (the fleet's ACL) and logs the answers."""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from werkzeug.wrappers import Response

from moviepkg.commands import Result
from moviepkg.telemetry import topic
from ops.app import create_app
from ops.commands import NOT_CONNECTED
from ops.config import Settings
from ops.console import Console
from ops.db import Row
from ops.recorder import record
from tests.moviepkg.watcher import Watcher
from tests.ops.conftest import Clock, log_in, make_console
from tests.ops.devices import PASSWORDS, FakeProcessor, FakeStation, fleet_broker, station_picture
from tests.ops.simulator import event, feed
from tests.services import MosquittoServer, wait_until


@dataclass
class Festival:
    """A broker with the fleet's ACL, a listening console, st-3's kiosk, the processing unit."""

    broker: MosquittoServer
    console: Console
    station: FakeStation
    processor: FakeProcessor
    client: FlaskClient
    token: str

    def post(self, path: str, **fields: str) -> Response:
        """Submit a form as the logged-in operator."""
        return self.client.post(path, data={"csrf_token": self.token, **fields})

    def answer(self, device: str) -> Row:
        """The device's newest command, once answered."""
        wait_until(lambda: self.console.db.device_commands(device, 1)[0]["outcome"], 10,
                   message=f"{device}'s answer")
        return self.console.db.device_commands(device, 1)[0]

    def live(self, device: str) -> str:
        """The device page's live part, as ops.js fetches it."""
        return self.client.get(f"/live/devices/{device}").get_data(as_text=True)


def _online(console: Console, device: str, *programs: str) -> bool:
    """Whether the console has heard each of the device's programs say `online`."""
    rows = console.db.query("SELECT program FROM presence WHERE device = ? AND online = 1",
                            (device,))
    return {row["program"] for row in rows} >= set(programs)


@pytest.fixture
def festival(settings: Settings, tmp_path: Path) -> Iterator[Festival]:
    """Everything running; the operator `ana` logged in."""
    with fleet_broker(tmp_path / "broker") as broker:
        password = tmp_path / "mqtt-console.password"
        password.write_text(PASSWORDS["console"] + "\n")
        console = make_console(settings, time.time,  # type: ignore[arg-type]
                               mqtt_url=broker.url, mqtt_password_file=password)
        console.start(listen=True, alerts=False)
        station = FakeStation(broker, tmp_path / "st-3.answered.json")
        processor = FakeProcessor(broker, tmp_path / "processor.answered.json")
        station.start()
        processor.start()
        try:
            wait_until(lambda: console.broker_connected and _online(console, "st-3", "kiosk")
                       and _online(console, "processor", "processor", "screen"), 10,
                       message="the console and the devices")
            time.sleep(0.3)  # each device's subscription to its cmd topic follows its `online`
            client = create_app({"TESTING": True, "OPS_CONSOLE": console,
                                 "SECRET_KEY": "test"}).test_client()
            yield Festival(broker, console, station, processor, client, log_in(client))
        finally:
            station.stop()
            processor.stop()
            console.stop()


def test_a_command_reaches_the_station_and_its_answer_shows(festival: Festival) -> None:
    response = festival.post("/devices/st-3/commands/identify")
    assert response.status_code == 302 and response.headers["Location"] == "/devices/st-3"
    row = festival.answer("st-3")
    assert (row["outcome"], row["sender"], row["program"], row["movie"]) == (
        "done", "ana", "kiosk", None)
    assert row["detail"] == "the station number is on the screen for 15 s"
    assert row["answered"] >= row["sent"] and festival.station.names() == ["identify"]
    page = festival.client.get("/devices/st-3").get_data(as_text=True)
    assert "Sent identify to st-3: waiting for its answer." in page  # the flash line, once
    assert "Sent identify" not in festival.client.get("/devices/st-3").get_data(as_text=True)
    assert "the station number is on the screen for 15 s" in festival.live("st-3")
    festival.post("/devices/st-3/commands/out-of-order", on="true")
    row = festival.answer("st-3")
    assert row["args"] == {"on": True} and row["detail"] == "the out-of-order picture is up"
    assert "out-of-order (on: yes)" in festival.live("st-3")


def test_a_refusal_says_why_and_offers_a_forced_restart(festival: Festival) -> None:
    festival.station.shooting = True
    festival.post("/devices/st-3/commands/restart-kiosk")
    row = festival.answer("st-3")
    assert row["outcome"] == "refused" and festival.station.names() == []
    live = festival.live("st-3")
    assert escape("a child is shooting a movie (12 frames)") in live
    assert '<tr class="cmd-refused"' in live and live.count("Restart anyway") == 1
    form = re.search(r'<form method="post" action="([^"]+)" class="inline anyway">(.*?)</form>',
                     live, re.S)
    assert form and form.group(1) == "/devices/st-3/commands/restart-kiosk"
    assert 'name="force" value="true"' in form.group(2)
    festival.post(form.group(1), force="true")  # the button: Restart anyway
    row = festival.answer("st-3")
    assert row["outcome"] == "done" and row["args"] == {"force": True}
    assert festival.station.names() == ["restart-kiosk"]
    assert "Restart anyway" not in festival.live("st-3")  # offered on the newest restart only


def test_a_test_capture_shows_its_picture(festival: Festival) -> None:
    festival.post("/devices/st-3/commands/test-capture")
    row = festival.answer("st-3")
    assert row["outcome"] == "done" and row["data"]["width"] == 160
    page = festival.client.get("/devices/st-3")
    found = re.search(r'<img class="capture" src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)" '
                      r'alt="Test capture from st-3, [^"]+" width="160" height="120">',
                      page.get_data(as_text=True))
    assert found and base64.b64decode(found.group(1)) == station_picture()
    assert "img-src 'self' data:" in page.headers["Content-Security-Policy"]


def test_the_processing_unit_takes_down_a_movie_from_the_overview(festival: Festival) -> None:
    overview = festival.client.get("/").get_data(as_text=True)
    assert 'action="/take-down"' in overview
    response = festival.post("/take-down", movie="7axk-my", keep_on_screen="true")
    assert response.headers["Location"] == "/devices/processor"
    row = festival.answer("processor")
    assert (row["program"], row["outcome"], row["movie"]) == ("processor", "done", "7AXKMY")
    assert row["args"] == {"movie": "7AXKMY", "keep_on_screen": True}
    assert [r["id"] for r in festival.console.db.movie_commands("7AXKMY")] == [row["id"]]
    page = festival.client.get("/devices/processor").get_data(as_text=True)
    assert "Sent take-down (movie: 7AXKMY, keep on screen: yes) to processor" in page
    festival.post("/devices/processor/commands/play",
                  package_id="st-2-20260501t120000z-beef")
    row = festival.answer("processor")
    assert (row["program"], row["name"], row["movie"]) == (
        "screen", "play", "st-2-20260501t120000z-beef")
    assert festival.processor.names() == ["take-down", "play"]


def test_without_the_broker_nothing_is_sent_and_the_page_says_why(
        settings: Settings, tmp_path: Path) -> None:
    with fleet_broker(tmp_path / "broker") as broker:
        watcher = Watcher(broker.port, "console", PASSWORDS["console"])  # reads every topic
        wrong = tmp_path / "wrong.password"
        wrong.write_text("not the console's password\n")
        console = make_console(settings, time.time,  # type: ignore[arg-type]
                               mqtt_url=broker.url, mqtt_password_file=wrong)
        console.start(listen=True, alerts=False)
        try:
            client = create_app({"TESTING": True, "OPS_CONSOLE": console,
                                 "SECRET_KEY": "test"}).test_client()
            token = log_in(client)
            time.sleep(0.5)  # the broker has refused the console by now
            assert console.broker_connected is False
            client.post("/devices/st-3/commands/identify", data={"csrf_token": token})
            row = console.db.device_commands("st-3")[0]
            assert (row["outcome"], row["detail"]) == ("refused", NOT_CONNECTED)
            page = client.get("/devices/st-3").get_data(as_text=True)
            assert f"Command identify for st-3: {NOT_CONNECTED}." in page  # the flash line
            assert "Commands cannot go out now: the console is not connected to the broker." \
                in page
            assert f"Refused</strong>: {NOT_CONNECTED}" in page  # the log's row
            time.sleep(0.5)
            assert not [m for m in watcher.messages if m.topic.endswith("/cmd")]
        finally:
            console.stop()
            watcher.close()


def test_arguments_that_do_not_fit_are_refused_in_words(client: FlaskClient,
                                                        console: Console) -> None:
    token = log_in(client)
    cases = [
        ("/devices/processor/commands/take-down", {"movie": " "},
         "take-down needs movie: nothing was sent"),
        ("/devices/processor/commands/take-down", {"movie": "Max's movie"},
         "\"Max's movie\" is neither a movie code (6 letters and digits, like 7AXKMY) nor a "
         "package id"),
        ("/devices/processor/commands/play", {"package_id": "../etc/passwd"},
         "'../etc/passwd' is not a package id"),
        ("/devices/st-3/commands/out-of-order", {"on": "maybe"},
         "on must be true or false: nothing was sent"),
        ("/devices/st-3/commands/take-down", {"movie": "7AXKMY"},
         "st-3 does not run take-down (the processor does)"),
        ("/devices/st-3/commands/dance", {}, "the console knows no command 'dance'"),
    ]
    for path, fields, words in cases:
        response = client.post(path, data={"csrf_token": token, **fields})
        assert response.status_code == 302, path
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert escape(words) in page, (path, words)
    refused = {row["detail"] for row in console.db.query("SELECT * FROM commands")}
    assert "take-down needs movie: nothing was sent" in refused and len(refused) == 4
    assert client.get("/devices/st-99").status_code == 404
    assert client.post("/devices/st-99/commands/identify",
                       data={"csrf_token": token}).status_code == 404


def test_only_a_logged_in_operator_with_the_form_token_can_send(app: Flask,
                                                                 client: FlaskClient,
                                                                 console: Console) -> None:
    token = log_in(client)
    assert client.post("/devices/st-3/commands/identify").status_code == 400
    assert client.post("/devices/st-3/commands/identify",
                       data={"csrf_token": "forged"}).status_code == 400
    assert client.post("/take-down", data={"movie": "7AXKMY"}).status_code == 400
    stranger = app.test_client()
    login_token = re.search(r'name="csrf_token" value="([^"]+)"',
                            stranger.get("/login").get_data(as_text=True))
    assert login_token
    for path in ("/devices/st-3/commands/identify", "/take-down"):
        response = stranger.post(path, data={"csrf_token": login_token.group(1),
                                             "movie": "7AXKMY"})
        assert response.status_code == 302 and response.headers["Location"].startswith(
            "/login")
    assert console.db.query("SELECT * FROM commands") == []
    client.post("/devices/st-3/commands/identify", data={"csrf_token": token})
    assert [row["sender"] for row in console.db.query("SELECT * FROM commands")] == ["ana"]


def test_waiting_then_maybe_running_then_expired(client: FlaskClient, console: Console,
                                                  clock: Clock) -> None:
    """Unanswered: waiting until its expiry, then possibly running for the catalogue's run_s
    (30 s for identify, 10 min for deliver-now), and only then expired."""
    db = console.db
    db.add_command("c0ffee000001", "st-3", "kiosk", "identify", {}, "ana", clock.now,
                   clock.now + 60)
    db.add_command("c0ffee000002", "st-3", "sync", "deliver-now", {}, "ben", clock.now,
                   clock.now + 60)
    db.add_command("c0ffee000005", "st-3", "sync", "deliver-now", {}, "ben", clock.now,
                   clock.now + 60)
    live = client.get("/live/devices/st-3").get_data(as_text=True)
    assert live.count("waiting for an answer…") == 3 and "ben" in live
    answer = Result("c0ffee000005", "done", datetime.fromtimestamp(clock.now, UTC),
                    "2 movies delivered")
    assert record(db, topic("st-3", "sync", "cmd/result"), answer.to_json(), clock.now + 1)

    def outcomes() -> list[str]:
        """Each row's outcome label, newest first (as the live part shows them)."""
        live = client.get("/live/devices/st-3").get_data(as_text=True)
        return re.findall(r'<strong class="outcome \w+">([^<]+)</strong>', live)

    clock.advance(60)  # the expiry itself: still waiting
    assert outcomes().count("waiting for an answer…") == 2
    clock.advance(1)
    assert outcomes() == ["Done", "no answer yet (it may still be running)",
                          "no answer yet (it may still be running)"]
    live = client.get("/live/devices/st-3").get_data(as_text=True)
    assert "2 movies delivered" in live and "(answered in 1.0 s)" in live
    assert 'class="cmd-late"' in live
    clock.advance(30)  # identify's 30 s are over; a delivery may run for 10 min
    assert outcomes() == ["Done", "no answer yet (it may still be running)",
                          "no answer (expired)"]
    clock.advance(569)
    assert outcomes()[1] == "no answer yet (it may still be running)"
    clock.advance(1)
    assert outcomes() == ["Done", "no answer (expired)", "no answer (expired)"]


def test_an_answer_counts_only_from_the_device_it_went_to(
        console: Console, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """A result for a command's id from another device, or another program, is ignored."""
    db = console.db
    db.add_command("c0ffee000006", "st-3", "kiosk", "identify", {}, "ana", clock.now,
                   clock.now + 60)
    answer = Result("c0ffee000006", "done", datetime.fromtimestamp(clock.now, UTC),
                    "the station number is on the screen for 15 s")
    with caplog.at_level(logging.INFO, logger="stopmo.ops.recorder"):
        assert record(db, topic("st-4", "kiosk", "cmd/result"), answer.to_json(), clock.now)
        assert record(db, topic("st-3", "sync", "cmd/result"), answer.to_json(), clock.now)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "an answer from a device the command did not go to (it went to st-3, kiosk): "
        "ignored"] * 2
    assert [r.__dict__["topic"] for r in warnings] == [topic("st-4", "kiosk", "cmd/result"),
                                                       topic("st-3", "sync", "cmd/result")]
    row = db.command("c0ffee000006")
    assert row is not None and (row["outcome"], row["detail"]) == (None, None)
    assert record(db, topic("st-3", "kiosk", "cmd/result"), answer.to_json(), clock.now + 2)
    row = db.command("c0ffee000006")
    assert row is not None and (row["outcome"], row["answered"]) == ("done", clock.now + 2)
    caplog.clear()
    stray = Result("deadbeef0001", "done", datetime.fromtimestamp(clock.now, UTC), "?")
    with caplog.at_level(logging.INFO, logger="stopmo.ops.recorder"):
        assert record(db, topic("st-3", "kiosk", "cmd/result"), stray.to_json(), clock.now)
    assert "does not know" in caplog.text and db.command("deadbeef0001") is None


def test_the_processor_page_lists_what_needs_a_hand(client: FlaskClient, console: Console,
                                                    clock: Clock) -> None:
    ids = [f"st-1-20260501t12000{n}z-000{n}" for n in range(6)]
    feed(console.db, [
        event("processor", "processor", "quarantined", ids[0], clock.now,
              "manifest.json: frame_count: expected 1..600, found 0"),
        event("processor", "processor", "quarantined", ids[1], clock.now, "not a JPEG"),
        event("processor", "processor", "released", ids[1], clock.now),
        event("processor", "processor", "failed", ids[2], clock.now, "ffmpeg: exit status 1"),
        event("processor", "processor", "failed", ids[3], clock.now, "ffmpeg: exit status 1"),
        event("processor", "processor", "retried", ids[3], clock.now),
        event("processor", "processor", "on_screen", ids[4], clock.now),
        event("processor", "processor", "on_screen", ids[5], clock.now),
    ], clock.now)
    page = client.get("/devices/processor").get_data(as_text=True)
    assert "manifest.json: frame_count: expected 1..600, found 0" in page
    assert page.count(f'name="entry" value="{ids[0]}"') == 2  # release and delete
    assert f'value="{ids[1]}"' not in page  # released since
    assert f'name="package_id" value="{ids[2]}"' in page  # retry
    assert f'name="package_id" value="{ids[3]}"' not in page  # retried since
    assert f'<option value="{ids[5]}"><option value="{ids[4]}">' in page  # play: newest first
    assert 'data-confirm="Delete' in page
    station = client.get("/devices/st-3").get_data(as_text=True)
    assert "Restart kiosk" in station and "Take down" not in station


def test_old_commands_are_pruned_like_events(console: Console, clock: Clock) -> None:
    db = console.db
    old = clock.now - 8 * 86400
    db.add_command("c0ffee000003", "processor", "processor", "release", {"entry": "x"}, "ana",
                   old, old + 60, movie="x")
    db.add_command("c0ffee000004", "processor", "processor", "retry", {"package_id": "y"},
                   "ana", clock.now, clock.now + 60, movie="y")
    db.prune(clock.now, keep_days=7)
    assert [row["id"] for row in db.device_commands("processor")] == ["c0ffee000004"]
    assert db.movie_commands("x") == [] and db.movie_commands("y", "x")[0]["args"] == {
        "package_id": "y"}
