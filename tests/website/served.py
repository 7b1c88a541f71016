"""The website under a real gunicorn on a free loopback port, and a plain HTTP client."""

from __future__ import annotations

import http.client
import json
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests.services import LOCALHOST, Daemon, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Answer:
    """One HTTP response, and how long it took."""

    status: int
    body: str
    seconds: float


def get(port: int, path: str, headers: dict[str, str] | None = None,
        timeout: float = 10.0) -> Answer:
    """GET path on a fresh connection (no proxy, no redirects followed)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(LOCALHOST, port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
    finally:
        connection.close()
    return Answer(response.status, body, time.monotonic() - started)


class Site(Daemon):
    """gunicorn with the Procfile's config, bound to loopback, with only the given settings."""

    name = "gunicorn"

    def __init__(self, log_dir: Path, settings: dict[str, str], workers: int = 2) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(log_dir / "gunicorn.log")
        self.port = free_port()
        self.settings = {"WEB_CONCURRENCY": str(workers), "PATH": "/usr/bin:/bin", **settings}

    def argv(self) -> list[str]:
        env = shutil.which("env") or "/usr/bin/env"
        return [env, "-i", *(f"{key}={value}" for key, value in self.settings.items()),
                sys.executable, "-m", "gunicorn", "--chdir", str(ROOT),
                "--config", str(ROOT / "website" / "gunicorn_conf.py"),
                "--bind", f"{LOCALHOST}:{self.port}", "website.app:create_app()"]

    def ready(self) -> bool:
        try:
            get(self.port, "/healthz", timeout=5)
        except OSError:
            return False
        return True


def refreshes(log: Path) -> list[tuple[int, str, datetime]]:
    """(pid, started/done/failed, when) of every refresh line of a site's log."""
    found = []
    for line in log.read_text().splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "refresh" in doc:
            found.append((doc["pid"], doc["refresh"], datetime.fromisoformat(doc["ts"])))
    return found
