"""Station settings for the sync agent: TOML, then the environment; every problem at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stations.config import (
    ConfigError,
    Delivery,
    Link,
    Paths,
    StationSettings,
    delivery_problems,
    load_settings,
)
from tests.services import skip_or_fail

GOOD = """
[station]
id = "st-3"

[paths]
outbox = "/srv/outbox"
sent = "/srv/sent"

[processor]
host = "10.0.0.2"
port = 2222
user = "stopmo"
key = "/etc/stopmo/station_key"
known_hosts = "/etc/stopmo/known_hosts"

[delivery]
bwlimit_kbps = 256
interval_seconds = 20
retry_base_seconds = 1.5
attempts = 4

[sent]
retention_days = 7
min_free_mb = 800
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def test_a_full_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), environ={"STOPMO_BWLIMIT_KBPS": "64",
                                                             "STOPMO_PROCESSOR_HOST": "proc"})
    assert settings.station_id == "st-3"
    assert settings.paths == Paths(Path("/srv/outbox"), Path("/srv/sent"))
    assert settings.processor == Link("proc", 2222, "stopmo", Path("/etc/stopmo/station_key"),
                                      Path("/etc/stopmo/known_hosts"))
    assert settings.delivery.bwlimit_kbps == 64
    assert settings.delivery.retry_base_seconds == 1.5 and settings.delivery.attempts == 4
    assert settings.delivery.retry_max_seconds == Delivery().retry_max_seconds  # default
    assert (settings.sent.retention_days, settings.sent.min_free_mb) == (7, 800)


def test_defaults_without_a_file() -> None:
    if Path("/etc/stopmo/station.toml").exists():
        skip_or_fail("this machine has its own /etc/stopmo/station.toml")
    settings = load_settings(None, environ={"STOPMO_STATION_ID": "st-9"})
    assert settings == StationSettings(station_id="st-9")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """
[station]
id = "St 3"
[paths]
outbox = "outbox"
[processor]
host = "-oProxyCommand=sh"
port = 70000
[delivery]
interval_seconds = 0
attempts = true
colour = "blue"
[camera]
kind = "webcam"
"""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={"STOPMO_PROCESSOR_USER": "Robert'); --"})
    assert caught.value.problems == [
        "delivery.colour: unknown setting",
        "station.id: expected lowercase letters, digits and dashes (at most 41), found 'St 3'",
        "paths.outbox: expected an absolute path, found 'outbox'",
        "processor.host: expected a host name or IP address, found '-oProxyCommand=sh'",
        "processor.port: expected an integer from 1 to 65535, found 70000",
        "STOPMO_PROCESSOR_USER: expected a user name, found \"Robert'); --\"",
        "delivery.interval_seconds: expected more than 0 and at most 86400 seconds, found 0",
        "delivery.attempts: expected an integer from 1 to 1000, found True",
        "camera.kind: expected one of picamera2, fake, found 'webcam'",
    ]


def test_what_delivery_needs_is_checked_before_it_starts(tmp_path: Path) -> None:
    settings = StationSettings(paths=Paths(tmp_path / "outbox", tmp_path / "outbox" / "sent"),
                               processor=Link(key=tmp_path / "nokey",
                                              known_hosts=tmp_path / "nohosts"),
                               delivery=Delivery(retry_base_seconds=10, retry_max_seconds=5))
    assert delivery_problems(settings) == [
        'station.id: required (e.g. id = "st-3"), or STOPMO_STATION_ID',
        "processor.host: required (the processing unit's address), or STOPMO_PROCESSOR_HOST",
        f"processor.key: no such file '{tmp_path}/nokey'",
        f"processor.known_hosts: no such file '{tmp_path}/nohosts'",
        f"paths.sent: expected a folder apart from the outbox, found '{tmp_path}/outbox/sent' "
        f"with outbox '{tmp_path}/outbox'",
        "delivery.retry_max_seconds: expected at least retry_base_seconds (10)",
    ]


def test_sync_exits_3_with_one_line_per_problem(tmp_path: Path) -> None:
    path = write(tmp_path, '[station]\nid = "st-1"\n[processor]\nport = "x"\n')
    done = subprocess.run([sys.executable, "-m", "stations", "sync", "--once", "--config",
                           str(path)], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 3
    assert done.stderr == "processor.port: expected an integer from 1 to 65535, found 'x'\n"
    missing = write(tmp_path, '[station]\nid = "st-1"\n')
    done = subprocess.run([sys.executable, "-m", "stations", "sync", "--config", str(missing)],
                          capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 3 and "processor.host: required" in done.stderr
