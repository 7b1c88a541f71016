"""The agent's parts: command lines, verdicts, backoff, the lock, and failures it must survive."""

from __future__ import annotations

import logging
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from moviepkg.reader import read_package
from stations.config import Delivery, Link
from stations.delivery import bytes_sent, parse_verdict, rsync_args
from stations.ssh import Completed, classify, exit_args, master_args, ssh_args
from stations.sync import Agent, AgentBusy, Backoff, agent_lock
from tests.services import closed_port, generate_keypair
from tests.stations.conftest import Rig, add_package, visible

LINK = Link(host="10.0.0.2", port=2222, user="stopmo", key=Path("/etc/stopmo/k"),
            known_hosts=Path("/etc/stopmo/known_hosts"))


def test_ssh_is_key_only_batch_and_pins_the_host_key() -> None:
    argv = ssh_args(LINK, Delivery(timeout_seconds=60, connect_timeout_seconds=7))
    options = {argv[i + 1] for i, word in enumerate(argv) if word == "-o"}
    assert {"BatchMode=yes", "StrictHostKeyChecking=yes", "IdentitiesOnly=yes",
            "UserKnownHostsFile=/etc/stopmo/known_hosts", "GlobalKnownHostsFile=/dev/null",
            "PasswordAuthentication=no", "ConnectTimeout=7", "ServerAliveInterval=20",
            "UpdateHostKeys=no"} <= options
    assert argv[:3] == ["ssh", "-F", "/dev/null"]  # no user or system ssh_config
    assert argv[argv.index("-i") + 1] == "/etc/stopmo/k" and argv[argv.index("-p") + 1] == "2222"


def test_rsync_sends_into_staging_resumably_with_an_optional_limit() -> None:
    package = Path("/var/lib/stopmo/outbox/st-3-20260501t120000z-beef")
    argv = rsync_args(package, LINK, Delivery(timeout_seconds=45))
    assert argv[:7] == ["rsync", "-rt", "--delete", "--partial-dir=.rsync-partial",
                        "--rsync-path=stopmo/1 rsync", "--timeout=45", "--stats"]
    assert not any(word.startswith("--bwlimit") for word in argv)
    assert argv[-2:] == [f"{package}/", "stopmo@10.0.0.2:.partial/st-3-20260501t120000z-beef/"]
    shell = shlex.split(argv[argv.index("-e") + 1])
    assert shell[:4] == ["sh", "-c", 'trap "" USR1; exec "$@"', "ssh"]
    assert shell[4:] == ssh_args(LINK, Delivery(timeout_seconds=45))
    limited = rsync_args(package, replace(LINK, host="fd00::2"), Delivery(bwlimit_kbps=128))
    assert "--bwlimit=128" in limited and limited[-1].startswith("stopmo@[fd00::2]:.partial/")


def options(argv: list[str]) -> list[str]:
    """The -o options of an ssh command line, in order."""
    return [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]


def test_a_cycle_shares_one_connection_through_its_socket() -> None:
    control = Path("/tmp/stopmo-ssh-x1/master")
    master = master_args(LINK, Delivery(), control)
    assert {"ControlMaster=yes", f"ControlPath={control}", "ControlPersist=60",
            "BatchMode=yes", "StrictHostKeyChecking=yes", "IdentitiesOnly=yes"} <= set(
        options(master))
    assert master[-2:] == ["-N", "stopmo@10.0.0.2"]  # no session of its own
    session = ssh_args(LINK, Delivery(), control=control)
    assert {"ControlMaster=no", f"ControlPath={control}"} <= set(options(session))
    assert not any(o.startswith("ControlPersist") for o in options(session))
    alone = ssh_args(LINK, Delivery())  # outside a cycle: never a user's master either
    assert {"ControlMaster=no", "ControlPath=none"} <= set(options(alone))
    for argv in (master, session, alone):  # ssh keeps the first value it reads: one each
        names = [o.split("=")[0] for o in options(argv)]
        assert len(names) == len(set(names)), names
    assert exit_args(LINK, Delivery(), control)[-3:] == ["-O", "exit", "stopmo@10.0.0.2"]
    package = Path("/var/lib/stopmo/outbox/st-3-20260501t120000z-beef")
    argv = rsync_args(package, LINK, Delivery(), control=control)
    assert shlex.split(argv[argv.index("-e") + 1])[4:] == session


