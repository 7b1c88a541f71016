"""Real Chromium: an operator sends commands from a device page; the answers come in live."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from ops.app import create_app
from ops.config import Settings
from ops.console import Console
from tests.ops.conftest import PASSWORD, make_console
from tests.ops.devices import FakeProcessor, FakeStation
from tests.ops.simulator import Publisher, event, fleet_messages
from tests.ops.test_browser import shots_dir
from tests.services import MosquittoServer, chromium_page, wait_until

pytestmark = pytest.mark.slow  # real Chromium, real mosquitto, a live refresh or two

QUARANTINED = "st-4-20260501t113000z-0a0a"
FAILED = "st-6-20260501t114500z-0b0b"


@dataclass
class Served:
    """The console's pages on loopback, and the devices behind them."""

    site: str
    console: Console
    station: FakeStation
    processor: FakeProcessor


@pytest.fixture
def served(settings: Settings, mosquitto: MosquittoServer, tmp_path: Path
           ) -> Iterator[Served]:
    """The fleet reporting (st-3 shooting), st-3's kiosk and the processing unit answering."""
    now = time.time()
    publisher = Publisher(mosquitto.port)
    publisher.send(fleet_messages(now))  # st-3 is shooting (21 frames)
    console = make_console(settings, time.time,  # type: ignore[arg-type]
                           mqtt_url=mosquitto.url)
    console.start(listen=True, alerts=False)
    wait_until(lambda: console.broker_connected, 10, message="the console")
    time.sleep(0.3)  # its subscriptions follow its connect; events are not kept for it
    publisher.send([
        event("processor", "processor", "quarantined", QUARANTINED, now - 600,
              "manifest.json: frame_count: expected 1..600, found 0"),
        event("processor", "processor", "failed", FAILED, now - 300,
              "ffmpeg: exit status 1 (Invalid data found when processing input)"),
        *(event("processor", "processor", "on_screen", f"st-{n}-20260501t12000{n}z-00a{n}",
                now - 60 * n) for n in (1, 2, 5))])
    station = FakeStation(mosquitto, tmp_path / "st-3.answered.json")
    station.shooting = True
    processor = FakeProcessor(mosquitto, tmp_path / "processor.answered.json")
    station.start()
    processor.start()
    server = make_server("127.0.0.1", 0, create_app({"TESTING": True, "OPS_CONSOLE": console}),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(console.db.events("processor")) == 5, 10, message="the events")
        wait_until(lambda: all(reporter._connected.is_set() for reporter
                               in station.reporters + processor.reporters), 10,
                   message="the devices")
        time.sleep(0.3)  # each device's subscription to its cmd topic follows its connect
        yield Served(f"http://127.0.0.1:{server.server_port}", console, station, processor)
    finally:
        server.shutdown()
        station.stop()
        processor.stop()
        console.stop()
        publisher.close()


def _answered(console: Console, device: str, count: int) -> bool:
    """Whether at least count of the device's commands have an outcome."""
    return sum(row["outcome"] is not None
               for row in console.db.device_commands(device)) >= count


@pytest.mark.parametrize(("name", "viewport"), [("desktop", {"width": 1400, "height": 900}),
                                                ("phone", {"width": 390, "height": 844})])
def test_commands_from_a_station_page(served: Served, name: str,
                                      viewport: dict[str, int]) -> None:
    problems: list[str] = []
    with chromium_page(viewport, name == "phone", problems) as page:
        page.goto(served.site + "/devices/st-3")
        page.fill("#user", "ana")
        page.fill("#password", PASSWORD)
        page.click("form.login button")
        page.wait_for_url("**/devices/st-3")

        def send(command: str) -> None:
            """Press a command's button; the page comes back saying what was sent."""
            page.click(f"form[action='/devices/st-3/commands/{command}'] button[type=submit]")
            page.wait_for_url("**/devices/st-3")
            assert f"Sent {command}" in page.locator(".flash").inner_text()

        send("identify")
        wait_until(lambda: _answered(served.console, "st-3", 1), 10, message="identify")
        send("restart-kiosk")  # a child is shooting: refused
        wait_until(lambda: _answered(served.console, "st-3", 2), 10, message="the refusal")
        send("test-capture")  # its picture comes with the live refresh
        wait_until(lambda: page.locator("img.capture").count() == 1, 10, interval=0.2,
                   message="the test capture, live")
        send("deliver-now")  # no sync agent runs here: it waits, then expires
        log = page.locator("table.audit").inner_text()
        assert "waiting for an answer…" in log
        assert "a child is shooting a movie (12 frames)" in log
        assert "the station number is on the screen for 15 s" in log
        assert page.locator("img.capture").evaluate("img => img.naturalWidth") == 160
        page.screenshot(path=str(shots_dir() / f"device-st-3-commands-{name}.png"),
                        full_page=True)
        page.click("form.anyway button")  # Restart anyway
        page.wait_for_url("**/devices/st-3")
        wait_until(lambda: served.station.names()[-1:] == ["restart-kiosk"], 10,
                   message="the forced restart")
        assert served.station.ran[-1].args == {"force": True}
        if name == "desktop":
            page.goto(served.site + "/")
            page.fill("#ov-movie", "7axkmy")
            page.check("form[action='/take-down'] input[name=keep_on_screen]")
            page.screenshot(path=str(shots_dir() / f"overview-take-down-{name}.png"),
                            full_page=True)
            page.click("form[action='/take-down'] button")
            page.wait_for_url("**/devices/processor")
            wait_until(lambda: _answered(served.console, "processor", 1), 10,
                       message="the take-down")
            page.reload()
            assert "take-down (movie: 7AXKMY, keep on screen: yes)" in page.locator(
                "table.audit").inner_text()
            needs = " ".join(page.locator("ul.needs").all_inner_texts())
            assert QUARANTINED in needs and FAILED in needs
            page.screenshot(path=str(shots_dir() / f"device-processor-commands-{name}.png"),
                            full_page=True)
        assert problems == [], problems  # no CSP violations, no script errors
