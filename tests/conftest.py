"""Fixtures for real services on loopback; the logic lives in tests/services.py."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import MosquittoServer, RedisServer, S3Server, SshServer, XvfbDisplay

# -- pytest-xdist: which files a worker takes together -------------------------------------
# scripts/test runs the suite on workers with `--dist loadfile`: a worker takes whole files,
# so a file's module fixtures are built once. Files under one of these folders also form a
# single unit, run one after the other on one worker: each festival file starts every
# program of the festival (supervisord, mpv, gunicorn, ffmpeg, a kiosk...) and times what
# it sees, so two festivals never share the two cores.
LANES = ("tests/e2e/",)


@pytest.hookimpl(optionalhook=True)  # a pytest hook only with pytest-xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadfile, with each of LANES as one unit of work."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LaneScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return next((lane for lane in LANES if path.startswith(lane)), path)

    return LaneScheduling(config, log)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Yield a running redis-server with no persistence."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    """Yield a running moto S3 endpoint with no buckets."""
    with S3Server() as server:
        server.reset()
        yield server


@pytest.fixture
def xvfb_display(tmp_path: Path) -> Iterator[XvfbDisplay]:
    """Yield a running 1280x800 virtual X display."""
    with XvfbDisplay(tmp_path / "xvfb") as display:
        yield display


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshServer]:
    """Yield a running sshd that lets ssh_server.ssh_command() log in."""
    with SshServer(tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """Yield a running mosquitto on loopback that lets anonymous clients in."""
    with MosquittoServer(tmp_path / "mosquitto") as server:
        yield server
