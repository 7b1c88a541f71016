"""`stations sync` against a real sshd and rsync on loopback, through the restricted key."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from moviepkg.errors import PackageError
from moviepkg.reader import read_package
from moviepkg.writer import PackageWriter
from tests.services import descendant, skip_or_fail, wait_until
from tests.stations.conftest import (
    T0,
    LineReader,
    Rig,
    add_big_package,
    add_package,
    authorize_station,
    log_lines,
    visible,
)

pytestmark = pytest.mark.slow  # deliveries over real sshd, tmpfs mounts

FRAME = re.compile(r"\d{4}\.jpg")


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def staged_packages(rig: Rig) -> list[str]:
    staging = rig.inbox / ".partial"
    return sorted(p.name for p in staging.iterdir() if p.is_dir()) if staging.exists() else []


def test_finished_packages_go_oldest_first_verified_then_to_sent(rig: Rig) -> None:
    newer = add_package(rig.outbox, frames=3, minutes=5)
    older = add_package(rig.outbox, frames=4, minutes=0)
    expected = {older.name: tree(older), newer.name: tree(newer)}
    shooting = PackageWriter.start(rig.outbox, "st-1", now=T0)  # still being shot
    shooting.add_frame((older / "0000.jpg").read_bytes())
    before = tree(shooting.path)
    done = rig.sync("--once")
    assert done.returncode == 0, done.stderr
    records = log_lines(done.stderr)
    order = [r["package_id"] for r in records if r["msg"].startswith("delivering")]
    assert order == [older.name, newer.name]
    assert visible(rig.inbox) == sorted(expected)
    for name, files in expected.items():
        assert tree(rig.inbox / name) == files  # byte for byte
        read_package(rig.inbox / name)
        assert tree(rig.sent / name) == files
        assert (rig.inbox / ".received" / name).read_text().strip() == \
            f"{_manifest_sha(files)}"
    assert visible(rig.outbox) == [shooting.path.name]  # the unfinished one, untouched
    assert tree(shooting.path) == before
    assert staged_packages(rig) == []
    status = json.loads((rig.inbox / ".status" / "st-1.json").read_text())
    assert status["station_id"] == "st-1" and status["queued_packages"] == 0
    assert status["unfinished_packages"] == 1 and status["last_capture_at"]
    assert status["free_disk_bytes"] > 0 and status["software_version"]
    assert {"uptime_seconds", "received_at", "last_delivery_at"} <= set(status)


def _manifest_sha(files: dict[str, bytes]) -> str:
    import hashlib

    return hashlib.sha256(files["MANIFEST"]).hexdigest()


def test_sshd_down_then_up_retries_with_growing_backoff(rig: Rig) -> None:
    package = add_package(rig.outbox)
    rig.server.stop()
    agent = rig.spawn("--once", attempts=10, retry_base_seconds=0.3, retry_max_seconds=5)
    reader = LineReader(agent)
    try:
        wait_until(lambda: len([r for r in reader.records() if "retry_in" in r]) >= 2,
                   timeout=20, message="two retries")
        rig.server.start()
        assert agent.wait(timeout=30) == 0, reader.text()
    finally:
        if agent.poll() is None:
            agent.kill()
    records = log_lines(reader.text())
    retries = [r for r in records if "retry_in" in r]
    assert all(r["kind"] == "unreachable" and "unreachable" in r["msg"] for r in retries)
    delays = [r["retry_in"] for r in retries]
    assert delays == sorted(delays) and 0.15 <= delays[0] <= 0.3, delays
    assert visible(rig.inbox) == [package.name] and visible(rig.sent) == [package.name]


class InboxWatcher(threading.Thread):
    """Look at the inbox every few ms and validate whatever appears there at once."""

    def __init__(self, inbox: Path) -> None:
        super().__init__(daemon=True)
        self.inbox = inbox
        self.seen: dict[str, str] = {}
        self.polls = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name in visible(self.inbox):
                if name not in self.seen:
                    try:
                        read_package(self.inbox / name)
                        self.seen[name] = "complete"
                    except PackageError as exc:
                        self.seen[name] = str(exc)
            self.polls += 1
            time.sleep(0.002)


def test_connection_killed_mid_transfer_resumes_without_partial_or_duplicate(
        rig: Rig, noise_frames: list[bytes]) -> None:
    package = add_big_package(rig.outbox, noise_frames[:12])
    size = sum(p.stat().st_size for p in package.iterdir())
    staged = rig.inbox / ".partial" / package.name
    watcher = InboxWatcher(rig.inbox)
    watcher.start()
    agent = rig.spawn("--once", attempts=6, bwlimit_kbps=1500)
    reader = LineReader(agent)
    try:
        wait_until(lambda: staged.is_dir() and
                   sum(1 for p in staged.iterdir() if FRAME.fullmatch(p.name)) >= 6,
                   timeout=30, interval=0.005, message="half the frames staged")
        ssh = descendant(agent.pid, "ssh")
        assert ssh is not None
        os.kill(ssh, signal.SIGKILL)  # the connection dies mid-transfer
        at_kill = sum(1 for p in staged.iterdir() if FRAME.fullmatch(p.name))
        assert visible(rig.inbox) == []
        assert agent.wait(timeout=60) == 0, reader.text()
    finally:
        watcher.done.set()
        watcher.join()
        if agent.poll() is None:
            agent.kill()
    records = log_lines(reader.text())
    assert [r["kind"] for r in records if "retry_in" in r][:1] == ["interrupted"]
    resumed = [r["bytes_sent"] for r in records if r.get("bytes_sent")]
    assert len(resumed) == 1
    assert resumed[0] < size * (12 - at_kill + 1) / 12, (resumed, size, at_kill)
    assert watcher.seen == {package.name: "complete"}  # never anything partial
    assert watcher.polls > 100
    assert visible(rig.inbox) == [package.name] and staged_packages(rig) == []
    assert tree(rig.sent / package.name) == tree(rig.inbox / package.name)


def test_lost_answer_redelivery_counts_as_delivered_without_a_duplicate(rig: Rig) -> None:
    package = add_package(rig.outbox)
    assert rig.sync("--once").returncode == 0
    # The processor took it; the station never heard "ok" and still has it in its outbox.
    shutil.move(rig.inbox / package.name, rig.root / "taken")
    shutil.move(rig.sent / package.name, rig.outbox / package.name)
    again = rig.sync("--once")
    assert again.returncode == 0, again.stderr
    assert "the processor had it already" in again.stderr
    assert visible(rig.inbox) == [] and staged_packages(rig) == []  # nothing handed over twice
    assert visible(rig.sent) == [package.name] and visible(rig.outbox) == []


def test_receiver_keeps_free_space_and_the_package_stays(rig: Rig, tmp_path: Path) -> None:
    key = tmp_path / "thrifty_key"
    authorize_station(rig.server, key, rig.inbox, extra="--min-free-mb 100000000")
    rig.key = key
    package = add_package(rig.outbox)
    done = rig.sync("--once", attempts=2)
    assert done.returncode == 1
    assert "the processor's disk is full" in done.stderr
    assert "MB free in the inbox" in done.stderr
    read_package(package)
    assert visible(rig.inbox) == [] and not (rig.sent.exists() and visible(rig.sent))


def _mount_tmpfs(folder: Path, size: str) -> None:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'not root'}); "
                    "test_receiver_keeps_free_space_and_the_package_stays covers the refusal")


def test_receiving_disk_really_full_then_freed(rig: Rig, noise_frames: list[bytes]) -> None:
    if shutil.which("mount") is None or os.geteuid() != 0:
        skip_or_fail("mounting a small tmpfs as the inbox needs root and mount(8)")
    _mount_tmpfs(rig.inbox, "1m")
    try:
        package = add_big_package(rig.outbox, noise_frames[:8])  # about 1.8 MB
        size = sum(p.stat().st_size for p in package.iterdir())
        full = rig.sync("--once", attempts=1)
        assert full.returncode == 1
        assert "the processor's disk is full" in full.stderr, full.stderr
        read_package(package)  # still whole in the outbox
        assert visible(rig.inbox) == [] and not (rig.sent.exists() and visible(rig.sent))
        subprocess.run(["mount", "-o", "remount,size=16m", str(rig.inbox)], check=True)
        freed = rig.sync("--once")
        assert freed.returncode == 0, freed.stderr
        sent = [r["bytes_sent"] for r in log_lines(freed.stderr) if r.get("bytes_sent")]
        assert sent and sent[0] < size  # what fit before was kept
        assert visible(rig.inbox) == [package.name]
        read_package(rig.inbox / package.name)
    finally:
        subprocess.run(["umount", "-l", str(rig.inbox)], check=False)


def test_free_space_floor_stops_a_running_transfer_and_it_resumes(
        rig: Rig, tmp_path: Path, noise_frames: list[bytes]) -> None:
    if shutil.which("mount") is None or os.geteuid() != 0:
        skip_or_fail("mounting a small tmpfs as the inbox needs root and mount(8)")
    _mount_tmpfs(rig.inbox, "48m")
    try:
        key = tmp_path / "floor_key"
        authorize_station(rig.server, key, rig.inbox, extra="--min-free-mb 24")
        rig.key = key
        package = add_big_package(rig.outbox, [noise_frames[n % 16] for n in range(160)])
        size = sum(p.stat().st_size for p in package.iterdir())
        assert size > 30e6  # more than fits above the floor: free space is crossed mid-way
        full = rig.sync("--once", attempts=1, bwlimit_kbps=8000)
        assert full.returncode == 1, full.stderr
        assert "the processor's disk is full" in full.stderr and "kept free" in full.stderr
        assert shutil.disk_usage(rig.inbox).free > 16 * 2**20  # stopped near the floor
        staged = rig.inbox / ".partial" / package.name
        assert 0 < sum(p.stat().st_size for p in staged.rglob("*") if p.is_file()) < size
        assert visible(rig.inbox) == [] and not (rig.sent.exists() and visible(rig.sent))
        subprocess.run(["mount", "-o", "remount,size=96m", str(rig.inbox)], check=True)
        freed = rig.sync("--once")
        assert freed.returncode == 0, freed.stderr
        sent = [r["bytes_sent"] for r in log_lines(freed.stderr) if r.get("bytes_sent")]
        assert sent and sent[0] < size * 0.8  # what landed before the floor was kept
        assert visible(rig.inbox) == [package.name]
        read_package(rig.inbox / package.name)
    finally:
        subprocess.run(["umount", "-l", str(rig.inbox)], check=False)


def test_a_package_refused_for_its_content_waits_and_the_others_go(rig: Rig) -> None:
    forged = add_package(rig.outbox, minutes=0)
    manifest = json.loads((forged / "MANIFEST").read_text())
    manifest["station_id"] = "st-2"  # our key cannot deliver another station's movie
    (forged / "MANIFEST").write_text(json.dumps(manifest))
    good = add_package(rig.outbox, minutes=5)
    # Held for longer than a loaded machine may take for a cycle or two.
    done = rig.sync("--once", retry_max_seconds=30)
    assert done.returncode == 1
    records = log_lines(done.stderr)
    tries = [r for r in records if r["msg"].startswith("delivering")
             and r["package_id"] == forged.name]
    assert len(tries) == 1  # held for retry_max_seconds, not retried in a loop
    refused = [r["msg"] for r in records if r.get("package_id") == forged.name
               and r["level"] == "error"]
    assert any(f"the processor refused it: invalid {forged.name} station: its MANIFEST says "
               "station_id 'st-2', but the key is st-1's" in msg for msg in refused), refused
    assert visible(rig.inbox) == [good.name] and visible(rig.sent) == [good.name]
    assert forged.is_dir() and staged_packages(rig) == []


class Notifications(threading.Thread):
    """What a program tells $NOTIFY_SOCKET, read as systemd would."""

    def __init__(self, address: Path) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(address))
        self.sock.settimeout(0.1)
        self.messages: list[bytes] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.messages.append(self.sock.recv(200))
            except TimeoutError:
                continue
        self.sock.close()


def test_second_agent_is_refused_while_the_first_runs_continuously(rig: Rig,
                                                                  tmp_path: Path) -> None:
    address = tmp_path / "notify"
    notes = Notifications(address)
    notes.start()
    first = rig.spawn(env=rig.env(NOTIFY_SOCKET=str(address), WATCHDOG_USEC="400000"))
    reader = LineReader(first)
    try:
        wait_until(lambda: b"READY=1" in notes.messages, timeout=20, message="READY=1")
        second = rig.sync("--once")
        assert second.returncode == 4
        assert f"another sync agent (pid {first.pid})" in second.stderr
        package = add_package(rig.outbox)  # finished while the agent waits
        wait_until(lambda: (rig.sent / package.name).is_dir(), timeout=20,
                   message="the running agent to deliver")
        assert visible(rig.inbox) == [package.name]
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0, reader.text()
        wait_until(lambda: b"STOPPING=1" in notes.messages, timeout=5, message="STOPPING=1")
    finally:
        notes.done.set()
        if first.poll() is None:
            first.kill()
    assert notes.messages.count(b"WATCHDOG=1") >= 2
    assert "sync agent stopped" in reader.text()
