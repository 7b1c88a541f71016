"""Talk to the processing unit: rsync over SSH into its staging area, and heartbeats.

Command lines are built by pure functions (`ssh_args`, `rsync_args`) and run by a
`Runner` that can be stopped and keeps systemd's watchdog fed. The receiver answers
every request with one line on stderr, `stopmo-receive: <word> ...`; that line, not
rsync's exit status, decides whether a package was delivered, and an `ok` must name
the sha256 of the very MANIFEST we hold (which lists the sha256 of every frame).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from moviepkg.delivery import (
    PARTIAL_DIR,
    PROTOCOL,
    RECEIVED_BEFORE,
    STAGING,
    VERDICT_PREFIX,
    upgrade_hint,
)

from .config import Delivery, Link, StationError

_C_LOCALE = {"LC_ALL": "C", "LANG": "C"}
# When a transfer fails, rsync ends its remote shell with SIGUSR1 at once, which cuts off
# the receiver's verdict (the reason, e.g. a full disk). ssh started through this ignores
# that signal and ends with the receiver; the Runner waits a little for it.
_SSH_OUTLIVES_RSYNC = ["sh", "-c", 'trap "" USR1; exec "$@"', "ssh"]
VERDICT_GRACE_SECONDS = 5.0


class LinkError(StationError):
    """The processor could not take a delivery now; retry later (kind says why)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind  # unreachable, host-key, auth, full, busy, refused, interrupted, ...
        super().__init__(message)


class PackageRefused(StationError):
    """The processor refused this package (and only it); it stays in the outbox."""


class Stopped(StationError):
    """The agent was asked to stop while a transfer ran; the transfer resumes next time."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """A verified delivery."""

    package_id: str
    sha256: str
    again: bool  # the processor had it already (our earlier answer was lost)
    bytes_sent: int | None
    seconds: float


@dataclass(frozen=True, slots=True)
class Completed:
    """What a finished command said."""

    returncode: int
    stdout: str
    stderr: str


def ssh_args(link: Link, delivery: Delivery, ssh: str = "ssh") -> list[str]:
    """The ssh command without destination: key only, no prompts, the host key pinned."""
    alive = max(1, delivery.timeout_seconds // 3)
    return [
        ssh, "-F", "/dev/null", "-T", "-p", str(link.port), "-i", str(link.key),
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={link.known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no",
        "-o", f"ConnectTimeout={delivery.connect_timeout_seconds}",
        "-o", f"ServerAliveInterval={alive}", "-o", "ServerAliveCountMax=3",
        "-o", "ControlMaster=no", "-o", "LogLevel=ERROR",
    ]  # fmt: skip


def destination(link: Link) -> str:
    """`user@host`, with an IPv6 address in brackets as rsync wants it."""
    host = f"[{link.host}]" if ":" in link.host else link.host
    return f"{link.user}@{host}"


def rsync_args(package: Path, link: Link, delivery: Delivery, rsync: str = "rsync",
               ssh: str = "ssh") -> list[str]:
    """rsync one package folder into `.partial/<id>/` on the processor, resumably."""
    argv = [
        rsync, "-rt", "--delete", f"--partial-dir={PARTIAL_DIR}",
        # The receiver reads the protocol version as the first word of the request.
        f"--rsync-path={PROTOCOL} rsync",
        f"--timeout={delivery.timeout_seconds}", "--stats",
    ]  # fmt: skip
    if delivery.bwlimit_kbps:
        argv.append(f"--bwlimit={delivery.bwlimit_kbps}")
    remote_shell = shlex.join([*_SSH_OUTLIVES_RSYNC, *ssh_args(link, delivery, ssh)])
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


_LINK_SIGNS = (
    ("host-key", ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")),
    ("auth", ("Permission denied",)),
    ("full", ("No space left on device", "Disk quota exceeded")),
    ("unreachable", ("Connection refused", "Could not resolve", "No route to host",
                     "Network is unreachable", "Connection timed out", "Name or service")),
    ("interrupted", ("Connection closed", "Connection reset", "Broken pipe",
                     "connection unexpectedly closed", "timeout", "Killed by signal")),
)


def classify(result: Completed, what: str) -> LinkError:
    """Name a failure that came without a verdict (ssh or rsync never reached the receiver)."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    detail = lines[-1] if lines else f"exit status {result.returncode}"
    for kind, signs in _LINK_SIGNS:
        sign = next((line for line in lines for s in signs if s in line), None)
        if sign is not None:
            return LinkError(kind, f"{what}: {_explain(kind)} ({sign})")
    return LinkError("no-answer", f"{what}: no answer from the receiver ({detail}); "
                     "is the key's forced command set on the processor?")


