"""Every command exits with the one table of moviepkg.exitcodes: a case per command and code."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from moviepkg.exitcodes import ExitStatus
from tests.demo import make_demo

ROOT = Path(__file__).resolve().parents[1]


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STOPMO_", "AWS_", "STORAGE_URL"))}
    env.update({"STOPMO_INBOX": str(tmp_path / "inbox"),
                "STOPMO_WORK_DIR": str(tmp_path / "work"),
                "STOPMO_OUTBOX": str(tmp_path / "outbox"),
                "STOPMO_SENT_DIR": str(tmp_path / "sent"),
                "STOPMO_CAMERA": "fake", "STOPMO_BUTTONS": "keyboard", **extra})
    return env


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold the flock a running daemon or agent would hold on path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def invalid_package(tmp_path: Path) -> Path:
    package = make_demo(tmp_path / "bad", frames=3, width=64, height=48)
    (package / "0001.jpg").unlink()
    return package


def valid_package(tmp_path: Path) -> Path:
    return make_demo(tmp_path / "good", frames=2, width=64, height=48)


MOVIEPKG = [sys.executable, "-m", "moviepkg"]
DEMO = [sys.executable, str(ROOT / "tests" / "demo.py")]
PROCESSOR = [sys.executable, "-m", "processor"]
STATION = [sys.executable, "-m", "stations"]
GENERATE = [sys.executable, str(ROOT / "openwrt" / "generate.py")]

Case = Callable[[Path], tuple[list[str], dict[str, str]]]
CASES: dict[str, tuple[ExitStatus, Case]] = {
    "moviepkg ok": (ExitStatus.OK, lambda t: (
        [*MOVIEPKG, "validate", str(valid_package(t))], clean_env(t))),
    "moviepkg failure": (ExitStatus.FAILURE, lambda t: (  # an I/O error, not the package's
        [*MOVIEPKG, "validate", str(t / ("x" * 300))], clean_env(t))),
    "demo ok": (ExitStatus.OK, lambda t: ([*DEMO, str(t)], clean_env(t))),
    "demo failure": (ExitStatus.FAILURE, lambda t: ([*DEMO, str(t), "--size", "big"],
                                                    clean_env(t))),
    "demo usage": (ExitStatus.USAGE, lambda t: ([*DEMO, str(t), "--frames", "0"], clean_env(t))),
    "moviepkg usage": (ExitStatus.USAGE, lambda t: ([*MOVIEPKG, "dance"], clean_env(t))),
    "moviepkg invalid": (ExitStatus.INVALID, lambda t: (
        [*MOVIEPKG, "validate", str(invalid_package(t))], clean_env(t))),
    "processor ok": (ExitStatus.OK, lambda t: ([*PROCESSOR, "status"], clean_env(t))),
    "processor failure": (ExitStatus.FAILURE, lambda t: (
        [*PROCESSOR, "process", str(t / "no-such-package")], clean_env(t))),
    "processor usage": (ExitStatus.USAGE, lambda t: ([*PROCESSOR, "dance"], clean_env(t))),
    "processor config": (ExitStatus.CONFIG, lambda t: (
        [*PROCESSOR, "status"], clean_env(t, STORAGE_URL="gopher://x"))),
    "processor invalid": (ExitStatus.INVALID, lambda t: (
        [*PROCESSOR, "process", str(invalid_package(t))], clean_env(t))),
    "station ok": (ExitStatus.OK, lambda t: (
        [*STATION, "demo", "--movies", "0"], clean_env(t, STOPMO_STATION_ID="st-1"))),
    "station failure": (ExitStatus.FAILURE, lambda t: (
        [*STATION, "demo", "--frames", "2"],
        clean_env(t, STOPMO_STATION_ID="st-1", STOPMO_OUTBOX="/proc/stopmo-outbox"))),
    "station usage": (ExitStatus.USAGE, lambda t: (
        [*STATION, "demo", "--frames", "0"], clean_env(t, STOPMO_STATION_ID="st-1"))),
    "station usage (argparse)": (ExitStatus.USAGE, lambda t: ([*STATION, "--nope"],
                                                              clean_env(t))),
    "station config": (ExitStatus.CONFIG, lambda t: ([*STATION, "demo"], clean_env(t))),
    "generate ok": (ExitStatus.OK, lambda t: ([*GENERATE, "--check"], clean_env(t))),
    "generate usage": (ExitStatus.USAGE, lambda t: ([*GENERATE, "--nope"], clean_env(t))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_command_and_code(case: str, tmp_path: Path) -> None:
    expected, make = CASES[case]
    argv, env = make(tmp_path)
    done = run(argv, env)
    assert done.returncode == expected, f"{case}: {done.returncode}\n{done.stderr[-800:]}"


def test_processor_busy_while_another_daemon_runs(tmp_path: Path) -> None:
    with held(tmp_path / "work" / "daemon.lock"):
        done = run([*PROCESSOR, "run"], clean_env(tmp_path))
    assert done.returncode == ExitStatus.BUSY and "another processor daemon" in done.stderr


def test_station_busy_while_another_agent_runs(tmp_path: Path) -> None:
    for name in ("key", "known_hosts"):
        (tmp_path / name).write_text("")
    env = clean_env(tmp_path, STOPMO_STATION_ID="st-1", STOPMO_PROCESSOR_HOST="127.0.0.1",
                    STOPMO_SSH_KEY=str(tmp_path / "key"),
                    STOPMO_KNOWN_HOSTS=str(tmp_path / "known_hosts"))
    from stations.sync import LOCK_NAME

    with held(tmp_path / "outbox" / LOCK_NAME):
        done = run([*STATION, "sync", "--once"], env)
    assert done.returncode == ExitStatus.BUSY and "another sync agent" in done.stderr


def test_the_table_is_the_one_every_program_uses() -> None:
    from processor.errors import ExitStatus as ProcessorExit
    from stations.cli import ExitStatus as StationExit

    assert ProcessorExit is ExitStatus and StationExit is ExitStatus
    assert [(s.name, s.value) for s in ExitStatus] == [
        ("OK", 0), ("FAILURE", 1), ("USAGE", 2), ("CONFIG", 3), ("BUSY", 4), ("INVALID", 5)]
    doc = (ROOT / "docs" / "commands.md").read_text()
    for status in ExitStatus:
        assert f"| {status.value} | `{status.name}` |" in doc