def test_verdicts_and_figures_are_read_from_what_rsync_printed() -> None:
    stderr = ('{"level": "warning"}\nrsync: connection unexpectedly closed\n'
              "stopmo-receive: ok st-1-20260501t100000z-beef sha256=ab received-before\n")
    assert parse_verdict(stderr) == ("ok", "st-1-20260501t100000z-beef sha256=ab "
                                           "received-before")
    assert parse_verdict("stopmo-receive: full: 3 MB free\n") == ("full", "3 MB free")
    assert parse_verdict("rsync error\n") is None
    assert bytes_sent("Number of files: 3\nTotal bytes sent: 1,234,567\n") == 1234567
    assert bytes_sent("") is None


@pytest.mark.parametrize(("stderr", "kind"), [
    ("ssh: connect to host 10.0.0.2 port 22: Connection refused\n", "unreachable"),
    ("ssh: connect to host 10.0.0.2 port 22: Connection timed out\n", "unreachable"),
    ("ssh: Could not resolve hostname proc: Name or service not known\n", "unreachable"),
    ("Host key verification failed.\nrsync: connection unexpectedly closed\n", "host-key"),
    ("stopmo@10.0.0.2: Permission denied (publickey).\n", "auth"),
    ('rsync: [receiver] write failed on "x": No space left on device (28)\n', "full"),
    ("rsync: connection unexpectedly closed (0 bytes received so far) [sender]\n",
     "interrupted"),
    # A stale master's socket: ssh says so and connects alone; the socket's refusal is not
    # the processor's.
    ("Control socket connect(/tmp/stopmo-ssh-x/master): Connection refused\n"
     "rsync: connection unexpectedly closed (0 bytes received so far) [sender]\n",
     "interrupted"),
    ("", "no-answer"),
])
def test_failures_without_a_verdict_are_named(stderr: str, kind: str) -> None:
    assert classify(Completed(255, "", stderr), "delivery").kind == kind


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    low, high = Backoff(2, 30, rng=lambda: 0.0), Backoff(2, 30, rng=lambda: 1.0)
    assert [low.next_delay() for _ in range(6)] == [1, 2, 4, 8, 15, 15]
    assert [high.next_delay() for _ in range(6)] == [2, 4, 8, 16, 30, 30]
    high.reset()
    assert high.next_delay() == 2


def test_the_lock_lets_one_agent_in_and_names_the_holder(tmp_path: Path) -> None:
    busy = pytest.raises(AgentBusy, match=r"another sync agent \(pid \d+\) holds")
    with agent_lock(tmp_path), busy, agent_lock(tmp_path):
        pass
    with agent_lock(tmp_path):  # released
        pass


def test_an_unreachable_processor_costs_nothing_but_time(rig: Rig,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    package = add_package(rig.outbox)
    settings = rig.settings(attempts=3, retry_base_seconds=0.05)
    with closed_port() as port, caplog.at_level(logging.INFO):
        settings = replace(settings, processor=replace(settings.processor, port=port))
        assert Agent(settings).run_once() is False
    read_package(package)
    retries = [r for r in caplog.records if hasattr(r, "retry_in")]
    assert len(retries) == 2 and all("unreachable" in r.getMessage() for r in retries)
    assert "giving up after 3 attempts, 1 packages stay in the outbox" in caplog.text


def test_a_wrong_host_key_is_a_clear_error(rig: Rig, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    package = add_package(rig.outbox)
    impostor = generate_keypair(tmp_path / "impostor")
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{rig.server.port} {impostor}\n")
    settings = rig.settings(attempts=1)
    settings = replace(settings, processor=replace(settings.processor, known_hosts=known))
    assert Agent(settings).run_once() is False
    assert "the processor's host key does not match processor.known_hosts" in caplog.text
    assert visible(rig.inbox) == [] and package.exists()


def test_packages_of_another_station_stay_and_do_not_block_the_rest(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    stranger = add_package(rig.outbox, minutes=0, station="st-2")
    ours = add_package(rig.outbox, minutes=5)
    assert Agent(rig.settings()).run_once() is False  # one stays: exit 1
    assert stranger.exists() and visible(rig.inbox) == [ours.name]
    assert "not a package of station st-1: it stays in the outbox" in caplog.text


def test_a_package_invalid_at_the_station_is_never_sent(rig: Rig,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    broken = add_package(rig.outbox)
    (broken / "0001.jpg").write_bytes(b"\xff\xd8not a frame\xff\xd9")
    assert Agent(rig.settings()).run_once() is False
    assert broken.exists() and visible(rig.inbox) == []
    assert "invalid here (mismatch)" in caplog.text
