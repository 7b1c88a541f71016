"""Fixtures for the processor: settings in a temp dir, a pipeline on a folder store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from processor.config import Settings
from processor.daemon import Daemon
from processor.pipeline import Pipeline
from processor.screen import FakeScreen
from processor.store import FileStore
from tests.demo import make_demo
from tests.services import require_binary

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    require_binary("ffmpeg")
    require_binary("ffprobe")
    return Settings(inbox=tmp_path / "inbox", work_dir=tmp_path / "work",
                    storage_url=(tmp_path / "store").as_uri(), size=(640, 360), nice=0,
                    festival_name="Test Festival", workers=1, debounce_seconds=0.2,
                    rescan_seconds=1.0, retry_base_seconds=0.2, max_attempts=3,
                    screen="fake", screen_log=tmp_path / "screen.jsonl")


@pytest.fixture
def pipeline(settings: Settings) -> Pipeline:
    settings.inbox.mkdir(parents=True, exist_ok=True)
    assert settings.screen_log is not None
    return Pipeline(settings, FileStore(settings.work_dir.parent / "store"),
                    FakeScreen(settings.screen_log))


def add_package(inbox: Path, frames: int = 8, publish: bool = True, minutes: int = 0,
                station: str = "st-1", title: str | None = "A test movie") -> Path:
    """Write a valid package straight into inbox (created T0 + minutes)."""
    return make_demo(inbox, frames=frames, publish=publish, station_id=station, title=title,
                     width=320, height=240, now=T0 + timedelta(minutes=minutes))


def ffprobe_json(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_name,pix_fmt,width,height,nb_read_frames:format=duration",
         "-of", "json", str(path)], capture_output=True, text=True, check=True, timeout=60)
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def with_settings(pipeline: Pipeline, **changes: Any) -> Pipeline:
    """The same pipeline with some settings changed."""
    return Pipeline(replace(pipeline.settings, **changes), pipeline.store, pipeline.screen)


def daemon_env(tmp_path: Path, storage_url: str, extra: dict[str, str] | None = None
               ) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("STOPMO_")}
    env.update({"STOPMO_INBOX": str(tmp_path / "inbox"), "STOPMO_WORK_DIR": str(tmp_path / "work"),
                "STORAGE_URL": storage_url, "STOPMO_OUTPUT_SIZE": "1280x720",
                "STOPMO_FFMPEG_THREADS": "1", "STOPMO_SCREEN": "fake",
                "STOPMO_RESCAN_SECONDS": "1", "STOPMO_RETRY_BASE_SECONDS": "0.5"})
    env.update(extra or {})
    return env


@contextmanager
def daemon(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "processor", "run"], env=env,
                                stdout=out, stderr=out)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def state_of(tmp_path: Path, package_id: str) -> str:
    path = tmp_path / "work" / "state" / f"{package_id}.json"
    return json.loads(path.read_text())["step"] if path.exists() else ""


@contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    """Run the daemon on a thread while inside; stop it and wait for it after."""
    thread = threading.Thread(target=daemon.run, name="daemon")
    thread.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(timeout=60)
        assert not thread.is_alive()
