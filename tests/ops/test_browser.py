"""Real Chromium: log in, look at 12 simulated stations and a device page; screenshots."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from ops.app import create_app
from ops.config import Settings
from ops.console import Console
from ops.db import Database
from ops.hours import OpeningHours
from tests.ops.conftest import PASSWORD, Webhook, make_console
from tests.ops.simulator import (
    Publisher,
    event,
    feed,
    fleet_messages,
    processor_messages,
    station_messages,
)
from tests.services import MosquittoServer, chromium_page, wait_until

pytestmark = pytest.mark.slow  # real Chromium, real mosquitto


def shots_dir() -> Path:
    """Where the screenshots go (STOPMO_SCREENSHOTS, or /tmp/stopmo-ops-screens)."""
    folder = Path(os.environ.get("STOPMO_SCREENSHOTS", "/tmp/stopmo-ops-screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _history(path: Path, now: float) -> None:
    """Six hours of history for st-7 and the processing unit, one report every 5 min."""
    db = Database(path)
    for step in range(72, 0, -1):
        then = now - step * 300
        wave = math.sin(step / 9)
        feed(db, station_messages(7, then, waiting=max(0, round(2 + 2 * wave)),
                                  cpu_temp_c=55 + 8 * wave, load1=0.8 + wave / 2), then)
        feed(db, processor_messages(then, backlog=max(0, round(3 - 3 * wave))), then)
    db.close()


@pytest.fixture
def served(settings: Settings, mosquitto: MosquittoServer, webhook: Webhook
           ) -> Iterator[tuple[str, Console]]:
    now = time.time()
    _history(settings.db_path, now)
    publisher = Publisher(mosquitto.port)
    publisher.send(fleet_messages(now, offline=[3], under_voltage=[7], backlog=[10]))
    settings = replace(settings, opening_hours=OpeningHours(), every_s=0.5,
                       thresholds=replace(settings.thresholds, offline_s=1.0))
    console = make_console(settings, time.time, webhook,  # type: ignore[arg-type]
                           mqtt_url=mosquitto.url)
    console.start()
    wait_until(lambda: {row["rule"] for row in console.db.open_alerts()} >=
               {"offline", "power", "outbox"}, 15, message="the alerts")
    publisher.send([event("st-7", program, kind, "st-7-20260501t120000z-0007", now, detail)
                    for program, kind, detail in
                    [("kiosk", "shot_started", ""), ("kiosk", "shot_finished", "PUBLISH"),
                     ("sync", "delivered", "3.1 MB")]])
    wait_until(lambda: len(console.db.events("st-7")) == 3, 10, message="the events")
    server = make_server("127.0.0.1", 0, create_app({"TESTING": True, "OPS_CONSOLE": console}),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", console
    finally:
        server.shutdown()
        console.stop()
        publisher.close()


@pytest.mark.parametrize(("name", "viewport"), [("desktop", {"width": 1400, "height": 900}),
                                                ("phone", {"width": 390, "height": 844})])
def test_overview_and_device_page(served: tuple[str, Console], name: str,
                                  viewport: dict[str, int]) -> None:
    site, console = served
    problems: list[str] = []
    with chromium_page(viewport, name == "phone", problems) as page:
        page.goto(site + "/")
        page.wait_for_url("**/login?next=/")
        page.fill("#user", "ana")
        page.fill("#password", PASSWORD)
        page.click("form.login button")
        page.wait_for_url(site + "/")
        assert page.locator("#live .tiles").first.locator("article.tile").count() == 12
        assert page.locator("article.tile.red").count() == 1  # st-3, offline
        assert page.locator("article.tile.amber").count() == 2  # st-7 power, st-10 outbox
        assert "st-3: the whole box is offline" in page.locator(".alerts").inner_text()
        first = page.locator(".updated").inner_text()
        # The live refresh replaces the tiles (polled from here: the page's CSP forbids
        # the eval that Playwright's wait_for_function would need).
        wait_until(lambda: page.locator(".updated").inner_text() != first, 8,
                   interval=0.2, message="a live refresh")
        page.screenshot(path=str(shots_dir() / f"overview-{name}.png"), full_page=True)
        page.click("a[href='/devices/st-7']")
        page.wait_for_url("**/devices/st-7")
        assert page.locator("figure.chart svg").count() >= 3
        assert "shot finished" in page.locator("table.events").inner_text()
        page.screenshot(path=str(shots_dir() / f"device-st-7-{name}.png"), full_page=True)
        page.select_option("#minutes", "60")
        page.click("form[action='/devices/st-7/mute'] button")
        page.wait_for_url("**/devices/st-7")
        assert "Muted until" in page.content()
        assert "st-7" in console.db.mutes(time.time())
        page.goto(site + "/devices/processor")
        page.wait_for_selector("progress")
        page.screenshot(path=str(shots_dir() / f"device-processor-{name}.png"),
                        full_page=True)
        assert problems == [], problems  # no CSP violations, no script errors
