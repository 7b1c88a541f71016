"""Settings: defaults, a file, the environment, and every problem reported at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.config import Settings, load_settings
from ops.errors import ConfigError
from ops.hours import parse_hours


def test_defaults_are_safe(tmp_path: Path) -> None:
    settings = load_settings(None, environ={})
    assert settings.bind == "127.0.0.1"
    assert settings.mqtt_url == "mqtt://127.0.0.1:1883" and settings.mqtt_user == "console"
    assert settings.secure_cookies is False and settings.opening_hours.always
    assert settings.thresholds.outbox_s == 300 and settings.thresholds.publish_s == 600


def test_a_file_then_the_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    config = tmp_path / "ops.toml"
    config.write_text(f"""
[mqtt]
url = "mqtts://processor.lan:8883"
ca_file = "{ca}"
[web]
bind = "192.168.50.2"
secure_cookies = true
[fleet]
stations = ["st-1", "st-2"]
[alerts]
urls = ["json://127.0.0.1:9/x", "ntfy://stopmo-festival"]
opening_hours = "09:30-13:00, 14:00-19:00"
helper_s = 90
no_movie_s = 2400
""")
    settings = load_settings(config, environ={"STOPMO_OPS_BIND": "10.8.0.1",
                                             "STOPMO_TIMEZONE": "Europe/Paris"})
    assert settings.bind == "10.8.0.1" and settings.timezone == "Europe/Paris"
    assert settings.stations == ("st-1", "st-2") and len(settings.alert_urls) == 2
    assert settings.thresholds.helper_s == 90 and settings.thresholds.no_movie_s == 2400
    assert str(settings.opening_hours) == "09:30-13:00, 14:00-19:00"


def test_every_problem_at_once(tmp_path: Path) -> None:
    config = tmp_path / "ops.toml"
    config.write_text("""
[mqtt]
url = "mqtt://192.168.50.2:1883"
[web]
bind = "0.0.0.0"
[alerts]
opening_hours = "9 to 5"
disk_percent = 0
colour = "red"
""")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={"STOPMO_OPS_PORT": "http"})
    problems = "\n".join(caught.value.problems)
    for where in ("mqtt.url: plain mqtt:// is for loopback only",
                  "web.bind: expected a loopback or LAN",
                  "alerts.opening_hours:", "alerts.disk_percent:", "alerts.colour: unknown",
                  "STOPMO_OPS_PORT:"):
        assert where in problems, problems
    with pytest.raises(ConfigError, match="STOPMO_OPS_BIND"):
        load_settings(None, environ={"STOPMO_OPS_BIND": "8.8.8.8"})
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file"):
        load_settings(None, environ={"STOPMO_MQTT_URL": "mqtts://processor.lan:8883"})


def test_opening_hours_in_the_festival_time_zone() -> None:
    hours = parse_hours("09:00-19:00, 22:00-02:00")
    zone = "Asia/Jerusalem"  # UTC+3 in May

    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 5, 1, hour, minute, tzinfo=UTC)

    assert not hours.is_open(at(5, 59), zone)  # 08:59
    assert hours.open_since(at(6), zone) == at(6)  # 09:00
    assert not hours.is_open(at(16), zone)  # 19:00
    assert hours.open_since(at(22, 30), zone) == at(19)  # 01:30, opened at 22:00
    assert parse_hours("always").always and parse_hours("").always
    for bad in ("9-5", "25:00-26:00", "10:00-10:00"):
        with pytest.raises(ValueError):
            parse_hours(bad)


def test_settings_is_the_one_place_for_defaults() -> None:
    assert Settings().db_path.is_absolute()
