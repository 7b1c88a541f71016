"""Talk to the processing unit: rsync over SSH into its staging area, and heartbeats.

Command lines are built by pure functions (`rsync_args` here, `ssh_args` in `ssh.py`) and
run by a `Runner`; the sessions of a cycle share one SSH connection (`Remote.connected`).
The receiver answers every request with one line on stderr, `stopmo-receive: <word> ...`;
that line, not rsync's exit status, decides whether a package was delivered, and an `ok`
must name the sha256 of the very MANIFEST we hold (which lists the sha256 of every frame).
"""

from __future__ import annotations

import contextlib
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from moviepkg.delivery import (
    PARTIAL_DIR,
    PROTOCOL,
    RECEIVED_BEFORE,
    STAGING,
    VERDICT_PREFIX,
    upgrade_hint,
)

from .config import Delivery, Link, StationError
from .ssh import LinkError, Runner, SharedConnection, classify, destination, ssh_args

# When a transfer fails, rsync ends its remote shell with SIGUSR1 at once, which cuts off
# the receiver's verdict (the reason, e.g. a full disk). ssh started through this ignores
# that signal and ends with the receiver; the Runner waits a little for it.
_SSH_OUTLIVES_RSYNC = ["sh", "-c", 'trap "" USR1; exec "$@"', "ssh"]


class PackageRefused(StationError):
    """The processor refused this package (and only it); it stays in the outbox."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """A verified delivery."""

    package_id: str
    sha256: str
    again: bool  # the processor had it already (our earlier answer was lost)
    bytes_sent: int | None
    seconds: float


def rsync_args(package: Path, link: Link, delivery: Delivery, rsync: str = "rsync",
               ssh: str = "ssh", control: Path | None = None) -> list[str]:
    """rsync one package folder into `.partial/<id>/` on the processor, resumably (a
    session on the master at `control`, if given)."""
    argv = [
        rsync, "-rt", "--delete", f"--partial-dir={PARTIAL_DIR}",
        # The receiver reads the protocol version as the first word of the request.
        f"--rsync-path={PROTOCOL} rsync",
        f"--timeout={delivery.timeout_seconds}", "--stats",
    ]  # fmt: skip
    if delivery.bwlimit_kbps:
        argv.append(f"--bwlimit={delivery.bwlimit_kbps}")
    remote_shell = shlex.join([*_SSH_OUTLIVES_RSYNC, *ssh_args(link, delivery, ssh, control)])
    return [*argv, "-e", remote_shell, f"{package}/",
            f"{destination(link)}:{STAGING}/{package.name}/"]


def parse_verdict(stderr: str) -> tuple[str, str] | None:
    """The receiver's last verdict line as (word, rest), or None when it gave none."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(VERDICT_PREFIX):
            word, _, rest = line[len(VERDICT_PREFIX):].strip().partition(" ")
            return word.rstrip(":"), rest
    return None


def bytes_sent(stdout: str) -> int | None:
    """`Total bytes sent` from rsync --stats, whatever the thousands separator."""
    match = re.search(r"^Total bytes sent: ([\d,.]+)", stdout, re.MULTILINE)
    return int(re.sub(r"\D", "", match[1])) if match else None


def verdict_error(word: str, rest: str, what: str) -> LinkError:
    """A verdict other than ok, as the error to back off on."""
    kinds = {"full": "the processor's disk is full", "busy": "the processor is busy with it",
             "refused": "the processor refused the request",
             "error": "the processor could not take it"}
    said = rest.removeprefix(": ") if word in kinds else f"{word} {rest}".strip()
    hint = upgrade_hint(said) if word == "refused" else None
    if hint is not None:
        return LinkError("refused", f"{what}: {hint} ({said})")
    return LinkError(word if word in kinds else "error",
                     f"{what}: {kinds.get(word, 'unexpected answer')} ({said})")


class Remote:
    """The processing unit, as one station's key may use it."""

    def __init__(self, link: Link, delivery: Delivery, run: Runner,
                 rsync: str = "rsync", ssh: str = "ssh") -> None:
        self.link = link
        self.delivery = delivery
        self.run = run
        self.rsync = rsync
        self.ssh = ssh
        self.connection = SharedConnection(link, delivery, run, ssh)

    @contextlib.contextmanager
    def connected(self) -> Iterator[None]:
        """Give the sessions inside one SSH connection (a cycle's), opened in the background
        now and closed at the end; outside, each session connects on its own."""
        if not self.run.stop.is_set():
            self.connection.open()
        try:
            yield
        finally:
            self.connection.close()

    def deliver(self, package: Path, manifest_sha256: str) -> Delivered:
        """Send one package and return the receiver's verified answer, or raise."""
        started = time.monotonic()
        control = self.connection.control("delivery")
        result = self.run(rsync_args(package, self.link, self.delivery, self.rsync, self.ssh,
                                     control))
        verdict = parse_verdict(result.stderr)
        if verdict is None:  # the link failed, not the receiver: a fresh connection next
            self.connection.drop()
            raise classify(result, "delivery")
        word, rest = verdict
        if word in ("invalid", "incomplete"):
            raise PackageRefused(f"the processor refused it: {word} {rest}")
        if word != "ok":
            raise verdict_error(word, rest, "delivery")
        fields = rest.split()
        if fields[:2] != [package.name, f"sha256={manifest_sha256}"]:
            raise PackageRefused(f"the processor's copy differs from ours: ok {rest}")
        return Delivered(package.name, manifest_sha256, RECEIVED_BEFORE in fields[2:],
                         bytes_sent(result.stdout), time.monotonic() - started)

    def send_status(self, document: bytes) -> None:
        """Deliver the heartbeat; raise LinkError if it did not arrive."""
        control = self.connection.control("heartbeat")
        argv = [*ssh_args(self.link, self.delivery, self.ssh, control), destination(self.link),
                f"{PROTOCOL} status"]
        result = self.run(argv, input=document,
                          timeout=self.delivery.connect_timeout_seconds
                          + self.delivery.timeout_seconds)
        verdict = parse_verdict(result.stderr)
        if verdict is None:
            self.connection.drop()
            raise classify(result, "heartbeat")
        if verdict[0] != "ok":
            raise verdict_error(*verdict, "heartbeat")
