"""Real, throwaway services on free loopback ports for tests.

Each service is a small class with start()/stop(), usable as a context manager.
stop() is idempotent. Start-up failures raise ServiceError carrying the tail of
the service's log file, so a failing fixture explains itself.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, NoReturn, Self

import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pragma: no cover

# Binaries the harness may ask for, and the Debian package that provides each.
DEBIAN_PACKAGES: dict[str, str] = {
    "redis-server": "redis-server",
    "Xvfb": "xvfb",
    "xdpyinfo": "x11-utils",
    "import": "imagemagick",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "rsync": "rsync",
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    "mpv": "mpv",
    "xdotool": "xdotool",
    "chromium": "chromium",
    "mosquitto": "mosquitto",
    "mosquitto_passwd": "mosquitto",
}

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
CHILD_GRACE = 1.0
LOCALHOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A test service failed to start or to answer."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """Yield a TCP port on 127.0.0.1 that refuses connections for as long as it is held:
    bound, never listening, so no other server (of this test or another worker's) can
    take it meanwhile, as one from `free_port` could."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        yield sock.getsockname()[1]


def skip_or_fail(reason: str) -> NoReturn:
    """A capability is missing: fail under CI (it must never go green by skipping), skip
    elsewhere with the reason."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must have it: see scripts/setup)")
    pytest.skip(reason)


def require_binary(name: str) -> str:
    """Return the path of an executable; fail under CI, skip elsewhere, when missing."""
    # /usr/sbin is not on a normal user's PATH on Debian, but sshd lives there.
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path:
        return path
    package = DEBIAN_PACKAGES.get(name, f"the package that provides {name}")
    skip_or_fail(f"{name} is not installed: apt-get install {package} (or run scripts/setup)")


def child_pids(pid: int) -> list[int]:
    """The pids of pid's children (Linux /proc; no procps needed)."""
    try:
        return [int(child) for child in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def ssh_masters(marker: str) -> list[int]:
    """Running (not zombie) ssh masters whose command line mentions marker (e.g. a key)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and b"ControlMaster=yes" in argv and marker.encode() in argv:
            found.append(int(entry.name))
    return found


def descendant(pid: int, name: str) -> int | None:
    """A process called name below pid (Linux /proc)."""
    for child in child_pids(pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == name:
                return child
        except OSError:
            continue
        if (found := descendant(child, name)) is not None:
            return found
    return None


def wait_until(
    predicate: Callable[[], object],
    timeout: float = START_TIMEOUT,
    interval: float = 0.02,
    message: str = "condition",
) -> None:
    """Call predicate until it returns something truthy; raise TimeoutError after timeout.

    Exceptions raised by the predicate propagate at once (use them to fail fast).
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {message}")
        time.sleep(interval)


def tail(path: Path, lines: int = 30) -> str:
    """Return the last lines of a text file, or a note when it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log file {path})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _orphan_guard() -> list[str]:
    """Return a command prefix that SIGTERMs the child if the test process dies.

    util-linux's setpriv sets the parent-death signal and then execs, which is
    safe in a threaded process (unlike a Python preexec_fn).
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


class Daemon:
    """A child process with a log file; subclasses define argv() and ready().

    The child runs in its own process group, which stop() signals as a whole, and
    gets SIGTERM if the thread that started it dies (so start it from the test's
    thread, not from a short-lived worker thread).
    """

    name = "daemon"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- to override -------------------------------------------------------
    def argv(self) -> list[str]:
        """Return the command line that starts the service."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Return True once the service answers."""
        raise NotImplementedError

    def pass_fds(self) -> tuple[int, ...]:
        """Return file descriptors the child inherits."""
        return ()

    # -- lifecycle ---------------------------------------------------------
    @property
    def running(self) -> bool:
        """Return whether the child process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Start the service and wait until it answers; raise ServiceError otherwise."""
        if self.running:
            return self
        self.stop()  # forget a process that died on its own
        self._log = self.log_path.open("ab")
        self._log.write(f"--- {time.strftime('%H:%M:%S')} starting {self.name}\n".encode())
        self._log.flush()
        argv = self.argv()
        try:
            self.process = subprocess.Popen(
                [*_orphan_guard(), *argv],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=self.pass_fds(),
            )
            wait_until(self._ready_or_raise, START_TIMEOUT, message=f"{self.name} to answer")
        except (OSError, TimeoutError, ServiceError) as exc:
            self.stop()
            raise ServiceError(
                f"{self.name} did not start ({exc}); command: {shlex.join(argv)}\n"
                f"--- tail of {self.log_path}:\n{tail(self.log_path)}"
            ) from exc
        return self

    def _ready_or_raise(self) -> bool:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise ServiceError(f"{self.name} exited with status {code}")
        return self.ready()

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Terminate the service (its whole process group), then kill it after timeout."""
        if self.process is not None:
            if self.process.poll() is None:
                self._end_children()
                self._signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    self.process.wait(timeout)
            # Children forked by the service may outlive it: clean the group up.
            self._signal(signal.SIGKILL)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _end_children(self) -> None:
        """Let the service reap its children before it goes, so none is orphaned to init.

        sshd's per-connection children call setsid(), so the group signal misses them.
        """
        assert self.process is not None
        pid = self.process.pid
        try:
            wait_until(lambda: not _children(pid), CHILD_GRACE, message="children to exit")
        except TimeoutError:
            for child in _children(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not _children(pid), CHILD_GRACE, message="children to exit")

    def kill(self) -> None:
        """Kill the service with SIGKILL, as a crash or power cut would."""
        if self.process is not None:
            self._signal(signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT)
        self.stop()

    def restart(self) -> Self:
        """Stop and start again (on the same port for network services)."""
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of the service's log."""
        return tail(self.log_path, lines)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    """Return the pids of a process's children (Linux /proc), or [] if unknown."""
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except (OSError, ValueError):
        return []


def _connect(port: int, timeout: float = 1.0) -> socket.socket | None:
    """Return a connected socket to 127.0.0.1:port, or None when refused."""
    try:
        return socket.create_connection((LOCALHOST, port), timeout=timeout)
    except OSError:
        return None


def _answers(port: int) -> bool:
    """Whether something accepts a TCP connection on 127.0.0.1:port."""
    sock = _connect(port)
    if sock is None:
        return False
    sock.close()
    return True


# -- redis -------------------------------------------------------------------


class RedisServer(Daemon):
    """A throwaway redis-server on a free loopback port, with no persistence."""

    name = "redis-server"

    def __init__(self, tmpdir: Path, port: int | None = None) -> None:
        self.binary = require_binary("redis-server")
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        super().__init__(self.dir / "redis.log")

    @property
    def url(self) -> str:
        """Return the redis URL of database 0."""
        return f"redis://{LOCALHOST}:{self.port}/0"

    def argv(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", LOCALHOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
        ]  # fmt: skip

    def ready(self) -> bool:
        # PONG alone could come from another server that won the race for the port.
        assert self.process is not None
        return self.ping() and self._server_pid() == self.process.pid

    def _server_pid(self) -> int | None:
        """Return the pid the server reports in INFO, or None."""
        sock = _connect(self.port)
        if sock is None:
            return None
        data = b""
        with sock:
            try:
                sock.sendall(b"INFO server\r\n")
                while (match := re.search(rb"process_id:(\d+)\r\n", data)) is None:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return None
                    data += chunk
            except OSError:
                return None
        return int(match.group(1))

    def ping(self) -> bool:
        """Return whether the server answers PING with +PONG on a raw socket."""
        sock = _connect(self.port)
        if sock is None:
            return False
        with sock:
            try:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
            except OSError:
                return False


# -- S3 (moto) -----------------------------------------------------------------

AWS_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    """moto's S3 over HTTP on a free loopback port, in a thread of this process.

    moto keeps its buckets in process-global memory: they survive stop()/start()
    (like a real outage) and are shared with any moto use in the same process.
    Call reset() for an empty store.
    """

    def __init__(self, port: int | None = None) -> None:
        from moto.server import ThreadedMotoServer

        self._server_class = ThreadedMotoServer
        self.port = port or free_port()
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        """Return the HTTP endpoint for boto3's endpoint_url."""
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        """Return whether the server is serving."""
        return self._server is not None

    def start(self) -> Self:
        """Serve S3 on self.port; raise ServiceError if the port cannot be bound."""
        if self._server is not None:
            return self
        # ThreadedMotoServer.start() blocks forever when its thread fails to bind:
        # check the port first, and start it from a helper thread with a timeout.
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((LOCALHOST, self.port))
        except OSError as exc:
            raise ServiceError(f"moto S3 cannot bind {LOCALHOST}:{self.port}: {exc}") from exc
        server = self._server_class(ip_address=LOCALHOST, port=self.port, verbose=False)
        starter = threading.Thread(target=server.start, daemon=True)
        starter.start()
        starter.join(START_TIMEOUT)
        if starter.is_alive():
            raise ServiceError(f"moto S3 did not start on {LOCALHOST}:{self.port}")
        self._server = server
        try:
            wait_until(self._answers, START_TIMEOUT, message="moto S3 to answer")
        except TimeoutError as exc:
            self.stop()
            raise ServiceError(str(exc)) from exc
        return self

    def _answers(self) -> bool:
        return _answers(self.port)

    def stop(self) -> None:
        """Stop serving and release the port (the stored objects remain)."""
        server, self._server = self._server, None
        if server is None:
            return
        # Returns once werkzeug's serve_forever loop (0.5 s poll) has closed the socket.
        server.stop()

    def restart(self) -> Self:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    def reset(self) -> None:
        """Delete every bucket and object (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            response.read()

    def env(self) -> dict[str, str]:
        """Return AWS_* variables that point a subprocess's boto3 at this server."""
        return {**AWS_TEST_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self, **config: Any) -> S3Client:
        """Return a boto3 S3 client for this server (SigV4, dummy credentials).

        Keyword arguments go to botocore's Config, e.g. retries={"max_attempts": 1}.
        """
        import boto3
        from botocore.config import Config

        client: S3Client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=AWS_TEST_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=AWS_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(signature_version="s3v4", **config),
        )
        return client

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- Xvfb ----------------------------------------------------------------------


class XvfbDisplay(Daemon):
    """A virtual X display; Xvfb picks a free display number itself (-displayfd)."""

    name = "Xvfb"
    width = 1280
    height = 800

    def __init__(self, tmpdir: Path) -> None:
        self.binary = require_binary("Xvfb")
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.number: int | None = None
        self._read_fd: int | None = None
        self._write_fd: int | None = None
        self._received = b""
        super().__init__(self.dir / "xvfb.log")

    @property
    def display(self) -> str:
        """Return the DISPLAY value, e.g. ":3"."""
        if self.number is None:
            raise ServiceError("Xvfb is not running")
        return f":{self.number}"

    def env(self) -> dict[str, str]:
        """Return the environment that puts an X client on this display."""
        return {"DISPLAY": self.display}

    def argv(self) -> list[str]:
        assert self._write_fd is not None
        # -noreset: an X server resets itself whenever its last client goes, and refuses
        # connections while it does. A lone program that opens and closes the display in
        # turn (mpv probing its video outputs, a test polling with xdotool) then sometimes
        # finds no display at all: mpv fell back to SDL's off-screen driver and never showed
        # a window. The display stays up for the whole test instead.
        return [
            self.binary,
            "-displayfd", str(self._write_fd),
            "-screen", "0", f"{self.width}x{self.height}x24",
            "-nolisten", "tcp",
            "-noreset",
        ]  # fmt: skip

    def pass_fds(self) -> tuple[int, ...]:
        assert self._write_fd is not None
        return (self._write_fd,)

    def start(self) -> Self:
        if self.running:
            return self
        self.number = None
        self._received = b""
        self._read_fd, self._write_fd = os.pipe()
        try:
            super().start()
        finally:
            os.close(self._write_fd)
            self._write_fd = None
            os.close(self._read_fd)
            self._read_fd = None
        return self

    def ready(self) -> bool:
        # Xvfb writes the display number and a newline once it accepts clients.
        assert self._read_fd is not None
        readable, _, _ = select.select([self._read_fd], [], [], 0)
        if readable:
            self._received += os.read(self._read_fd, 64)
        if not self._received.endswith(b"\n"):
            return False
        self.number = int(self._received.strip())
        return True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        super().stop(timeout)
        self.number = None

    def screenshot(self, path: Path) -> Path:
        """Save the whole screen as a PNG (Pillow's XCB grab, else ImageMagick import)."""
        path = Path(path)
        try:
            from PIL import ImageGrab, features

            has_xcb = features.check("xcb")
        except ImportError:
            has_xcb = False
        if has_xcb:
            ImageGrab.grab(xdisplay=self.display).save(path, "PNG")
            return path
        importer = shutil.which("import")
        if importer is None:
            raise ServiceError(
                "cannot take a screenshot: install Pillow with XCB support, "
                "or ImageMagick (apt-get install imagemagick) for `import`"
            )
        subprocess.run(
            [importer, "-display", self.display, "-window", "root", f"png:{path}"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return path


# -- sshd ----------------------------------------------------------------------


def generate_keypair(path: Path, comment: str = "stopmo-test") -> str:
    """Create an ed25519 key pair without passphrase at path; return the public key line."""
    keygen = require_binary("ssh-keygen")
    path = Path(path)
    if not path.exists():
        subprocess.run(
            [keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    return path.with_name(path.name + ".pub").read_text().strip()


class SshServer(Daemon):
    """A throwaway sshd on a free loopback port that accepts one client key.

    It logs in as the current user. Use ssh_command() for ssh, rsync_rsh() for
    `rsync -e`, and authorize() to add more keys (e.g. a forced command).
    """

    name = "sshd"

    def __init__(self, tmpdir: Path, port: int | None = None) -> None:
        self.binary = require_binary("sshd")
        self.ssh_binary = require_binary("ssh")
        self.dir = Path(tmpdir).absolute()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.host_key = self.dir / "ssh_host_ed25519_key"
        self.client_key = self.dir / "id_ed25519"
        self.authorized_keys = self.dir / "authorized_keys"
        self.known_hosts = self.dir / "known_hosts"
        self.config = self.dir / "sshd_config"
        self.pid_file = self.dir / "sshd.pid"
        super().__init__(self.dir / "sshd.log")
        host_public = generate_keypair(self.host_key, "stopmo-test-host")
        client_public = generate_keypair(self.client_key, "stopmo-test-client")
        self.known_hosts.write_text(f"[{LOCALHOST}]:{self.port} {host_public}\n")
        if not self.authorized_keys.exists():
            self.authorize(client_public)
        self.config.write_text(self._config_text())

    def _config_text(self) -> str:
        return "\n".join(
            [
                f"Port {self.port}",
                f"ListenAddress {LOCALHOST}",
                f"HostKey {self.host_key}",
                f"PidFile {self.pid_file}",
                f"AuthorizedKeysFile {self.authorized_keys}",
                "UsePAM no",
                "StrictModes no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "LogLevel VERBOSE",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )

    @property
    def destination(self) -> str:
        """Return user@127.0.0.1."""
        return f"{self.user}@{LOCALHOST}"

    def accepted(self) -> int:
        """How many SSH connections this sshd has accepted so far (its log)."""
        return self.log_path.read_text(errors="replace").count("Accepted publickey")

    def authorize(self, pubkey_line: str) -> None:
        """Append a line to authorized_keys (options such as command="..." allowed)."""
        with self.authorized_keys.open("a") as keys:
            keys.write(pubkey_line.strip() + "\n")

    def ssh_args(self, key: Path | None = None) -> list[str]:
        """Return the ssh command without destination (for rsync -e or extra options)."""
        return [
            self.ssh_binary,
            "-F", "/dev/null",  # ignore the user's ~/.ssh/config
            "-p", str(self.port),
            "-i", str(key or self.client_key),
            "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=5",
        ]  # fmt: skip

    def ssh_command(self, key: Path | None = None) -> list[str]:
        """Return an ssh command line that logs in; append the remote command."""
        return [*self.ssh_args(key), self.destination]

    def rsync_rsh(self, key: Path | None = None) -> str:
        """Return the value for `rsync -e` (destination is given as user@127.0.0.1:path)."""
        return shlex.join(self.ssh_args(key))

    def argv(self) -> list[str]:
        return [self.binary, "-D", "-e", "-f", str(self.config)]

    def start(self) -> Self:
        self.pid_file.unlink(missing_ok=True)
        # sshd refuses to start as root without its privilege separation directory.
        with contextlib.suppress(PermissionError):
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        return super().start()

    def ready(self) -> bool:
        # sshd writes its pid file after binding: a banner alone could come from
        # another sshd that won the race for the port.
        assert self.process is not None
        try:
            if int(self.pid_file.read_text()) != self.process.pid:
                return False
        except (FileNotFoundError, ValueError):
            return False
        sock = _connect(self.port)
        if sock is None:
            return False
        with sock:
            try:
                return sock.recv(256).startswith(b"SSH-2.0")
            except OSError:
                return False


class ThrottledProxy:
    """A TCP proxy on loopback that slows what clients send (to catch a process mid-upload)."""

    def __init__(self, target_port: int, bytes_per_second: int) -> None:
        self.target_port = target_port
        self.rate = bytes_per_second
        self.bytes_up = 0
        self._listener = socket.create_server((LOCALHOST, 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="proxy").start()

    @property
    def url(self) -> str:
        """The proxy's HTTP address."""
        return f"http://{LOCALHOST}:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOCALHOST, self.target_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while True:
                data = source.recv(1024 if slow else 65536)
                if not data:
                    break
                if slow:
                    self.bytes_up += len(data)
                    time.sleep(len(data) / self.rate)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting and cut every connection."""
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@contextlib.contextmanager
def chromium_page(viewport: dict[str, int], mobile: bool,
                  problems: list[str]) -> Iterator[Any]:
    """A page in Debian's Chromium (never a downloaded browser); console errors (CSP
    violations, script errors, 404s) are appended to problems."""
    chromium = require_binary("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=viewport,  # type: ignore[arg-type]
                                       is_mobile=mobile).new_page()
            page.on("console", lambda msg: problems.append(msg.text)
                    if msg.type == "error" else None)
            yield page
        finally:
            browser.close()


class MosquittoServer(Daemon):
    """A real mosquitto on a free loopback port, with its own users and ACL.

    users: name -> password (a password file made with mosquitto_passwd); acl: the
    text of an ACL file, or None for none. Without users, anonymous clients may connect.
    """

    name = "mosquitto"

    def __init__(self, tmpdir: Path, users: dict[str, str] | None = None,
                 acl: str | None = None, port: int | None = None,
                 extra_config: str = "") -> None:
        tmpdir.mkdir(parents=True, exist_ok=True)
        super().__init__(tmpdir / "mosquitto.log")
        self.dir = tmpdir
        self.port = port or free_port()
        self.users = dict(users or {})
        self.acl = acl
        self.extra_config = extra_config

    @property
    def url(self) -> str:
        """`mqtt://127.0.0.1:PORT`."""
        return f"mqtt://{LOCALHOST}:{self.port}"

    def _config(self) -> Path:
        # As root, mosquitto would switch to its own user, who cannot read the test's
        # private temp folder: stay the user who started it (no effect for others).
        lines = [f"listener {self.port} {LOCALHOST}", "persistence false", "user root",
                 "log_dest stdout", "log_type error", "log_type warning", "log_type notice",
                 f"allow_anonymous {'false' if self.users else 'true'}"]
        if self.users:
            passwd = self.dir / "passwd"
            passwd.write_text("")
            tool = require_binary("mosquitto_passwd")
            for user, password in self.users.items():
                subprocess.run([tool, "-b", str(passwd), user, password], check=True,
                               capture_output=True, timeout=30)
            lines.append(f"password_file {passwd}")
        if self.acl is not None:
            (self.dir / "acl").write_text(self.acl)
            lines.append(f"acl_file {self.dir / 'acl'}")
        config = self.dir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n" + self.extra_config)
        return config

    def argv(self) -> list[str]:
        return [require_binary("mosquitto"), "-c", str(self._config())]

    def ready(self) -> bool:
        return _answers(self.port)


class MpvProcess(Daemon):
    """A real mpv, idle, with its JSON IPC socket; `--vo=null` unless told otherwise."""

    name = "mpv"

    def __init__(self, tmpdir: Path, socket_path: Path | None = None,
                 extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        tmpdir.mkdir(parents=True, exist_ok=True)
        super().__init__(tmpdir / "mpv.log")
        self.socket = socket_path or tmpdir / "mpv.sock"
        self.extra = extra if extra is not None else ["--vo=null"]
        self.env = env

    def argv(self) -> list[str]:
        mpv = require_binary("mpv")
        argv = [mpv, "--idle=yes", "--ao=null", "--no-config", "--no-terminal",
                "--loop-playlist=inf", f"--input-ipc-server={self.socket}", *self.extra]
        if self.env:
            argv = ["env", *(f"{k}={v}" for k, v in self.env.items()), *argv]
        return argv

    def ready(self) -> bool:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.socket))
            return True
        except OSError:
            return False
        finally:
            sock.close()

    def ask(self, *command: Any) -> Any:
        """Send one command on a fresh connection and return its data (for assertions)."""
        import json

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall((json.dumps({"command": list(command), "request_id": 99}) + "\n")
                         .encode())
            buffer = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ServiceError("mpv closed the socket")
                buffer += chunk
                for line in buffer.split(b"\n"):
                    if line.strip():
                        reply = json.loads(line)
                        if reply.get("request_id") == 99:
                            if reply.get("error") != "success":
                                raise ServiceError(f"mpv: {reply.get('error')}")
                            return reply.get("data")

    def playlist(self) -> list[str]:
        """The file names in mpv's own playlist, in its order."""
        return [item["filename"] for item in self.ask("get_property", "playlist")]