def _explain(kind: str) -> str:
    return {
        "host-key": "the processor's host key does not match processor.known_hosts",
        "auth": "the processor refused our key",
        "full": "the processor's disk is full",
        "unreachable": "the processor is unreachable",
        "interrupted": "the connection broke off",
    }[kind]


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


class Runner:
    """Run a command to its end, feeding `tick` meanwhile; stop it when `stop` is set."""

    def __init__(self, stop: threading.Event | None = None,
                 tick: Callable[[], object] = lambda: None, slice_seconds: float = 1.0) -> None:
        self.stop = stop or threading.Event()
        self.tick = tick
        self.slice = slice_seconds

    def __call__(self, argv: list[str], input: bytes | None = None,
                 timeout: float | None = None) -> Completed:
        """Run argv; raise Stopped if asked to stop, LinkError on timeout."""
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None
                                else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, **_C_LOCALE},
                                start_new_session=True)  # one group: rsync and its ssh
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Drain(proc.stdout), _Drain(proc.stderr)
        if proc.stdin is not None:
            threading.Thread(target=_feed, args=(proc.stdin, input or b""), daemon=True).start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    proc.wait(self.slice)
                    break
                except subprocess.TimeoutExpired:
                    self.tick()
                if self.stop.is_set():
                    raise Stopped(f"{Path(argv[0]).name} stopped")
                if deadline is not None and time.monotonic() > deadline:
                    raise LinkError("interrupted", f"{Path(argv[0]).name}: no end after "
                                    f"{timeout:g} s")
            # The pipes close when ssh ends too, after the receiver's last words.
            out.join(VERDICT_GRACE_SECONDS)
            err.join(VERDICT_GRACE_SECONDS)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        out.join(1.0)
        err.join(1.0)
        return Completed(proc.returncode, out.text(), err.text())


class _Drain(threading.Thread):
    """Read a pipe to its end in the background."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.chunks: list[bytes] = []
        self.start()

    def run(self) -> None:
        with self.pipe:
            while chunk := os.read(self.pipe.fileno(), 65536):
                self.chunks.append(chunk)

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError), pipe:
        pipe.write(data)


class Remote:
    """The processing unit, as one station's key may use it."""

    def __init__(self, link: Link, delivery: Delivery, run: Runner,
                 rsync: str = "rsync", ssh: str = "ssh") -> None:
        self.link = link
        self.delivery = delivery
        self.run = run
        self.rsync = rsync
        self.ssh = ssh

    def deliver(self, package: Path, manifest_sha256: str) -> Delivered:
        """Send one package and return the receiver's verified answer, or raise."""
        started = time.monotonic()
        result = self.run(rsync_args(package, self.link, self.delivery, self.rsync, self.ssh))
        verdict = parse_verdict(result.stderr)
        if verdict is None:
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
        argv = [*ssh_args(self.link, self.delivery, self.ssh), destination(self.link),
                f"{PROTOCOL} status"]
        result = self.run(argv, input=document,
                          timeout=self.delivery.connect_timeout_seconds
                          + self.delivery.timeout_seconds)
        verdict = parse_verdict(result.stderr)
        if verdict is None:
            raise classify(result, "heartbeat")
        if verdict[0] != "ok":
            raise verdict_error(*verdict, "heartbeat")
