"""The website's factory and its gunicorn entry point."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.services import free_port, wait_until
from website.app import create_app

ROOT = Path(__file__).resolve().parents[2]


def test_factory_takes_test_config() -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "x"})
    assert app.config["SECRET_KEY"] == "x"
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}


def test_procfile_command_serves_under_gunicorn() -> None:
    line = (ROOT / "Procfile").read_text().strip()
    assert line.startswith("web: gunicorn ")
    port = free_port()
    args = line.removeprefix("web: ").split()
    args = [a.strip('"') for a in args]
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT,
                            env={"PORT": str(port), "WEB_CONCURRENCY": "1",
                                 "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/healthz"

        def up() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_until(up, timeout=20, message="gunicorn answers /healthz")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
