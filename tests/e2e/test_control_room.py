"""The control room over the local festival: kill -9 a program, the console alerts; restart it,
the alert resolves; stop the broker, everything goes on and reconnects."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.demo import make_demo
from tests.festival import Festival
from tests.ops.conftest import Webhook, webhook  # noqa: F401 - the webhook fixture
from tests.services import XvfbDisplay, wait_until

pytestmark = pytest.mark.slow  # the whole festival with a display, every program real


def presence(festival: Festival) -> dict[str, str]:
    """Every program's retained presence on the festival's broker, read as the console."""
    import paho.mqtt.client as mqtt

    port = festival.mqtt_port
    password = (festival.var / "mqtt" / "console.password").read_text().strip()
    found: dict[str, str] = {}
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        found["/".join(message.topic.split("/")[2:4])] = \
            "online" if b'"online"' in message.payload else "offline"

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{time.time_ns()}")
    client.username_pw_set("console", password)
    client.on_message = on_message
    client.on_connect = lambda c, *_: (c.subscribe("stopmo/v1/+/+/online"), done.set())
    client.connect("127.0.0.1", port, 5)
    client.loop_start()
    try:
        done.wait(5)
        time.sleep(0.5)  # the retained messages arrive right after the subscription
    finally:
        client.loop_stop()
        client.disconnect()
    return found


def alert_after(hook: Webhook, words: str, since: int, timeout: float) -> float:
    """Seconds until a notification whose title holds words arrives (after the since-th)."""
    started = time.monotonic()
    wait_until(lambda: any(words in title for title in hook.titles()[since:]), timeout=timeout,
               interval=0.1, message=f"a notification with {words!r}; got {hook.titles()}")
    return time.monotonic() - started


def test_kill_9_alerts_within_15_s_and_restart_resolves(
        tmp_path: Path, xvfb_display: XvfbDisplay, webhook: Webhook) -> None:  # noqa: F811
    env = {"STOPMO_ALERT_URLS": webhook.url, "STOPMO_FESTIVAL_AUTORESTART": "false"}
    with Festival(tmp_path / "var", frames=6, display=xvfb_display.display,
                  extra_env=env) as festival:
        wait_until(lambda: festival.website_ids(strict=False), timeout=90, interval=0.3,
                   message="the scripted movie on the website")
        wait_until(lambda: presence(festival).get("st-1/kiosk") == "online", timeout=60,
                   message="the kiosk reporting")
        assert {"st-1/kiosk", "st-1/sync", "st-1/system", "processor/processor",
                "processor/screen", "processor/system"} <= set(presence(festival))
        time.sleep(2)
        assert webhook.titles() == [], "a healthy festival alerts nobody"
        cases = (("station", "st-1: the kiosk is offline"),
                 ("sync", "st-1: the sync agent is offline"),
                 ("screen", "processor: the big screen's player (mpv) does not answer"))
        for program, words in cases:
            sent = len(webhook.titles())
            os.kill(festival.pid(program), signal.SIGKILL)
            seconds = alert_after(webhook, words, sent, timeout=15)
            print(f"kill -9 {program}: alert after {seconds:.1f} s")
            sent = len(webhook.titles())
            festival.ctl("start", program)
            alert_after(webhook, f"resolved: {words}", sent, timeout=45)

        # The broker away for 30 s: every program goes on, nothing is lost, all come back.
        before = set(festival.website_ids())
        festival.ctl("stop", "mosquitto")
        stopped = time.monotonic()
        package = make_demo(tmp_path / "outside", frames=5, station_id="st-1",
                            width=320, height=240)
        package.rename(festival.var / "processor" / "inbox" / package.name)
        wait_until(lambda: package.name in festival.website_ids(strict=False), timeout=60,
                   message="a movie published while the broker is away")
        time.sleep(max(0.0, stopped + 30 - time.monotonic()))  # 30 s without a broker
        assert all(state == "RUNNING" for name, (state, _) in festival.states().items()
                   if name != "mosquitto"), festival.states()
        festival.ctl("start", "mosquitto")
        wait_until(lambda: all(value == "online" for value in presence(festival).values())
                   and len(presence(festival)) >= 6, timeout=60,
                   message="every program online again")
        assert before | {package.name} <= set(festival.website_ids())  # nothing lost
