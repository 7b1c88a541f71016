"""A festival station whose QR codes would not open at home says so loudly at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from moviepkg.telemetry import State, parse_state, topic
from moviepkg.times import utc_now
from stations.config import (
    ConfigError,
    KioskSettings,
    StationSettings,
    load_settings,
    public_url_problem,
    website_url_problem,
)
from stations.flow import Flow
from stations.telemetry import KioskReport
from tests.moviepkg.watcher import Watcher
from tests.services import MosquittoServer, XvfbDisplay
from tests.stations.conftest import STATION

LOOPBACK = "http://127.0.0.1:8000"


class Recorder:
    """A reporter that keeps the states it was offered."""

    def __init__(self) -> None:
        """Nothing offered yet."""
        self.states: list[dict[str, object]] = []

    def state(self, fields: dict[str, object]) -> None:
        """Keep one state."""
        self.states.append(dict(fields))


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:8000", "loopback"),
    ("http://localhost:8000", "loopback"),
    ("http://[::1]:8000", "loopback"),
    ("http://10.0.0.100:8000", "private"),
    ("http://192.168.1.20", "private"),
    ("http://172.16.0.3", "private"),
    ("http://169.254.1.1", "private"),
    ("http://100.64.0.1", "private"),  # carrier-grade NAT: not reachable from home either
    ("http://[fd00::1]:8000", "private"),
    ("http://processor:8000", "only the festival's network"),
    ("http://stopmo.local", "only the festival's network"),
    ("https://movies.festival.lan", "only the festival's network"),
])
def test_addresses_a_phone_at_home_cannot_open(url: str, why: str) -> None:
    """Loopback, private and LAN-only addresses are named as such."""
    problem = public_url_problem(url)
    assert problem is not None and why in problem


@pytest.mark.parametrize("url", [
    "https://stopmo-festival.herokuapp.com",
    "https://movies.example.org/",
    "http://8.8.8.8",
    "https://[2001:4860:4860::8888]",
])
def test_public_addresses_pass(url: str) -> None:
    """A public name or address is no problem."""
    assert public_url_problem(url) is None


def test_only_a_festival_station_complains() -> None:
    """Outside festival mode loopback is fine; in it, the message names the fix."""
    local = StationSettings(kiosk=KioskSettings(website_url=LOOPBACK))
    assert website_url_problem(local) is None  # scripts/festival: loopback is right there
    festival = StationSettings(festival=True, kiosk=KioskSettings(website_url=LOOPBACK))
    problem = website_url_problem(festival)
    assert problem is not None
    assert problem.startswith(f"kiosk.website_url: {LOOPBACK} is a loopback address")
    assert "stopmo_public_url" in problem
    public = StationSettings(festival=True,
                             kiosk=KioskSettings(website_url="https://movies.example.org"))
    assert website_url_problem(public) is None


def test_festival_mode_is_a_setting_off_by_default(tmp_path: Path) -> None:
    """station.festival: off unless the file or STOPMO_FESTIVAL says so; checked."""
    path = tmp_path / "station.toml"
    path.write_text('[station]\nid = "st-3"\n')
    assert load_settings(path, environ={}).festival is False
    path.write_text('[station]\nid = "st-3"\nfestival = true\n')
    settings = load_settings(path, environ={})
    assert (settings.station_id, settings.festival) == ("st-3", True)
    assert load_settings(path, environ={"STOPMO_FESTIVAL": "no"}).festival is False
    path.write_text('[station]\nfestival = "maybe"\n')
    with pytest.raises(ConfigError, match=r"station\.festival: expected true or false"):
        load_settings(path, environ={})


def test_the_kiosk_state_carries_the_problem(tmp_path: Path) -> None:
    """A field of the contract (STATE_FIELDS["kiosk"]): the console alerts on it."""
    flow = Flow(tmp_path / "outbox", STATION)
    told = Recorder()
    KioskReport(told, website_url_problem="kiosk.website_url: bad").tick(flow)  # type: ignore[arg-type]
    KioskReport(told).tick(flow)  # type: ignore[arg-type]
    loud, quiet = told.states
    assert loud["website_url_problem"] == "kiosk.website_url: bad"
    assert "website_url_problem" not in quiet
    state = parse_state("kiosk", State("kiosk", utc_now(), loud).to_json())
    assert state.fields["website_url_problem"] == "kiosk.website_url: bad"
    assert state.extra == {}


def _kiosk_env(tmp_path: Path, display: str, mqtt_url: str, **more: str) -> dict[str, str]:
    """The environment of a kiosk with the fake camera on display, reporting to mqtt_url."""
    return {**os.environ, "DISPLAY": display, "STOPMO_STATION_ID": "st-4",
            "STOPMO_OUTBOX": str(tmp_path / "out"), "STOPMO_CAMERA": "fake",
            "STOPMO_BUTTONS": "keyboard", "STOPMO_FULLSCREEN": "no",
            "STOPMO_CAPTURE_SIZE": "640x360", "STOPMO_MQTT_URL": mqtt_url, **more}


def _run_kiosk_until_reported(tmp_path: Path, env: dict[str, str], watcher: Watcher,
                              name: str) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Start the real kiosk, wait for its first state, stop it; its state and log lines."""
    log = tmp_path / f"{name}.log"
    with log.open("wb") as stderr:
        kiosk = subprocess.Popen([sys.executable, "-m", "stations"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            state = watcher.wait(topic("st-4", "kiosk", "state"), 20, screen="attract").doc
            kiosk.terminate()
            assert kiosk.wait(timeout=15) == 0
        finally:
            if kiosk.poll() is None:
                kiosk.kill()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return state, lines


@pytest.mark.slow
def test_a_festival_kiosk_on_loopback_says_so_in_its_log_and_on_the_console(
        tmp_path: Path, xvfb_display: XvfbDisplay, mosquitto: MosquittoServer) -> None:
    """The real kiosk (Tk under Xvfb, a real broker): one ERROR line, and the field."""
    env = _kiosk_env(tmp_path, xvfb_display.display, mosquitto.url,
                     STOPMO_FESTIVAL="true", STOPMO_WEBSITE_URL="http://10.0.0.100:8000")
    watcher = Watcher(mosquitto.port)
    try:
        state, lines = _run_kiosk_until_reported(tmp_path, env, watcher, "festival")
    finally:
        watcher.close()
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1, lines
    assert errors[0]["msg"].startswith("kiosk.website_url: http://10.0.0.100:8000 is a "
                                       "private address")
    assert errors[0]["website_url"] == "http://10.0.0.100:8000"
    assert state["website_url_problem"] == errors[0]["msg"]


@pytest.mark.slow
def test_a_local_kiosk_on_loopback_stays_quiet(
        tmp_path: Path, xvfb_display: XvfbDisplay, mosquitto: MosquittoServer) -> None:
    """scripts/festival's station (not festival mode) on loopback: no error, no field."""
    env = _kiosk_env(tmp_path, xvfb_display.display, mosquitto.url,
                     STOPMO_WEBSITE_URL=LOOPBACK)
    env.pop("STOPMO_FESTIVAL", None)
    watcher = Watcher(mosquitto.port)
    try:
        state, lines = _run_kiosk_until_reported(tmp_path, env, watcher, "local")
    finally:
        watcher.close()
    assert not [line for line in lines if line["level"] == "error"], lines
    assert "website_url_problem" not in state
