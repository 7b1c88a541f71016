"""The sync agent against a bare `rsync -a` over the same loopback SSH, and a resume.

A 300-frame package of camera-like JPEGs, several runs; each run times the real agent
(`python -m stations sync --once`: start-up, validation, rsync into staging through the
restricted key, the receiver's validation and rename, the archive move, the heartbeat;
all of the cycle's sessions on one shared SSH connection) and, in-process, one
`Agent.deliver` inside a cycle's connection (no start-up, no heartbeat), against a bare
`rsync -a` of the same folder through the same sshd; and, in the same runs, what one SSH
connection and the agent's Python start-up cost alone. sshd's log counts the connections
of each agent run. Then one delivery is cut off at about half-way (its SSH connection
killed) and resumed: how many bytes go over the wire again. Also: where the agent's
time beyond bare rsync goes (each part timed on its own), and one more pair of runs at
a 100 Mbit/s LAN's speed, the stations' real link, where the fixed part weighs less.
Usage: python bench/delivery.py [--runs 5] [--frames 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))  # tests.services: the throwaway sshd

from bench import frames  # noqa: E402
from bench.frames import write_package  # noqa: E402
from moviepkg.delivery import STAGING  # noqa: E402
from moviepkg.reader import read_package  # noqa: E402
from processor.receiver import Receiver  # noqa: E402
from stations.config import Delivery, Link, Paths, Retention, StationSettings  # noqa: E402
from stations.sync import Agent  # noqa: E402
from tests.services import (  # noqa: E402
    SshServer,
    descendant,
    generate_keypair,
    ssh_masters,
    wait_until,
)

STATION = "st-1"
FRAME = re.compile(r"\d{4}\.jpg")


def camera_frames(count: int, size: tuple[int, int] = (1920, 1080)) -> list[bytes]:
    """Camera-like JPEGs of about 250 KB."""
    return frames.camera_frames(count, size, seed=7, shapes=30, radius=(40, 260), step=4,
                                noise=30, blend=0.12, blur=0.6, noises=4, quality=88)


def config_text(settings: StationSettings) -> str:
    link, delivery = settings.processor, settings.delivery
    return "\n".join([
        "[station]", f'id = "{settings.station_id}"',
        "[paths]", f'outbox = "{settings.paths.outbox}"', f'sent = "{settings.paths.sent}"',
        "[processor]", f'host = "{link.host}"', f"port = {link.port}", f'user = "{link.user}"',
        f'key = "{link.key}"', f'known_hosts = "{link.known_hosts}"',
        "[delivery]", f"retry_base_seconds = {delivery.retry_base_seconds}",
        f"bwlimit_kbps = {delivery.bwlimit_kbps}", f"attempts = {delivery.attempts}",
        "[sent]", "min_free_mb = 0", ""])


class Bench:
    """A processor inbox behind a throwaway sshd, and a station's folders."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.inbox.mkdir()
        self.server = SshServer(root / "sshd")
        self.key = root / "station_key"
        public = generate_keypair(self.key, STATION)
        command = (f"{sys.executable} -m processor receive --station {STATION} "
                   f"--inbox {self.inbox} --min-free-mb 0")
        self.server.authorize(f'command="{command}",restrict {public}')

    def settings(self, outbox: Path, **delivery: object) -> StationSettings:
        return StationSettings(
            station_id=STATION, paths=Paths(outbox, self.root / "sent"),
            processor=Link("127.0.0.1", self.server.port, self.server.user, self.key,
                           self.server.known_hosts),
            delivery=Delivery(retry_base_seconds=0.2, **delivery),  # type: ignore[arg-type]
            sent=Retention(min_free_mb=0))

    def fresh_copy(self, package: Path, name: str) -> Path:
        """The package in a new outbox; the processor's side forgets it (inbox, receipt)."""
        shutil.rmtree(self.inbox / package.name, ignore_errors=True)
        (self.inbox / ".received" / package.name).unlink(missing_ok=True)
        shutil.rmtree(self.root / "sent", ignore_errors=True)
        outbox = self.root / name
        shutil.rmtree(outbox, ignore_errors=True)
        shutil.copytree(package.parent, outbox)
        return outbox / package.name

    def bare_rsync(self, package: Path, run: int, bwlimit_kbps: int = 0) -> float:
        target = self.root / f"bare-{run}"
        limit = [f"--bwlimit={bwlimit_kbps}"] if bwlimit_kbps else []
        started = time.perf_counter()
        subprocess.run(["rsync", "-a", *limit, "-e", self.server.rsync_rsh(), f"{package}/",
                        f"{self.server.destination}:{target}/"], check=True)
        took = time.perf_counter() - started
        shutil.rmtree(target)
        return took

    def handshake(self) -> float:
        """One SSH connection and an empty session (`ssh ... true`), nothing else."""
        started = time.perf_counter()
        subprocess.run([*self.server.ssh_command(), "true"], check=True)
        return time.perf_counter() - started

    def python_start(self) -> float:
        """The agent's interpreter start and imports, nothing else."""
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import stations.cli"], check=True)
        return time.perf_counter() - started

    def receiver_start(self) -> float:
        """One `processor receive` process answering a request (a refused one) on its own:
        the interpreter, its imports, the verdict; sshd starts one per session."""
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "processor", "receive", "--station", STATION,
                        "--inbox", str(self.inbox), "--min-free-mb", "0"], capture_output=True,
                       env={**os.environ, "SSH_ORIGINAL_COMMAND": "refused"}, check=False)
        return time.perf_counter() - started

    def commit(self, package: Path) -> float:
        """The receiver's work once rsync has ended: validate the staged copy (every
        frame's hash), flush it to disk, rename it into the inbox, keep a receipt."""
        receiver = Receiver(STATION, self.inbox)
        staged = self.inbox / STAGING / package.name
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(package, staged)
        started = time.perf_counter()
        _, verdict = receiver.commit(package.name)
        took = time.perf_counter() - started
        if not verdict.startswith("ok "):
            raise SystemExit(f"the receiver refused the benchmark's package: {verdict}")
        self.fresh_copy(package, "outbox")  # the inbox forgets it again
        return took

    def agent_cli(self, package: Path, **delivery: object) -> tuple[float, str, int, int]:
        config = self.root / "station.toml"
        config.write_text(config_text(self.settings(package.parent, **delivery)))
        before = self.server.accepted()
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "stations", "sync", "--once", "--config",
                               str(config)], capture_output=True, text=True)
        took = time.perf_counter() - started
        return took, done.stderr, done.returncode, self.server.accepted() - before

    def agent_in_process(self, package: Path) -> float:
        agent = Agent(self.settings(package.parent))
        started = time.perf_counter()
        with agent.remote.connected():  # as in a cycle: it connects while validating
            if not agent.deliver(package):
                raise SystemExit("the in-process delivery did not happen")
        return time.perf_counter() - started

    def interrupted(self, package: Path, bwlimit_kbps: int) -> dict[str, float]:
        """Deliver at bwlimit, kill ssh at about half-way, let the agent resume."""
        config = self.root / "station.toml"
        config.write_text(config_text(self.settings(package.parent, bwlimit_kbps=bwlimit_kbps,
                                                    attempts=5)))
        staged = self.inbox / ".partial" / package.name
        frames = sum(1 for p in package.iterdir() if FRAME.fullmatch(p.name))
        size = sum(p.stat().st_size for p in package.iterdir())
        agent = subprocess.Popen([sys.executable, "-m", "stations", "sync", "--once",
                                  "--config", str(config)], stderr=subprocess.PIPE, text=True)
        wait_until(lambda: staged.is_dir() and sum(
            1 for p in staged.iterdir() if FRAME.fullmatch(p.name)) >= frames // 2,
            timeout=120, interval=0.01, message="half the frames staged")
        # The connection itself: the cycle's master (or, without one, rsync's own ssh).
        ssh = next(iter(ssh_masters(str(self.key))), None) or descendant(agent.pid, "ssh")
        if ssh is None:
            raise SystemExit("no ssh process to cut off")
        os.kill(ssh, signal.SIGKILL)
        kept = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
        _, stderr = agent.communicate(timeout=300)
        if agent.returncode != 0:
            raise SystemExit(f"the resumed delivery failed:\n{stderr}")
        records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        resumed = next(r["bytes_sent"] for r in records if r.get("bytes_sent"))
        return {"size": size, "kept": kept, "resumed": resumed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--bwlimit", type=int, default=20000,
                        help="KiB/s for the interrupted delivery, to cut it at half-way")
    parser.add_argument("--lan", type=int, default=12000,
                        help="KiB/s of the station's network, for one more pair of runs "
                        "(default 12000: a 100 Mbit/s Ethernet)")
    args = parser.parse_args()
    frames = camera_frames(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        original = write_package(Path(tmp) / "original", frames, STATION)
        size = sum(p.stat().st_size for p in original.iterdir())
        with bench.server:
            bare, cli, inproc, shake, start, links = [], [], [], [], [], []
            for run in range(args.runs):
                bare.append(bench.bare_rsync(original, run))
                took, stderr, code, made = bench.agent_cli(bench.fresh_copy(original, "outbox"))
                if code != 0:
                    raise SystemExit(f"the agent failed:\n{stderr}")
                cli.append(took)
                links.append(made)
                inproc.append(bench.agent_in_process(bench.fresh_copy(original, "outbox")))
                shake.append(bench.handshake())
                start.append(bench.python_start())
                print(f"run {run + 1}: bare rsync -a {bare[-1]:.2f} s, agent (CLI, end to end) "
                      f"{cli[-1]:.2f} s over {made} SSH connection{'s' * (made != 1)}, agent "
                      f"deliver (in-process) {inproc[-1]:.2f} s; one SSH connection alone "
                      f"{shake[-1]:.2f} s, the agent's Python start {start[-1]:.2f} s",
                      flush=True)
            validate = statistics.median(_timed(read_package, original) for _ in range(3))
            receiver = statistics.median(bench.receiver_start() for _ in range(3))
            commit = statistics.median(bench.commit(original) for _ in range(3))
            lan_bare = bench.bare_rsync(original, 0, args.lan)
            lan_cli, stderr, code, _ = bench.agent_cli(bench.fresh_copy(original, "outbox"),
                                                       bwlimit_kbps=args.lan)
            if code != 0:
                raise SystemExit(f"the agent failed at the LAN's speed:\n{stderr}")
            cut = bench.interrupted(bench.fresh_copy(original, "outbox"), args.bwlimit)
    sizes = [len(frame) for frame in frames]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {_rsync_version()}, loopback SSH")
    print(f"package: {args.frames} frames 1920x1080, {size / 1e6:.1f} MB "
          f"({min(sizes) // 1000}-{max(sizes) // 1000} KB per frame)")
    median_bare, median_cli, median_in = map(statistics.median, (bare, cli, inproc))
    ratios = [c / b for c, b in zip(cli, bare, strict=True)]
    print(f"median bare rsync -a: {median_bare:.2f} s ({size / median_bare / 1e6:.0f} MB/s)")
    print(f"median agent, CLI end to end: {median_cli:.2f} s, ratio "
          f"{median_cli / median_bare:.2f} (per run: median {statistics.median(ratios):.2f}, "
          f"{min(ratios):.2f}-{max(ratios):.2f})")
    print(f"median agent deliver, in-process: {median_in:.2f} s, ratio "
          f"{median_in / median_bare:.2f}")
    print(f"SSH connections per agent run (sshd's log): {', '.join(map(str, links))}")
    print(f"median one SSH connection alone (ssh true): {statistics.median(shake):.2f} s; "
          f"the agent's Python start (import stations.cli): {statistics.median(start):.2f} s")
    extra = median_cli - median_bare
    known = statistics.median(start) + 2 * receiver + commit
    print(f"where the agent's {extra:.2f} s beyond bare rsync go (medians): its Python start "
          f"{statistics.median(start):.2f} s; two `processor receive` starts (the delivery's "
          f"session, the heartbeat's) {receiver:.2f} s each; the receiver's commit (every "
          f"frame hashed again, flushed to disk, renamed, a receipt) {commit:.2f} s; together "
          f"{known:.2f} s. The station's own check of the package ({validate:.2f} s) runs while "
          f"the SSH connection opens.")
    print(f"at a 100 Mbit/s LAN's speed (--bwlimit {args.lan} KiB/s on both): bare rsync -a "
          f"{lan_bare:.2f} s, agent (CLI, end to end) {lan_cli:.2f} s, ratio "
          f"{lan_cli / lan_bare:.2f}")
    missing = cut["size"] - cut["kept"]
    print(f"cut off at {cut['kept'] / cut['size']:.0%} ({cut['kept'] / 1e6:.1f} MB staged, "
          f"{missing / 1e6:.1f} MB missing): the resumed transfer sent "
          f"{cut['resumed'] / 1e6:.1f} MB (a full one: {size / 1e6:.1f} MB); sent again: "
          f"{(cut['resumed'] - missing) / 1e6:+.2f} MB beyond what was missing")


def _timed(call: Callable[[Path], object], argument: Path) -> float:
    started = time.perf_counter()
    call(argument)
    return time.perf_counter() - started


def _rsync_version() -> str:
    done = subprocess.run(["rsync", "--version"], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()[0].split("  protocol")[0]


if __name__ == "__main__":
    main()
