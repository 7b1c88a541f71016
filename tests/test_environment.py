"""Every command runs in-process with its own streams and variables (moviepkg.environment)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from moviepkg.delivery import PROTOCOL
from moviepkg.environment import Environment
from moviepkg.exitcodes import ExitStatus
from tests.demo import make_demo


class Captured(Environment):
    """An environment whose output the test reads."""

    @classmethod
    def of(cls, env: dict[str, str], stdin: bytes = b"") -> Captured:
        return cls(stdin=io.BytesIO(stdin), stdout=io.StringIO(), stderr=io.StringIO(),
                   env=env)

    def out(self) -> str:
        assert isinstance(self.stdout, io.StringIO)
        return self.stdout.getvalue()

    def err(self) -> str:
        assert isinstance(self.stderr, io.StringIO)
        return self.stderr.getvalue()


@pytest.fixture(autouse=True)
def own_logging() -> Iterator[None]:
    """The commands set up logging for their process: give the root logger back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_moviepkg_validate_in_process(tmp_path: Path) -> None:
    from moviepkg.cli import main

    package = make_demo(tmp_path, frames=2, width=64, height=48)
    env = Captured.of({})
    assert main(["validate", str(package)], env) == ExitStatus.OK
    assert env.out().startswith(f"valid: {package.name}") and env.err() == ""


def test_the_receiver_in_process_reads_its_request_and_stdin_from_env(tmp_path: Path) -> None:
    from processor.cli import main

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    beat = json.dumps({"station_id": "st-1", "queued_packages": 3}).encode()
    env = Captured.of({"SSH_ORIGINAL_COMMAND": f"{PROTOCOL} status"}, stdin=beat)
    argv = ["receive", "--station", "st-1", "--inbox", str(inbox), "--min-free-mb", "0"]
    assert main(argv, env) == ExitStatus.OK
    assert env.err().startswith("stopmo-receive: ok") and env.out() == ""
    kept = json.loads((inbox / ".status" / "st-1.json").read_text())
    assert kept["queued_packages"] == 3
    refused = Captured.of({"SSH_ORIGINAL_COMMAND": "cat /etc/passwd"})
    assert main(argv, refused) == ExitStatus.INVALID
    assert refused.err().splitlines() == [
        "stopmo-receive: refused: only rsync uploads and status are allowed, not "
        "'cat /etc/passwd'"]


def test_processor_settings_come_from_env(tmp_path: Path) -> None:
    from processor.cli import main

    env = Captured.of({"STOPMO_INBOX": str(tmp_path / "inbox"),
                       "STOPMO_WORK_DIR": str(tmp_path / "work")})
    assert main(["status"], env) == ExitStatus.OK
    assert env.out().strip() == "publish queue: empty"
    bad = Captured.of({"STOPMO_WORK_DIR": "relative/path", "STOPMO_NICE": "-3"})
    assert main(["status"], bad) == ExitStatus.CONFIG
    assert sorted(bad.err().splitlines()) == [
        "STOPMO_NICE: expected an integer from 0 to 19, found -3",
        "STOPMO_WORK_DIR: expected an absolute path, found 'relative/path'"]


def test_station_settings_come_from_env(tmp_path: Path) -> None:
    from stations.cli import main

    env = Captured.of({"STOPMO_STATION_ID": "st-5", "STOPMO_OUTBOX": str(tmp_path / "o")})
    assert main(["demo", "--movies", "0"], env) == ExitStatus.OK
    missing = Captured.of({})
    assert main(["demo"], missing) == ExitStatus.CONFIG
    assert "station.id: required" in missing.err()
