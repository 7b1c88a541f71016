"""How a station reaches the processing unit: ssh's command line, and one connection a cycle.

Every ssh of a cycle (each package's rsync, the heartbeat) is a session on one SSH
connection: `SharedConnection` opens an OpenSSH master (`ControlMaster`, its socket in a
private 0700 folder) while the agent validates its packages, and the sessions are
multiplexed on it, so only the first pays the key exchange and authentication. The
processor's sshd runs the key's forced command for every session, whichever client opened
it, so on a shared connection the key can do exactly what it can alone (tests prove it
against a real sshd). A master that is gone (killed, its link cut) is noticed before the
next session, which gets a fresh connection; one that cannot connect says why once
(unreachable, host key, auth). Commands run under a `Runner`, which can be stopped and
keeps systemd's watchdog fed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .config import Delivery, Link, StationError

log = logging.getLogger("stopmo.station")
C_LOCALE = {"LC_ALL": "C", "LANG": "C"}
VERDICT_GRACE_SECONDS = 5.0
# ControlPersist: a master left behind (the agent killed with -9) ends after this long
# without a session; the agent itself closes it at the end of every cycle.
MASTER_IDLE_SECONDS = 60
CLOSE_SECONDS = 5.0  # `ssh -O exit` answers from the local socket at once
MAX_SOCKET_PATH = 80  # sun_path holds 108 bytes; ssh adds 17 for its temporary name
# Which failures of the master mean that a second try in the same cycle would fail alike.
FINAL_KINDS = ("unreachable", "host-key", "auth")


class LinkError(StationError):
    """The processor could not take a delivery now; retry later (kind says why)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind  # unreachable, host-key, auth, full, busy, refused, interrupted, ...
        super().__init__(message)


class Stopped(StationError):
    """The agent was asked to stop while a transfer ran; the transfer resumes next time."""


@dataclass(frozen=True, slots=True)
class Completed:
    """What a finished command said."""

    returncode: int
    stdout: str
    stderr: str


# --- command lines ------------------------------------------------------------------------


