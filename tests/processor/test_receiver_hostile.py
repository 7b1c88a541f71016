"""A station key used against the processor: it cannot fill the disk, crash the receiver,
learn our paths, or speak for another station. Real sshd and rsync on loopback."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

from moviepkg.environment import Environment
from moviepkg.reader import read_package
from moviepkg.writer import PackageWriter
from processor import receiver
from processor.errors import ExitStatus
from processor.receiver import Receiver, one_line
from processor.staging import remove, usage
from tests.demo import make_demo, noise_jpegs
from tests.services import SshServer, generate_keypair, require_binary

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
GiB, MiB = 2**30, 2**20
# As the station agent runs ssh: rsync's SIGUSR1 on a failed transfer must not cut off the
# receiver's verdict.
OUTLIVE_RSYNC = ["sh", "-c", 'trap "" USR1; exec "$@"', "ssh"]


class Station:
    """One station key whose forced command is `processor receive` into its own inbox."""

    def __init__(self, server: SshServer, root: Path, station: str, extra: str) -> None:
        self.server = server
        self.inbox = root / "inbox"
        self.inbox.mkdir(exist_ok=True)
        self.log = root / "receive.log"
        self.key = root / f"{station}_key"
        public = generate_keypair(self.key, station)
        command = (f"{sys.executable} -m processor receive --station {station} "
                   f"--inbox {self.inbox} --log {self.log} {extra}")
        server.authorize(f'command="{command}",restrict {public}')

    def ssh(self, *command: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.server.ssh_command(self.key), *command], input=stdin,
                              capture_output=True, timeout=60)

    def rsync(self, package: Path, *options: str, timeout: float = 120
              ) -> subprocess.CompletedProcess[str]:
        rsh = shlex.join([*OUTLIVE_RSYNC, *self.server.ssh_args(self.key)])
        return subprocess.run(["rsync", "-rt", "--stats", *options, "-e", rsh, f"{package}/",
                               f"{self.server.destination}:.partial/{package.name}/"],
                              capture_output=True, text=True, timeout=timeout)

    def visible(self) -> list[str]:
        return sorted(p.name for p in self.inbox.iterdir() if not p.name.startswith("."))


def verdicts(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("stopmo-receive:")]


def on_disk(folder: Path) -> int:
    """Bytes really allocated under folder (what a full disk is made of)."""
    return sum(os.lstat(os.path.join(top, name)).st_blocks * 512
               for top, dirs, files in os.walk(folder) for name in dirs + files)


def sparse(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        fh.truncate(size)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    require_binary("rsync")
    with SshServer(tmp_path_factory.mktemp("sshd")) as sshd:
        yield sshd


@pytest.fixture
def station(server: SshServer, tmp_path: Path) -> Station:
    return Station(server, tmp_path, "st-1", "--min-free-mb 0")


@pytest.fixture(scope="module")
def noise() -> list[bytes]:
    """Eight 720x540 JPEGs of noise, about 250 kB each (rsync cannot shrink them)."""
    return noise_jpegs(8, (720, 540), seed=50, quality=88)


def small_package(outbox: Path, station: str = "st-1") -> Path:
    return make_demo(outbox, frames=3, station_id=station, width=160, height=120, now=T0)


# --- F1: the disk --------------------------------------------------------------------------

@pytest.mark.parametrize("frame", ["0001.jpg", "0003.jpg"])
def test_a_sparse_giant_frame_sent_compressed_never_reaches_the_disk(
        station: Station, tmp_path: Path, frame: str) -> None:
    package = small_package(tmp_path / "outbox")
    sparse(package / frame, 2 * GiB)  # 0001.jpg: listed in the MANIFEST; 0003.jpg: an extra
    done = station.rsync(package, "-z")
    assert on_disk(station.inbox) < 5 * MiB, done.stderr
    assert not (station.inbox / ".partial" / package.name).exists()
    if frame == "0001.jpg":  # rsync skipped it before a byte was sent: the frame is missing
        assert verdicts(done.stderr) == [f"stopmo-receive: invalid {package.name} numbering: "
                                         "0002.jpg: expected frame 0001.jpg before it, found "
                                         "a gap at 0001.jpg"], done.stderr
        assert station.visible() == []
        kept = (station.inbox / ".refused" / package.name).read_text()
        assert f"invalid {package.name} numbering:" in kept  # the reason stays, not the bytes
    else:  # the package as its MANIFEST lists it, without the file that was never sent
        assert verdicts(done.stderr)[0].startswith(f"stopmo-receive: ok {package.name} ")
        assert not (station.inbox / package.name / frame).exists()
        read_package(station.inbox / package.name)


def test_an_upload_over_its_budget_is_stopped_while_it_lands(server: SshServer,
                                                            tmp_path: Path) -> None:
    station = Station(server, tmp_path, "st-1", "--min-free-mb 0 --max-package-mb 8")
    package = small_package(tmp_path / "outbox")
    for n in range(12):  # each under --max-size, 180 MB of zeros together
        sparse(package / f"pad{n:02d}", 15 * MiB)
    done = station.rsync(package, "-z")
    said = verdicts(done.stderr)
    assert len(said) == 1, done.stderr
    assert said[0].startswith(f"stopmo-receive: invalid {package.name} limit: ")
    assert said[0].endswith("MB staged, more than the 8 MB a package may take")
    assert done.returncode != 0 and station.visible() == []
    assert not (station.inbox / ".partial" / package.name).exists()
    assert on_disk(station.inbox) < 5 * MiB
    assert "limit" in (station.inbox / ".refused" / package.name).read_text()


@pytest.mark.slow  # 150 MB over real sshd
def test_a_large_valid_package_goes_through_a_tight_budget(server: SshServer, tmp_path: Path,
                                                          noise: list[bytes]) -> None:
    (tmp_path / "outbox").mkdir()
    writer = PackageWriter.start(tmp_path / "outbox", "st-1", now=T0)
    for n in range(600):
        writer.add_frame(noise[n % len(noise)])
    writer.finish("Long", publish=True, now=T0)
    package = writer.path
    size = sum(p.stat().st_size for p in package.iterdir())
    assert size > 600 * 240_000  # ~250 kB a frame
    station = Station(server, tmp_path, "st-1", f"--min-free-mb 0 --max-package-mb "
                      f"{size // MiB + 20}")
    done = station.rsync(package, "-z")
    assert verdicts(done.stderr)[0].startswith(f"stopmo-receive: ok {package.name} "), \
        done.stderr
    assert station.visible() == [package.name]
    assert len(read_package(station.inbox / package.name).frames) == 600


def test_a_stations_abandoned_staged_parts_go_when_it_sends_another(
        station: Station, tmp_path: Path) -> None:
    staging = station.inbox / ".partial"
    abandoned = staging / "st-1-20260430t090000z-0001"
    others = staging / "st-2-20260430t090000z-0001"  # another station's: not ours to touch
    for folder in (abandoned, others):
        folder.mkdir(parents=True)
        (folder / "0000.jpg").write_bytes(b"x" * 1000)
    package = small_package(tmp_path / "outbox")
    done = station.rsync(package)
    assert verdicts(done.stderr)[0].startswith(f"stopmo-receive: ok {package.name}")
    assert not abandoned.exists() and (others / "0000.jpg").exists()


def test_staged_folders_are_measured_and_removed_however_deep(tmp_path: Path) -> None:
    sparse(tmp_path / "holes", 3 * GiB)
    deep = str(tmp_path)
    for _ in range(1500):  # deeper than Python's recursion limit
        deep += "/d"
        os.mkdir(deep)
    Path(deep, "f").write_bytes(b"x")
    used = usage([tmp_path])
    assert used.bytes >= 3 * GiB and used.entries == 1 + 1500 + 1
    remove(tmp_path / "d")  # as deep as a station may send it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holes"]


# --- F6: nothing but one line reaches the station --------------------------------------------

@pytest.mark.parametrize("document", [
    b'{"station_id": "st-1", "x": ' + b"[" * 30000 + b"]" * 30000 + b"}",  # 60 kB, deep
    b'{"station_id": "st-1", "x": ' + b'{"a": ' * 9000 + b"1" + b"}" * 9000 + b"}",
    b'{"station_id": "st-1", "x": ' + b"9" * 60000 + b"}",
    b'{"station_id": "st-1", "x": NaN}',
    b'{"station_id": "st-1"}' + b" " * 70000,
    b'\xff{"station_id": "st-1"}',
    b'["station_id", "st-1"]',
])
def test_a_bad_heartbeat_gets_one_line_and_no_traceback(station: Station,
                                                        document: bytes) -> None:
    done = station.ssh("status", stdin=document)
    said = done.stderr.decode(errors="replace")
    assert said.splitlines() == [line for line in said.splitlines()
                                 if line.startswith("stopmo-receive: refused: ")], said
    assert len(said.splitlines()) == 1 and done.returncode == ExitStatus.INVALID
    assert "Traceback" not in said and "/work" not in said and ".py" not in said
    assert not (station.inbox / ".status").exists()
    ok = station.ssh("status", stdin=b'{"station_id": "st-1", "disks": [{"free": 1}]}')
    assert ok.stderr.decode().splitlines() == ["stopmo-receive: ok status"]


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_an_unexpected_failure_gives_one_generic_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_logging: None) -> None:
    def explode(self: Receiver, command: str | None, stdin: IO[bytes]) -> tuple[ExitStatus, str]:
        raise RuntimeError(f"boom in {receiver.__file__}")

    monkeypatch.setattr(Receiver, "serve", explode)
    env = Environment(stdin=io.BytesIO(), stdout=io.StringIO(), stderr=io.StringIO(),
                      env={"SSH_ORIGINAL_COMMAND": "status"})
    args = argparse.Namespace(station="st-1", inbox=tmp_path, status_dir=None, min_free_mb=0,
                              max_package_mb=None, rsync="rsync", log=tmp_path / "receive.log")
    assert receiver.main(args, env) == ExitStatus.FAILURE
    assert isinstance(env.stderr, io.StringIO) and isinstance(env.stdout, io.StringIO)
    said = env.stderr.getvalue()
    assert said == "stopmo-receive: error: the receiver failed; its log says why\n"
    assert env.stdout.getvalue() == ""
    logged = [json.loads(line) for line in (tmp_path / "receive.log").read_text().splitlines()]
    assert "boom in" in logged[-1]["exc"] and "RuntimeError" in logged[-1]["msg"]


def test_a_verdict_is_one_printable_line_without_our_paths(tmp_path: Path) -> None:
    shown = one_line(f"invalid x stray-entry: {tmp_path}/x: a\nstopmo-receive: ok" + "y" * 900,
                     tmp_path)
    assert str(tmp_path) not in shown and "\n" not in shown and len(shown) <= 400
    assert shown.startswith("invalid x stray-entry: INBOX/x: a?stopmo-receive: ok")


# --- F7: a key speaks for its own station only -----------------------------------------------

def test_a_manifest_naming_another_station_is_refused(server: SshServer,
                                                      tmp_path: Path) -> None:
    station = Station(server, tmp_path, "st-3", "--min-free-mb 0")
    package = small_package(tmp_path / "outbox", station="st-3")
    manifest = json.loads((package / "MANIFEST").read_text())
    manifest["station_id"] = "st-1"  # st-3's key, st-1's name on the movie
    (package / "MANIFEST").write_text(json.dumps(manifest))
    done = station.rsync(package)
    assert verdicts(done.stderr) == [f"stopmo-receive: invalid {package.name} station: its "
                                     "MANIFEST says station_id 'st-1', but the key is st-3's"
                                     ], done.stderr
    assert station.visible() == [] and list((station.inbox / ".received").iterdir()) == []
    assert not (station.inbox / ".partial" / package.name).exists()
    assert "station" in (station.inbox / ".refused" / package.name).read_text()
