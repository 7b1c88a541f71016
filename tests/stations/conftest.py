"""A station and its processor on loopback: real sshd, a restricted station key, real rsync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moviepkg.writer import PackageWriter
from stations.config import Delivery, Link, Paths, Retention, StationSettings
from stations.flow import Flow, Timeouts
from tests.demo import make_demo, noise_jpegs
from tests.services import SshServer, generate_keypair, require_binary

STATION = "st-1"
T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
T = Timeouts(still_there=90, give_up=30, finish_choice=60, done=45, help=8)


class Clock:
    """The flow's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """The time now."""
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A clock for the flow, moved by the test."""
    return Clock()


@pytest.fixture
def flow(tmp_path: Path, clock: Clock) -> Flow:
    """A flow with a 5-frame limit and the test's clock."""
    return Flow(tmp_path / "outbox", "st-1", frame_limit=5, timeouts=T, clock=clock)


def forced_command(inbox: Path, station: str = STATION, extra: str = "") -> str:
    """The receiver as sshd runs it for a station key (absolute paths, as in production)."""
    return (f"{sys.executable} -m processor receive --station {station} --inbox {inbox} "
            f"{extra}").strip()


def authorize_station(server: SshServer, key: Path, inbox: Path, station: str = STATION,
                      extra: str = "") -> None:
    """Create key and let it do nothing but deliver for station (forced command + restrict)."""
    public = generate_keypair(key, f"stopmo-{station}")
    server.authorize(f'command="{forced_command(inbox, station, extra)}",restrict {public}')


@pytest.fixture(scope="session")
def noise_frames() -> list[bytes]:
    """Sixteen 640x480 JPEGs of noise (~220 kB each: rsync cannot shrink them)."""
    return noise_jpegs(16, (640, 480), seed=60, quality=85)


def add_package(outbox: Path, frames: int = 4, minutes: int = 0,
                station: str = STATION) -> Path:
    """A small finished package in outbox, created T0 + minutes."""
    return make_demo(outbox, frames=frames, station_id=station, title="Test", width=160,
                     height=120, now=T0 + timedelta(minutes=minutes))


def add_big_package(outbox: Path, frames: list[bytes], minutes: int = 0) -> Path:
    """A finished package of the given JPEGs."""
    outbox.mkdir(parents=True, exist_ok=True)
    writer = PackageWriter.start(outbox, STATION, now=T0 + timedelta(minutes=minutes))
    for frame in frames:
        writer.add_frame(frame)
    writer.finish("Big", publish=True, now=T0 + timedelta(minutes=minutes))
    return writer.path


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log records in a program's stderr."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def visible(folder: Path) -> list[str]:
    """Names in folder that the processor would look at (not hidden)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


@dataclass
class Rig:
    """sshd with a restricted station key, an inbox behind it, and a station's folders."""

    server: SshServer
    root: Path
    inbox: Path
    key: Path
    host: str = "127.0.0.1"  # where the station finds the processor's sshd

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def sent(self) -> Path:
        return self.root / "sent"

    def settings(self, **delivery: Any) -> StationSettings:
        """Station settings that reach this sshd (quick retries unless told otherwise)."""
        timing: dict[str, Any] = {"retry_base_seconds": 0.2, "retry_max_seconds": 2.0,
                                  "scan_seconds": 0.2, "interval_seconds": 30.0,
                                  "attempts": 3, **delivery}
        return StationSettings(
            station_id=STATION, paths=Paths(self.outbox, self.sent),
            processor=Link(host=self.host, port=self.server.port, user=self.server.user,
                           key=self.key, known_hosts=self.server.known_hosts),
            delivery=Delivery(**timing), sent=Retention(retention_days=14, min_free_mb=0))

    def config_file(self, **delivery: Any) -> Path:
        """The same settings as a station.toml."""
        settings = self.settings(**delivery)
        lines = ["[station]", f'id = "{STATION}"', "[paths]", f'outbox = "{self.outbox}"',
                 f'sent = "{self.sent}"', "[processor]", f'host = "{self.host}"',
                 f"port = {self.server.port}", f'user = "{self.server.user}"',
                 f'key = "{self.key}"', f'known_hosts = "{self.server.known_hosts}"',
                 "[delivery]"]
        for name in ("retry_base_seconds", "retry_max_seconds", "scan_seconds",
                     "interval_seconds", "attempts", "bwlimit_kbps", "timeout_seconds",
                     "connect_timeout_seconds"):
            lines.append(f"{name} = {getattr(settings.delivery, name)!r}")
        lines += ["[sent]", "min_free_mb = 0"]
        path = self.root / "station.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("STOPMO_") and k != "NOTIFY_SOCKET"}
        env.update(extra)
        return env

    def sync(self, *args: str, timeout: float = 60, env: dict[str, str] | None = None,
             **delivery: Any) -> subprocess.CompletedProcess[str]:
        """Run `python -m stations sync ARGS --config <this rig>` to its end."""
        return subprocess.run([sys.executable, "-m", "stations", "sync", *args, "--config",
                               str(self.config_file(**delivery))], env=env or self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def spawn(self, *args: str, env: dict[str, str] | None = None, **delivery: Any
              ) -> subprocess.Popen[str]:
        """Start `python -m stations sync ARGS` in the background (stderr piped)."""
        return subprocess.Popen([sys.executable, "-m", "stations", "sync", *args, "--config",
                                 str(self.config_file(**delivery))], env=env or self.env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def rig(ssh_server: SshServer, tmp_path: Path) -> Iterator[Rig]:
    """A running sshd whose station key may only deliver into tmp_path/inbox."""
    require_binary("rsync")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    key = tmp_path / "station_key"
    authorize_station(ssh_server, key, inbox, extra="--min-free-mb 0")
    yield Rig(ssh_server, tmp_path, inbox, key)


class LineReader:
    """Collect a child's stderr lines in a thread, so a test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        import threading

        assert proc.stderr is not None
        self.stream = proc.stderr
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.stream:
            self.lines.append(line)

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records read so far."""
        return log_lines("".join(self.lines))

    def text(self) -> str:
        """Everything, once the child has ended."""
        self.thread.join(timeout=10)
        return "".join(self.lines)
