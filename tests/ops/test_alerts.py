"""The alert engine on a fake clock, notifying a real webhook through Apprise's json://."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ops.console import Console
from ops.hours import parse_hours
from tests.ops.conftest import Clock, Webhook
from tests.ops.simulator import event, feed, fleet_messages, presence, state, station_messages


def _tick(console: Console, clock: Clock, seconds: float = 1.0, times: int = 1) -> None:
    for _ in range(times):
        clock.advance(seconds)
        console.engine.tick()


def _healthy(console: Console, clock: Clock) -> None:
    """Every device reports, and keeps reporting as the clock moves (no stale states)."""
    feed(console.db, fleet_messages(clock.now), clock.now)


def _run(console: Console, clock: Clock, seconds: int) -> None:
    for _ in range(seconds):
        _healthy_refresh(console, clock)
        _tick(console, clock)


def _healthy_refresh(console: Console, clock: Clock) -> None:
    messages = [m for m in fleet_messages(clock.now) if "/online" not in m[0]]
    feed(console.db, messages, clock.now)


def test_a_healthy_fleet_raises_nothing(console: Console, clock: Clock,
                                        webhook: Webhook) -> None:
    _healthy(console, clock)
    _run(console, clock, 40)
    assert console.db.open_alerts() == []
    assert webhook.bodies == []


def test_offline_fires_once_then_resolves(console: Console, clock: Clock,
                                          webhook: Webhook) -> None:
    _healthy(console, clock)
    _run(console, clock, 3)
    feed(console.db, [presence("st-4", "kiosk", False, clock.now)], clock.now)
    _run(console, clock, 3)
    assert webhook.bodies == []  # a restart takes less than offline_s (5 s): no noise yet
    _run(console, clock, 30)
    assert webhook.titles() == ["stopmo alert: st-4: the kiosk is offline"]
    assert webhook.bodies[0]["type"] == "failure"
    feed(console.db, [presence("st-4", "kiosk", True, clock.now)], clock.now)
    _run(console, clock, 5)
    assert webhook.titles() == ["stopmo alert: st-4: the kiosk is offline",
                                "stopmo resolved: st-4: the kiosk is offline"]
    assert webhook.bodies[1]["type"] == "success"
    assert console.db.open_alerts() == []


def test_a_muted_device_sends_nothing(console: Console, clock: Clock,
                                      webhook: Webhook) -> None:
    _healthy(console, clock)
    console.db.mute("st-4", clock.now + 3600, "ana", clock.now)
    feed(console.db, [presence("st-4", "kiosk", False, clock.now)], clock.now)
    _run(console, clock, 20)
    assert [row["rule"] for row in console.db.open_alerts()] == ["offline"]  # shown...
    feed(console.db, [presence("st-4", "kiosk", True, clock.now)], clock.now)
    _run(console, clock, 5)
    assert webhook.bodies == []  # ...but never sent, nor its resolution


def test_outside_opening_hours_nothing_is_sent(console: Console, clock: Clock,
                                               webhook: Webhook) -> None:
    clock.now -= 8 * 3600  # 04:00 in Jerusalem: closed
    _healthy(console, clock)
    feed(console.db, [presence("st-4", "kiosk", False, clock.now)], clock.now)
    _run(console, clock, 20)
    assert console.db.open_alerts() != []
    assert webhook.bodies == []
    feed(console.db, [presence("st-4", "kiosk", True, clock.now)], clock.now)
    _run(console, clock, 5)
    assert webhook.bodies == []


def test_an_alert_still_open_when_the_festival_opens_is_sent_then(
        console: Console, clock: Clock, webhook: Webhook) -> None:
    clock.now -= 20  # 11:59:40, and the festival opens at noon
    console.settings = replace(console.settings, opening_hours=parse_hours("12:00-19:00"))
    console.engine.settings = console.settings
    _healthy(console, clock)
    feed(console.db, [presence("st-4", "kiosk", False, clock.now)], clock.now)
    _run(console, clock, 15)
    assert webhook.bodies == []
    _run(console, clock, 10)
    assert webhook.titles() == ["stopmo alert: st-4: the kiosk is offline"]


@pytest.mark.parametrize(("messages", "rule", "after"), [
    (lambda now: station_messages(2, now, screen="helper"), "helper", 61),
    (lambda now: station_messages(2, now, waiting=3, oldest=301.0), "outbox", 1),
    (lambda now: station_messages(2, now, under_voltage_now=True), "power", 1),
    (lambda now: station_messages(2, now, disk_free_bytes=1_000_000_000), "disk", 1),
    (lambda now: station_messages(2, now, cpu_temp_c=85.0), "hot", 1),
    (lambda now: station_messages(2, now, qr_problem="http://127.0.0.1:8000 is a loopback "
                                  "address"), "qr_address", 1),
])
def test_each_station_rule(console: Console, clock: Clock, webhook: Webhook,
                           messages, rule: str, after: int) -> None:  # type: ignore[no-untyped-def]
    _healthy(console, clock)
    feed(console.db, messages(clock.now), clock.now)
    for _ in range(after - 1):
        _healthy_refresh(console, clock)
        feed(console.db, [m for m in messages(clock.now) if "/online" not in m[0]], clock.now)
        _tick(console, clock)
    assert console.db.open_alerts() == []
    feed(console.db, [m for m in messages(clock.now) if "/online" not in m[0]], clock.now)
    _tick(console, clock, times=2)
    assert [(row["rule"], row["device"]) for row in console.db.open_alerts()] == [(rule, "st-2")]
    assert len(webhook.bodies) == 1 and "st-2" in webhook.titles()[0]


def test_silent_programs_and_the_processor(console: Console, clock: Clock,
                                           webhook: Webhook) -> None:
    _healthy(console, clock)
    _run(console, clock, 5)
    clock.advance(31)  # nobody reports for 31 s, though all stay connected
    feed(console.db, [m for m in fleet_messages(clock.now) if "processor/" not in m[0]
                      and "/online" not in m[0]], clock.now)
    console.engine.tick()
    silent = sorted((row["device"], row["subject"]) for row in console.db.open_alerts())
    assert silent == [("processor", "processor"), ("processor", "screen"),
                      ("processor", "system")]
    assert "processor: the big screen has not reported since 12:00:04" in " ".join(webhook.titles())


def test_publish_backlog_and_no_movie_in_opening_hours(console: Console, clock: Clock,
                                                       webhook: Webhook) -> None:
    _healthy(console, clock)
    feed(console.db, [state("processor", "processor", {"publish_backlog": 7,
                                                       "publish_oldest_s": 601.0,
                                                       "store_reachable": False}, clock.now)],
         clock.now)
    console.engine.tick()
    assert [row["rule"] for row in console.db.open_alerts()] == ["publish"]
    feed(console.db, fleet_messages(clock.now), clock.now)  # the uplink is back
    console.engine.tick()
    assert "stopmo resolved: processor: movies have waited 10 min" in webhook.titles()[-1]
    # No movie finished: with the threshold at 30 min, only the stations that finished
    # nothing since opening (09:00, three hours ago) and since the console saw them alert.
    clock.advance(1790)
    feed(console.db, [event("st-1", "kiosk", "shot_finished", "st-1-20260501t092900z-0001",
                            clock.now)], clock.now)
    _run(console, clock, 11)
    idle = sorted(row["device"] for row in console.db.open_alerts() if row["rule"] == "no_movie")
    assert len(idle) == 11 and "st-1" not in idle


def test_a_lost_broker_is_one_alert_not_a_storm(console: Console, clock: Clock,
                                                webhook: Webhook) -> None:
    from types import SimpleNamespace

    _healthy(console, clock)
    broker = SimpleNamespace(connected=False, changed_at=clock.now)
    console.subscriber = broker  # type: ignore[assignment]
    _tick(console, clock, times=60)  # nobody is heard for a minute
    assert [(row["rule"], row["device"]) for row in console.db.open_alerts()] == [
        ("broker", "console")]
    broker.connected, broker.changed_at = True, clock.now  # retained states come back
    _run(console, clock, 3)
    assert webhook.titles() == ["stopmo alert: the console cannot reach the MQTT broker",
                                "stopmo resolved: the console cannot reach the MQTT broker"]


def test_a_failed_notification_is_tried_again(console: Console, clock: Clock,
                                              webhook: Webhook) -> None:
    from ops.notifier import AppriseNotifier

    dead = console.engine.notifier
    console.engine.notifier = AppriseNotifier(["json://127.0.0.1:9/nobody"])  # refused
    _healthy(console, clock)
    feed(console.db, [presence("st-4", "kiosk", False, clock.now)], clock.now)
    _run(console, clock, 10)
    assert webhook.bodies == [] and console.db.open_alerts()[0]["fired_sent"] == 0
    console.engine.notifier = dead
    _run(console, clock, 31)
    assert webhook.titles() == ["stopmo alert: st-4: the kiosk is offline"]


def test_a_dead_player_behind_a_live_processor_alerts_then_resolves(
        console: Console, clock: Clock, webhook: Webhook) -> None:
    _healthy(console, clock)
    dead = {"connected": False, "playing": None, "playlist": 0}
    for _ in range(3):  # mpv killed: the daemon still reports, the screen says not connected
        feed(console.db, [*[m for m in fleet_messages(clock.now) if "/screen/state" not in m[0]],
                          state("processor", "screen", dead, clock.now)], clock.now)
        console.engine.tick()
        clock.advance(3)
    assert [row["rule"] for row in console.db.open_alerts()] == ["player"]
    assert "processor: the big screen's player (mpv) does not answer" in webhook.titles()[-1]
    feed(console.db, fleet_messages(clock.now), clock.now)  # mpv is back
    console.engine.tick()
    assert console.db.open_alerts() == []
    assert webhook.titles()[-1].startswith("stopmo resolved: processor: the big screen's player")
