"""The local festival (scripts/festival) as a test and benchmark fixture.

It starts the real thing -- supervisord with Redis, sshd, the processor daemon,
mpv, gunicorn, the sync agent and a scripted station -- under a temporary
folder and free ports, headless, and gives the test ways to look at it: the
website's API, the store, mpv's own playlist, the pids of each program.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from processor.screen.ipc import MpvIpc
from tests.services import free_port, require_binary, tail, wait_until

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "festival"


class ConsoleClient:
    """The operators' console as a logged-in operator uses it: a cookie session, CSRF tokens."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            urllib.request.ProxyHandler({}))
        self.post("/login", user=user, password=password)
        assert "Log out" in self.get("/") or "logout" in self.get("/"), "not logged in"

    def get(self, path: str) -> str:
        """A page's HTML (raises for a status other than 2xx/3xx)."""
        with self.opener.open(self.url + path, timeout=10) as response:
            return str(response.read().decode())

    def post(self, path: str, **form: str) -> str:
        """Send a form with the session's CSRF token, as the page's own form does."""
        page = self.get("/login" if path == "/login" else "/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, "no CSRF token on the page"
        body = urllib.parse.urlencode({**form, "csrf_token": token.group(1)}).encode()
        with self.opener.open(self.url + path, data=body, timeout=10) as response:
            return str(response.read().decode())


class Festival:
    """scripts/festival under `var`, on a free web port; headless unless given a display."""

    def __init__(self, var: Path, frames: int = 20, storage_url: str | None = None,
                 extra_env: dict[str, str] | None = None, display: str | None = None) -> None:
        for binary in ("redis-server", "sshd", "mpv", "ffmpeg", "rsync", "ssh", "mosquitto"):
            require_binary(binary)
        self.var = var.absolute()
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.mqtt_port, self.ops_port = free_port(), free_port()
        self.log_path = self.var.parent / f"{self.var.name}.log"
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(STOPMO_VAR=str(self.var), STOPMO_WEB_PORT=str(self.web_port),
                   STOPMO_MQTT_PORT=str(self.mqtt_port), STOPMO_OPS_PORT=str(self.ops_port),
                   STOPMO_FESTIVAL_HEADLESS="0" if display else "1",
                   STOPMO_FESTIVAL_FRAMES=str(frames), STOPMO_SUPERVISOR_LOGLEVEL="info")
        if display:
            env["DISPLAY"] = display
            # Xvfb has no GPU: mpv's default output draws OpenGL in software there, and once
            # stopped answering for over a minute while the suite loaded both cores (CI).
            # x11 is the output bench/screen.py measures on Xvfb.
            env["STOPMO_FESTIVAL_MPV_ARGS"] = "--window --geometry=50%x50%-0-0 --vo=x11"
        env.pop("STORAGE_URL", None)
        if storage_url:
            env["STORAGE_URL"] = storage_url
        env.update(extra_env or {})
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # time.time() when start() launched scripts/festival

    # --- life ---------------------------------------------------------------------------

    def start(self) -> Festival:
        """Start supervisord and wait until every program runs."""
        self.var.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.started_at = time.time()
        self.process = subprocess.Popen([sys.executable, str(SCRIPT)], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        log.close()
        try:
            wait_until(lambda: self._alive() and self.all_running(), timeout=60, interval=0.3,
                       message="every festival program RUNNING")
            wait_until(lambda: self.get_json("/healthz") is not None, timeout=30, interval=0.2,
                       message="the website answering")
        except BaseException:
            self.stop()
            raise
        return self

    def _alive(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"scripts/festival exited with {self.process.returncode}:\n"
                               + tail(self.log_path, 60))
        return True

    def stop(self, timeout: float = 40) -> int | None:
        """Ctrl-C, as an operator would; return supervisord's exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            raise

    def __enter__(self) -> Festival:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- supervisord --------------------------------------------------------------------

    def ctl(self, *args: str) -> str:
        """Run `scripts/festival ctl ARGS` and return its output."""
        done = subprocess.run([sys.executable, str(SCRIPT), "ctl", *args], env=self.env,
                              capture_output=True, text=True, timeout=30, check=False)
        return done.stdout + done.stderr

    def states(self) -> dict[str, tuple[str, int | None]]:
        """Each program's state and pid, as supervisorctl says."""
        found: dict[str, tuple[str, int | None]] = {}
        for line in self.ctl("status").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isupper():
                pid = int(parts[3].rstrip(",")) if len(parts) > 3 and parts[2] == "pid" else None
                found[parts[0]] = (parts[1], pid)
        return found

    def all_running(self) -> bool:
        """True when every program runs."""
        states = self.states()
        return len(states) >= 7 and all(state == "RUNNING" for state, _ in states.values())

    def pid(self, program: str) -> int:
        """The running pid of one program."""
        state, pid = self.states()[program]
        assert state == "RUNNING" and pid, f"{program} is {state}"
        return pid

    # --- the station --------------------------------------------------------------------

    def shoot(self, frames: int = 10, publish: bool = True) -> dict[str, Any]:
        """Shoot one movie with the scripted station (same station, same outbox)."""
        args = [sys.executable, "-m", "stations", "--config", str(self.var / "station.toml"),
                "demo", "--frames", str(frames)]
        if not publish:
            args.append("--nopublish")
        done = subprocess.run(args, env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=True)
        shots: list[dict[str, Any]] = [json.loads(line) for line in done.stdout.splitlines()
                                       if line.startswith("{")]
        assert len(shots) == 1, done.stdout + done.stderr
        return shots[0]

    def console(self) -> ConsoleClient:
        """The operators' console, logged in as the festival's operator."""
        password = (self.var / "ops" / "operator.password").read_text().strip()
        return ConsoleClient(f"http://127.0.0.1:{self.ops_port}", "operator", password)

    # --- what people see ----------------------------------------------------------------

    def get_json(self, path: str) -> Any:
        """GET a JSON document from the website; None when it does not answer 200."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def website_ids(self, strict: bool = True) -> list[str]:
        """Ids of the movies the website lists (every page); strict: it must answer."""
        ids: list[str] = []
        page = 1
        while True:
            doc = self.get_json(f"/api/movies?page={page}")
            if doc is None:
                if not strict:
                    return ids
                raise AssertionError("the website did not answer /api/movies")
            ids += [movie["id"] for movie in doc["movies"]]
            if page >= doc["pages"]:
                return ids
            page += 1

    def playlist(self) -> list[str]:
        """The file names in mpv's own playlist, asked over its IPC socket."""
        ipc = MpvIpc(str(self.var / "run" / "mpv.sock"))
        try:
            ipc.connect(timeout=2)
            entries = ipc.command("get_property", "playlist")
        finally:
            ipc.close()
        return [str(entry.get("filename", "")) for entry in entries]

    def in_playlist(self, package_id: str) -> bool:
        """True when mpv's playlist holds this movie."""
        try:
            return any(package_id in name for name in self.playlist())
        except Exception:  # mpv restarting: not there yet
            return False

    @property
    def store(self) -> Path:
        """The folder store (the default STORAGE_URL)."""
        return self.var / "store"

    def wait_on_website(self, package_id: str, timeout: float = 60) -> float:
        """Wait until the website lists the movie; return when (time.time())."""
        wait_until(lambda: package_id in self.website_ids(strict=False), timeout=timeout,
                   interval=0.1, message=f"{package_id} on the website")
        return time.time()

    def wait_in_playlist(self, package_id: str, timeout: float = 60) -> float:
        """Wait until mpv's playlist holds the movie; return when (time.time())."""
        wait_until(lambda: self.in_playlist(package_id), timeout=timeout, interval=0.05,
                   message=f"{package_id} in mpv's playlist")
        return time.time()
