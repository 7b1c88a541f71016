"""The kiosk command reports its screen, frames and movies to a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moviepkg.telemetry import topic
from tests.moviepkg.watcher import Watcher
from tests.services import MosquittoServer, XvfbDisplay, require_binary

# Tk under Xvfb, in a child process: an in-process Tk keeps its display open after
# the window is destroyed, and dies with it when the next test's Xvfb replaces it.
pytestmark = pytest.mark.slow


def test_the_kiosk_reports_a_movie_and_says_offline_when_stopped(
        tmp_path: Path, xvfb_display: XvfbDisplay, mosquitto: MosquittoServer) -> None:
    xdotool = require_binary("xdotool")
    env = {**os.environ, "DISPLAY": xvfb_display.display, "STOPMO_STATION_ID": "st-4",
           "STOPMO_OUTBOX": str(tmp_path / "out"), "STOPMO_CAMERA": "fake",
           "STOPMO_BUTTONS": "keyboard", "STOPMO_FULLSCREEN": "no",
           "STOPMO_CAPTURE_SIZE": "640x360", "STOPMO_MQTT_URL": mosquitto.url}
    watcher = Watcher(mosquitto.port)
    kiosk = subprocess.Popen([sys.executable, "-m", "stations"], env=env)

    def key(name: str) -> None:
        subprocess.run([xdotool, "search", "--sync", "--name", "stopmo", "windowfocus",
                        "--sync", "key", name], check=True, timeout=10, env=env)

    try:
        watcher.wait(topic("st-4", "kiosk", "state"), 20, screen="attract")
        key("space")  # attract -> shooting
        started = watcher.wait(topic("st-4", "kiosk", "event"), kind="shot_started")
        package_id = started.doc["package_id"]
        for frames in (1, 2):
            key("space")
            watcher.wait(topic("st-4", "kiosk", "state"), frames=frames, screen="shooting")
        state = watcher.on(topic("st-4", "kiosk", "state"))[-1]
        assert state.doc["camera_ok"] is True and state.doc["last_capture_at"]
        assert state.doc["version"] and state.doc["last_error"] is None
        key("f")
        watcher.wait(topic("st-4", "kiosk", "state"), screen="finish")
        key("space")  # publish
        watcher.wait(topic("st-4", "kiosk", "event"), kind="shot_finished", detail="PUBLISH",
                     package_id=package_id)
        watcher.wait(topic("st-4", "kiosk", "state"), screen="done", frames=0)
        kiosk.terminate()  # systemd's stop: the loop ends, telemetry says offline itself
        assert kiosk.wait(timeout=15) == 0
        watcher.wait(topic("st-4", "kiosk", "online"), 3, status="offline")
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
        watcher.close()