def ssh_args(link: Link, delivery: Delivery, ssh: str = "ssh", control: Path | None = None,
             master: bool = False) -> list[str]:
    """The ssh command without destination: key only, no prompts, the host key pinned.

    With `control`, a session on the master listening there (or, with `master`, that
    master itself); without it, a connection of its own.
    """
    alive = max(1, delivery.timeout_seconds // 3)
    sharing = ["-o", f"ControlMaster={'yes' if master else 'no'}",
               "-o", f"ControlPath={control if control is not None else 'none'}"]
    if master:
        sharing += ["-o", f"ControlPersist={MASTER_IDLE_SECONDS}"]
    return [
        ssh, "-F", "/dev/null", "-T", "-p", str(link.port), "-i", str(link.key),
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={link.known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no",
        "-o", f"ConnectTimeout={delivery.connect_timeout_seconds}",
        "-o", f"ServerAliveInterval={alive}", "-o", "ServerAliveCountMax=3",
        *sharing, "-o", "LogLevel=ERROR",
    ]  # fmt: skip


def destination(link: Link) -> str:
    """`user@host`, with an IPv6 address in brackets as rsync wants it."""
    host = f"[{link.host}]" if ":" in link.host else link.host
    return f"{link.user}@{host}"


def master_args(link: Link, delivery: Delivery, control: Path, ssh: str = "ssh") -> list[str]:
    """Open the shared connection: no session of its own (-N); ssh returns once it is up
    and leaves the master in the background."""
    return [*ssh_args(link, delivery, ssh, control, master=True), "-N", destination(link)]


def exit_args(link: Link, delivery: Delivery, control: Path, ssh: str = "ssh") -> list[str]:
    """Close the shared connection (through its socket; nothing goes over the network)."""
    return [*ssh_args(link, delivery, ssh, control), "-O", "exit", destination(link)]


# --- naming failures ----------------------------------------------------------------------

_LINK_SIGNS = (
    ("host-key", ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")),
    ("auth", ("Permission denied",)),
    ("full", ("No space left on device", "Disk quota exceeded")),
    ("unreachable", ("Connection refused", "Could not resolve", "No route to host",
                     "Network is unreachable", "Connection timed out", "Name or service")),
    ("interrupted", ("Connection closed", "Connection reset", "Broken pipe",
                     "connection unexpectedly closed", "timeout", "Killed by signal")),
)
# ssh's words when a master's socket is stale; it then connects on its own, so they say
# nothing about the processor ("Connection refused" in them is the socket's).
_MUX_NOISE = "Control socket connect("


def classify(result: Completed, what: str) -> LinkError:
    """Name a failure that came without a verdict (ssh or rsync never reached the receiver)."""
    lines = [line.strip() for line in result.stderr.splitlines()
             if line.strip() and _MUX_NOISE not in line]
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


# --- running commands ---------------------------------------------------------------------


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
                                stderr=subprocess.PIPE, env={**os.environ, **C_LOCALE},
                                start_new_session=True)  # one group: rsync and its ssh
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Drain(proc.stdout), _Drain(proc.stderr)
        if proc.stdin is not None:
            threading.Thread(target=_feed, args=(proc.stdin, input or b""), daemon=True).start()
        try:
            self.wait(proc, timeout, Path(argv[0]).name)
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

    def wait(self, proc: subprocess.Popen[bytes], timeout: float | None, name: str) -> int:
        """Wait for proc to end and return its status; Stopped, or LinkError on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not _ended(proc, self.slice):
            self.tick()
            if self.stop.is_set():
                raise Stopped(f"{name} stopped")
            if deadline is not None and time.monotonic() > deadline:
                raise LinkError("interrupted", f"{name}: no end after {timeout:g} s")
        return proc.returncode


def _ended(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait up to seconds for proc to end; with a pidfd (Linux), wake the moment it does
    (Popen.wait polls, up to 50 ms late)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here (or filtered), or already reaped
        fd = None
    if fd is not None:
        try:
            select.select([fd], [], [], seconds)
        finally:
            os.close(fd)
    try:
        proc.wait(0 if fd is not None else seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


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


# --- one connection per cycle -------------------------------------------------------------


class SharedConnection:
    """The cycle's one SSH connection: `open` it, ask `control` before each session, `close`."""

    def __init__(self, link: Link, delivery: Delivery, run: Runner, ssh: str = "ssh") -> None:
        self.link = link
        self.delivery = delivery
        self.run = run
        self.ssh = ssh
        self.folder: Path | None = None  # private (0700): whoever reaches the socket is us
        self._starting: subprocess.Popen[bytes] | None = None  # ssh, until the master is up
        self._up = False
        self._failed = False  # it could not connect: the cycle's sessions connect alone

    @property
    def path(self) -> Path | None:
        """The master's control socket (while a folder for it exists)."""
        return None if self.folder is None else self.folder / "master"

    def open(self) -> None:
        """Start connecting in the background; sessions wait for it in `control`."""
        if self.folder is None:
            try:
                self.folder = _private_folder()
            except OSError as exc:  # then every session connects on its own, as before
                log.warning("no folder for the shared SSH connection (%s): one connection "
                            "per session", exc.strerror)
                return
        if self._starting is not None or self._up or self._failed:
            return
        assert self.path is not None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # the socket of a master that was killed
        with (self.folder / "master.log").open("wb") as errors:
            self._starting = subprocess.Popen(
                master_args(self.link, self.delivery, self.path, self.ssh),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                env={**os.environ, **C_LOCALE}, start_new_session=True)

    def control(self, what: str) -> Path | None:
        """The socket for the next session, or None: it connects on its own.

        Waits for a master still connecting, and connects again if the master is gone.
        Raises LinkError when it cannot connect for a reason a session alone would meet
        too (once: later sessions of the cycle connect alone, as without sharing), and
        Stopped if asked to stop meanwhile.
        """
        if self.folder is None or self._failed:
            return None
        if self._up and not self._alive():
            log.warning("the shared SSH connection is gone (before the %s); connecting again",
                        what)
            self._up = False
        if not self._up:
            self.open()
        if self._starting is not None:
            self._finish_starting(what)
        return self.path if self._up else None

    def drop(self) -> None:
        """End the master now, sessions and all (a session on it failed: do not trust it);
        the next session connects again."""
        if self._starting is not None:  # still connecting (stopped meanwhile)
            _kill_group(self._starting)
            self._starting = None
        if self._up and self.path is not None:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(exit_args(self.link, self.delivery, self.path, self.ssh),
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=CLOSE_SECONDS, env={**os.environ, **C_LOCALE})
        self._up = False

    def close(self) -> None:
        """End the master and forget its folder (the cycle is over)."""
        self.drop()
        self._failed = False
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def _finish_starting(self, what: str) -> None:
        proc = self._starting
        assert proc is not None and self.folder is not None
        try:
            code = self.run.wait(proc, self.delivery.connect_timeout_seconds
                                 + self.delivery.timeout_seconds, "ssh")
        except (Stopped, LinkError):
            _kill_group(proc)
            self._starting = None
            raise
        self._starting = None
        if code == 0 and self._alive():
            self._up = True
            return
        self._failed = True
        said = (self.folder / "master.log").read_text(errors="replace")
        error = classify(Completed(code, "", said), what)
        if error.kind in FINAL_KINDS:
            raise error
        log.warning("the shared SSH connection did not open (%s); each session connects "
                    "on its own", said.strip() or f"ssh exit status {code}")

    def _alive(self) -> bool:
        """Whether a master listens on the socket (a stale one is removed)."""
        assert self.path is not None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.path))
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:
                    with contextlib.suppress(OSError):
                        self.path.unlink()
                return False
        return True


def _private_folder() -> Path:
    """A new folder only we may enter, for the master's socket (and its log): in systemd's
    RuntimeDirectory= if the unit has one, else the temporary folder (private to the unit
    with PrivateTmp=)."""
    problem: OSError = OSError(errno.ENAMETOOLONG, "no folder with a short enough path")
    for base in (os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or None, None, "/tmp"):
        try:
            folder = Path(tempfile.mkdtemp(prefix="stopmo-ssh-", dir=base))  # mode 0700
        except OSError as exc:
            problem = exc
            continue
        if len(str(folder / "master")) <= MAX_SOCKET_PATH:
            return folder
        folder.rmdir()
    raise problem


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()
