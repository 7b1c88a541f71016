"""One SSH connection per cycle, against a real sshd: what it saves, what it must not allow.

A cycle's sessions (each package's rsync, the heartbeat) share one OpenSSH master. sshd
runs the key's forced command for every session channel, whoever opens it, so through a
shared connection a station key still does nothing but deliver. A master that dies (killed
between packages or mid-transfer, or its link cut) costs a fresh connection or one retry,
never a movie.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from moviepkg.reader import read_package
from moviepkg.reporting import BaseReporter
from stations.delivery import Remote
from stations.ssh import Runner, destination, ssh_args
from stations.sync import Agent
from tests.fleet.fleet import Namespaces, in_ns, require_root
from tests.services import (
    SshServer,
    free_port,
    generate_keypair,
    require_binary,
    ssh_masters,
    wait_until,
)
from tests.stations.conftest import (
    STATION,
    LineReader,
    Rig,
    add_big_package,
    add_package,
    authorize_station,
    log_lines,
    visible,
)

pytestmark = pytest.mark.slow  # deliveries over real sshd

FRAME = re.compile(r"\d{4}\.jpg")


def gone(pid: int) -> bool:
    """Whether pid has ended (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill_master(marker: str) -> int:
    """SIGKILL the one master of the test (its socket stays behind, as after a crash)."""
    [pid] = ssh_masters(marker)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: gone(pid), timeout=10, message="the master to die")
    return pid


def test_a_cycle_makes_one_connection_for_its_packages_and_heartbeat(rig: Rig) -> None:
    older, newer = add_package(rig.outbox, minutes=0), add_package(rig.outbox, minutes=5)
    runtime = rig.root / "run"
    runtime.mkdir(mode=0o700)
    before = rig.server.accepted()
    done = rig.sync("--once", env=rig.env(TMPDIR=str(runtime)))
    assert done.returncode == 0, done.stderr
    assert rig.server.accepted() - before == 1  # two rsyncs and a heartbeat, one connection
    assert visible(rig.inbox) == sorted([older.name, newer.name])
    assert json.loads((rig.inbox / ".status" / f"{STATION}.json").read_text())["station_id"]
    assert list(runtime.iterdir()) == []  # the private folder and its socket are gone
    assert ssh_masters(str(rig.key)) == []  # and so is the master


def test_a_cycle_with_only_the_heartbeat_to_send_starts_no_master(rig: Rig) -> None:
    # Sharing pays only with two sessions or more: an idle cycle (every 30 s on every
    # station) makes one plain session, not a master, a session and its exit.
    bin_dir, calls = rig.root / "bin", rig.root / "ssh-calls"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\nexec /usr/bin/ssh "$@"\n')
    wrapper.chmod(0o755)
    before = rig.server.accepted()
    done = rig.sync("--once", env=rig.env(PATH=f"{bin_dir}:{os.environ['PATH']}"))
    assert done.returncode == 0, done.stderr
    assert rig.server.accepted() - before == 1
    assert (rig.inbox / ".status" / f"{STATION}.json").is_file()  # the heartbeat went
    [call] = calls.read_text().splitlines()
    assert "ControlPath=none" in call and "ControlMaster=yes" not in call


def test_the_control_socket_is_in_a_folder_only_the_agent_may_enter(rig: Rig) -> None:
    remote = Remote(rig.settings().processor, rig.settings().delivery, Runner())
    with remote.connected():
        path = remote.connection.control("test")
        assert path is not None and path.is_socket()
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert path.parent.stat().st_uid == os.getuid()
    assert not path.parent.exists()
    assert ssh_masters(str(rig.key)) == []


@pytest.fixture
def shared(rig: Rig) -> Iterator[list[str]]:
    """An open shared connection of the station key: the ssh command of a session on it."""
    settings = rig.settings()
    remote = Remote(settings.processor, settings.delivery, Runner())
    with remote.connected():
        control = remote.connection.control("test")
        assert control is not None
        yield ssh_args(settings.processor, settings.delivery, control=control)


