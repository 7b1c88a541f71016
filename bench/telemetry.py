"""The control room's numbers: how fast a dead station is noticed, what telemetry costs.

1. kill -9 of a reporting station (a child process running the station's three
   reporters: kiosk, sync agent, system) -> the console's alert at an Apprise JSON
   webhook: median and max over --trials (aim <= 10 s; anchors: balena 15 min, OpenWISP
   5 min, Prometheus `up == 0 for 5m`). Real mosquitto, the real `stopmo-ops serve`.
2. Telemetry bytes per station per hour: the three reporters of one station for
   --seconds while a child shoots (frames change every 3 s), counted at a subscriber
   (topic + payload + MQTT's fixed and variable headers) plus the keepalive pings,
   scaled to an hour (aim <= 1 MB).
3. The console's overview with 12 stations and a day of history: p95 of GET / over
   --requests requests through the app (aim < 50 ms).
Usage: python bench/telemetry.py [--trials 10] [--seconds 60] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from moviepkg.telemetry import KEEPALIVE_SECONDS  # noqa: E402
from tests.services import MosquittoServer, free_port, wait_until  # noqa: E402

STATION = r"""
import sys, time, random
from moviepkg.broker import TelemetrySettings
from moviepkg.reporting import open_reporter
from moviepkg.sysinfo import system_state
from pathlib import Path

url, seconds = sys.argv[1], float(sys.argv[2])
settings = TelemetrySettings(url=url, device="st-1")
frames = [0]
kiosk = open_reporter(settings, "st-1", "kiosk", sample=lambda: {
    "screen": "shooting", "frames": frames[0], "last_capture_at": None, "camera_ok": True,
    "last_error": None, "version": "bench"})
sync = open_reporter(settings, "st-1", "sync", sample=lambda: {
    "waiting": 0, "oldest_waiting_s": None, "last_delivery_at": None, "bytes_sent": 0,
    "last_error": None})
box = open_reporter(settings, "st-1", "system", sample=lambda: system_state(Path("/")))
print("ready", flush=True)
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    time.sleep(3)
    frames[0] = (frames[0] + 1) % 200
    kiosk.refresh()
    n += 1
    if n % 40 == 0:
        kiosk.event("shot_finished", f"st-1-20260701t1200{n % 60:02d}z-beef", "PUBLISH")
for reporter in (kiosk, sync, box):
    reporter.stop()
"""


class Webhook:
    """A loopback HTTP server that notes when each notification arrives."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.arrivals.append((time.monotonic(), str(body.get("title"))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/alerts"

    def first_after(self, since: float, words: str) -> float | None:
        """When the first notification with words arrived after since."""
        return next((when for when, title in self.arrivals if when > since and words in title),
                    None)


def station(url: str, seconds: float) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", STATION, url, str(seconds)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    child.stdout.readline()  # "ready"
    return child


def detection(broker: MosquittoServer, folder: Path, trials: int) -> list[float]:
    """kill -9 -> alert, trials times."""
    hook = Webhook()
    (folder / "users").write_text("")
    config = folder / "ops.toml"
    config.write_text("\n".join([
        "[mqtt]", f'url = "{broker.url}"', "[db]", f'path = "{folder / "ops.sqlite3"}"',
        "[web]", f"port = {free_port()}", f'users_file = "{folder / "users"}"',
        "[fleet]", 'stations = ["st-1"]', "[alerts]", f'urls = ["{hook.url}"]', ""]))
    console = subprocess.Popen([str(ROOT / ".venv" / "bin" / "stopmo-ops"), "--config",
                                str(config), "serve"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    seconds: list[float] = []
    try:
        child = station(broker.url, 3600)
        time.sleep(3)  # the console sees the station, the start-up grace passes
        for _ in range(trials):
            killed = time.monotonic()
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            wait_until(lambda: hook.first_after(killed, "offline") is not None,  # noqa: B023
                       timeout=60, message="the alert")
            alert = hook.first_after(killed, "offline")
            assert alert is not None
            seconds.append(alert - killed)
            back = time.monotonic()
            child = station(broker.url, 3600)
            wait_until(lambda: hook.first_after(back, "resolved") is not None,  # noqa: B023
                       timeout=60, message="resolved")
        child.kill()
        child.wait()
    finally:
        console.terminate()
        console.wait(10)
        hook.server.shutdown()
    return seconds


def bytes_per_hour(broker: MosquittoServer, seconds: float) -> tuple[float, int]:
    """One station's telemetry for seconds, scaled to an hour; and the message count."""
    counted = [0, 0]

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.startswith("stopmo/v1/st-1/"):
            size = 2 + len(message.topic) + len(message.payload)  # topic length + both
            counted[0] += size + (2 if size < 128 else 3)  # fixed header, 1-2 length bytes
            counted[1] += 1

    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-watch")
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port, 30)
    watcher.subscribe("stopmo/v1/#")
    watcher.loop_start()
    time.sleep(0.5)
    counted[:] = [0, 0]
    started = time.monotonic()
    child = station(broker.url, seconds)
    child.wait(seconds + 30)
    elapsed = time.monotonic() - started
    watcher.loop_stop()
    watcher.disconnect()
    pings = 3 * 4 * elapsed / KEEPALIVE_SECONDS  # three connections, 2-byte PINGREQ + PINGRESP
    return (counted[0] + pings) * 3600 / elapsed, counted[1]


def overview_p95(folder: Path, requests: int) -> tuple[float, float, int]:
    """p50 and p95 of GET / with 12 stations and a day of history; the history rows."""
    from ops.app import create_app
    from ops.cli import set_password
    from ops.config import Settings
    from ops.console import Console
    from tests.ops.simulator import feed, fleet_messages

    set_password(folder / "day-users", "bench", "a bench password")
    settings = Settings(db_path=folder / "day.sqlite3", users_file=folder / "day-users",
                        stations=tuple(f"st-{n}" for n in range(1, 13)))
    console = Console(settings)
    now = time.time()
    for minute in range(24 * 60, 0, -1):  # a state of everyone every minute for a day
        feed(console.db, fleet_messages(now - minute * 60, offline=[3], under_voltage=[7],
                                        backlog=[10]), now - minute * 60)
    rows = console.db.query("select count(*) as n from samples")[0]["n"]
    app = create_app({"TESTING": True, "OPS_CONSOLE": console, "SECRET_KEY": "bench"})
    client = app.test_client()
    with client.session_transaction() as session:
        session["user"] = "bench"
    took = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/")
        took.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    took.sort()
    return statistics.median(took), took[int(0.95 * len(took)) - 1], rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stopmo-bench-telemetry-") as tmp:
        folder = Path(tmp)
        with MosquittoServer(folder / "broker") as broker:
            found = detection(broker, folder, args.trials)
            print(f"kill -9 of a station -> alert at a webhook, {args.trials} trials: median "
                  f"{statistics.median(found):.1f} s, max {max(found):.1f} s (aim <= 10 s; "
                  "balena 900 s, OpenWISP 300 s, Prometheus 300 s)", flush=True)
            per_hour, messages = bytes_per_hour(broker, args.seconds)
            print(f"telemetry of one station: {per_hour / 1e6:.3f} MB per hour "
                  f"({messages} messages in {args.seconds:.0f} s, shooting; aim <= 1 MB)",
                  flush=True)
        p50, p95, rows = overview_p95(folder, args.requests)
        print(f"console overview, 12 stations, a day of history ({rows} rows): p50 "
              f"{p50 * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms (aim < 50 ms)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
