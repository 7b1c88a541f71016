"""The console's fixtures: settings, a fake clock, a logged-in client, a webhook server."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ops.app import create_app
from ops.cli import set_password
from ops.config import Settings, Thresholds
from ops.console import Console
from ops.notifier import AppriseNotifier, LogNotifier

# Noon in Jerusalem on a festival day (UTC+3 in May): inside 09:00-19:00 opening hours.
NOON = datetime(2026, 5, 1, 9, 0, tzinfo=UTC).timestamp()
PASSWORD = "correct horse battery"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time on."""
        self.now += seconds


@dataclass
class Webhook:
    """A tiny HTTP server on loopback that keeps every JSON body posted to it."""

    port: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Apprise's JSON webhook URL for this server."""
        return f"json://127.0.0.1:{self.port}/alerts"

    def titles(self) -> list[str]:
        """The notifications' titles, in order."""
        return [str(body.get("title")) for body in self.bodies]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """Run the webhook server for one test."""
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            hook.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    """An operators' file with `ana` (password PASSWORD)."""
    path = tmp_path / "ops-users"
    set_password(path, "ana", PASSWORD)
    return path


@pytest.fixture
def settings(tmp_path: Path, users_file: Path) -> Settings:
    """Twelve expected stations, opening hours 09:00-19:00 in Jerusalem."""
    from ops.hours import parse_hours

    return Settings(db_path=tmp_path / "ops" / "console.sqlite3", users_file=users_file,
                    stations=tuple(f"st-{n}" for n in range(1, 13)),
                    opening_hours=parse_hours("09:00-19:00"), timezone="Asia/Jerusalem",
                    thresholds=Thresholds())


@pytest.fixture
def clock() -> Clock:
    """A fake clock at noon, festival time."""
    return Clock()


def make_console(settings: Settings, clock: Clock, webhook: Webhook | None = None,
                 **changes: Any) -> Console:
    """A console (not started) that sends alerts to webhook through Apprise."""
    notifier = AppriseNotifier([webhook.url]) if webhook else LogNotifier()
    return Console(replace(settings, **changes), notifier=notifier, clock=clock)


@pytest.fixture
def console(settings: Settings, clock: Clock, webhook: Webhook) -> Iterator[Console]:
    """A console on the fake clock, its alerts going to the webhook."""
    found = make_console(settings, clock, webhook)
    yield found
    found.db.close()


@pytest.fixture
def app(console: Console) -> Flask:
    """The console's pages."""
    return create_app({"TESTING": True, "OPS_CONSOLE": console, "SECRET_KEY": "test"})


def form_token(html: str) -> str:
    """The CSRF token in a page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client: FlaskClient, user: str = "ana", password: str = PASSWORD) -> str:
    """Log in through the form; return the session's CSRF token."""
    token = form_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"user": user, "password": password,
                                           "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return form_token(client.get("/").get_data(as_text=True))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A logged-in browser."""
    found = app.test_client()
    log_in(found)
    return found