def session(ssh: list[str], *args: str, input: bytes = b"") -> subprocess.CompletedProcess[str]:
    """Run one ssh (a session on the shared connection, or an `-O` request to it)."""
    return subprocess.run([*ssh, *args], input=input.decode(), capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("command", [
    ["cat /etc/passwd"],
    ["rsync --server --sender -r . /"],  # read, not write
    ["stopmo/1 rsync --server -rt . /tmp/elsewhere/"],
    [],  # a login shell
])
def test_through_a_shared_connection_the_key_still_runs_only_the_receiver(
        rig: Rig, shared: list[str], command: list[str]) -> None:
    before = rig.server.accepted()
    done = session(shared, destination(rig.settings().processor), *command)
    assert done.returncode == 5, done  # the receiver's refusal, nothing run
    assert "stopmo-receive: refused:" in done.stderr
    assert "root:" not in done.stdout
    assert not Path("/tmp/elsewhere").exists()
    assert rig.server.accepted() == before  # it was a session on the shared connection


def test_a_pty_on_a_shared_connection_is_refused_and_the_receiver_still_answers(
        rig: Rig, shared: list[str]) -> None:
    done = session(shared, "-tt", destination(rig.settings().processor), "id")
    assert "PTY allocation request failed" in done.stderr
    assert "stopmo-receive: refused:" in done.stderr and "uid=" not in done.stdout


def test_no_forwarding_through_a_shared_connection(rig: Rig, shared: list[str]) -> None:
    target = destination(rig.settings().processor)
    stdio = session(shared, "-W", f"127.0.0.1:{rig.server.port}", target)
    assert stdio.returncode != 0 and "SSH-2.0" not in stdio.stdout, stdio
    port = free_port()
    session(shared, "-O", "forward", "-L", f"{port}:127.0.0.1:{rig.server.port}", target)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as tunnel:
            tunnel.settimeout(5)
            assert not tunnel.recv(64).startswith(b"SSH-2.0")  # sshd refused the channel
    except OSError:
        pass  # or nothing listens at all: either way no tunnel
    finally:
        session(shared, "-O", "cancel", "-L", f"{port}:127.0.0.1:{rig.server.port}", target)


def test_each_session_on_a_shared_connection_runs_the_forced_command_anew(
        rig: Rig, shared: list[str]) -> None:
    before = rig.server.accepted()
    target = destination(rig.settings().processor)
    status = rig.inbox / ".status" / f"{STATION}.json"
    said = []
    for n in range(2):
        document = json.dumps({"station_id": STATION, "n": n}).encode()
        done = session(shared, target, "stopmo/1 status", input=document)
        assert done.returncode == 0 and "stopmo-receive: ok status" in done.stderr, done
        said.append(json.loads(status.read_text())["n"])
    assert said == [0, 1]  # the receiver ran for each session and read each one's stdin
    assert rig.server.accepted() == before


class KillTheMasterAfterTheFirstDelivery(BaseReporter):
    """A reporter that kills the cycle's master as soon as one package is delivered."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.killed: list[int] = []

    def event(self, kind: str, package_id: str, detail: str = "") -> None:
        if kind == "delivered" and not self.killed:
            self.killed.append(kill_master(self.marker))


def test_a_master_killed_between_packages_is_replaced_and_the_cycle_goes_on(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    first, second = add_package(rig.outbox, minutes=0), add_package(rig.outbox, minutes=5)
    agent = Agent(rig.settings())
    killer = KillTheMasterAfterTheFirstDelivery(str(rig.key))
    agent.reporter = killer
    before = rig.server.accepted()
    with caplog.at_level(logging.INFO):
        assert agent.run_once() is True
    assert len(killer.killed) == 1
    assert "the shared SSH connection is gone (before the delivery); connecting again" \
        in caplog.text
    assert rig.server.accepted() - before == 2  # the first master, then a fresh one
    assert visible(rig.inbox) == sorted([first.name, second.name])
    assert visible(rig.sent) == sorted([first.name, second.name])
    for name in (first.name, second.name):
        read_package(rig.inbox / name)
    assert ssh_masters(str(rig.key)) == []


def test_a_master_killed_mid_transfer_costs_one_retry_and_resumes(
        rig: Rig, noise_frames: list[bytes]) -> None:
    package = add_big_package(rig.outbox, noise_frames[:12])
    size = sum(p.stat().st_size for p in package.iterdir())
    staged = rig.inbox / ".partial" / package.name
    agent = rig.spawn("--once", attempts=6, bwlimit_kbps=1500)
    reader = LineReader(agent)
    try:
        wait_until(lambda: staged.is_dir() and
                   sum(1 for p in staged.iterdir() if FRAME.fullmatch(p.name)) >= 6,
                   timeout=30, interval=0.005, message="half the frames staged")
        kill_master(str(rig.key))
        assert agent.wait(timeout=60) == 0, reader.text()
    finally:
        if agent.poll() is None:
            agent.kill()
    records = log_lines(reader.text())
    assert [r["kind"] for r in records if "retry_in" in r] == ["interrupted"]
    resumed = [r["bytes_sent"] for r in records if r.get("bytes_sent")]
    assert len(resumed) == 1 and resumed[0] < size * 0.7, (resumed, size)
    assert visible(rig.inbox) == [package.name]
    read_package(rig.inbox / package.name)
    assert ssh_masters(str(rig.key)) == []


def test_a_master_that_cannot_log_in_names_the_reason(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    package = add_package(rig.outbox)
    rig.key = rig.root / "stranger_key"
    generate_keypair(rig.key, "a key sshd does not know")
    before = rig.server.accepted()
    assert Agent(rig.settings(attempts=1)).run_once() is False
    assert "delivery: the processor refused our key" in caplog.text
    assert rig.server.accepted() == before and package.is_dir()
    assert ssh_masters(str(rig.key)) == []


# --- a real network cut, in network namespaces ------------------------------------------------

SERVER_IP, CLIENT_IP = "10.77.0.1", "10.77.0.2"


class NsSshServer(SshServer):
    """The test sshd, listening on SERVER_IP inside a network namespace."""

    def __init__(self, tmpdir: Path, ns: str) -> None:
        super().__init__(tmpdir)
        self.ns = ns
        self.config.write_text(self.config.read_text().replace(
            "ListenAddress 127.0.0.1", f"ListenAddress {SERVER_IP}"))
        host_key = self.known_hosts.read_text().split(" ", 1)[1]
        self.known_hosts.write_text(f"[{SERVER_IP}]:{self.port} {host_key}")

    def argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *super().argv()]

    def ready(self) -> bool:
        assert self.process is not None
        return self.pid_file.exists() and "Server listening on" in self.log_path.read_text(
            errors="replace")


@pytest.fixture
def cut_rig(tmp_path: Path) -> Iterator[tuple[Rig, str, str]]:
    """A station in one network namespace, its processor's sshd in another, one veth
    between them: (the rig, the station's namespace, the processor's)."""
    require_root()
    require_binary("ip")
    require_binary("rsync")
    spaces = Namespaces("cut")
    server = None
    try:
        server_ns, client_ns = spaces.add("proc"), spaces.add("st")
        spaces.link(server_ns, "eth0", f"{SERVER_IP}/30", client_ns, "eth0", f"{CLIENT_IP}/30")
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        server = NsSshServer(tmp_path / "sshd", server_ns)
        key = tmp_path / "station_key"
        authorize_station(server, key, inbox, extra="--min-free-mb 0")
        server.start()
        yield Rig(server, tmp_path, inbox, key, host=SERVER_IP), client_ns, server_ns
    finally:
        if server is not None:
            server.stop()
        spaces.close()


def test_after_a_network_cut_mid_transfer_the_next_cycle_delivers(
        cut_rig: tuple[Rig, str, str], noise_frames: list[bytes]) -> None:
    rig, client_ns, server_ns = cut_rig
    package = add_big_package(rig.outbox, noise_frames[:12])
    size = sum(p.stat().st_size for p in package.iterdir())
    staged = rig.inbox / ".partial" / package.name
    config = rig.config_file(attempts=30, bwlimit_kbps=1000, retry_base_seconds=0.3,
                             retry_max_seconds=2.0, timeout_seconds=5,
                             connect_timeout_seconds=2)
    agent = subprocess.Popen(["ip", "netns", "exec", client_ns, sys.executable, "-m",
                              "stations", "sync", "--once", "--config", str(config)],
                             env=rig.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    reader = LineReader(agent)
    try:
        wait_until(lambda: staged.is_dir() and
                   sum(1 for p in staged.iterdir() if FRAME.fullmatch(p.name)) >= 5,
                   timeout=30, interval=0.005, message="some frames staged")
        in_ns(server_ns, "ip", "link", "set", "eth0", "down")  # the processor's link drops
        wait_until(lambda: any(r.get("kind") == "interrupted" for r in reader.records()),
                   timeout=30, message="the agent to notice the cut")
        in_ns(server_ns, "ip", "link", "set", "eth0", "up")
        assert agent.wait(timeout=90) == 0, reader.text()
    finally:
        if agent.poll() is None:
            agent.kill()
    records = log_lines(reader.text())
    kinds = [r["kind"] for r in records if "retry_in" in r]
    assert kinds[0] == "interrupted" and set(kinds) <= {"interrupted", "unreachable"}, kinds
    resumed = [r["bytes_sent"] for r in records if r.get("bytes_sent")]
    assert len(resumed) == 1 and resumed[0] < size * 0.8, (resumed, size)
    assert visible(rig.inbox) == [package.name] and visible(rig.sent) == [package.name]
    read_package(rig.inbox / package.name)
    assert ssh_masters(str(rig.key)) == []
