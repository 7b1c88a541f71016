"""The daemon drives a real mpv; operators use `processor screen`; kill -9 on both sides."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo import make_demo
from tests.processor.conftest import T0, daemon, daemon_env
from tests.services import MpvProcess, wait_until

pytestmark = pytest.mark.slow  # the daemon driving a real mpv


def screen_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "processor", "screen", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def ids(mpv: MpvProcess) -> list[str]:
    return sorted(Path(name).stem for name in mpv.playlist())


def test_daemon_screen_commands_and_kill_9_on_both_sides(tmp_path: Path) -> None:
    mpv = MpvProcess(tmp_path / "mpv").start()
    env = daemon_env(tmp_path, (tmp_path / "store").as_uri(), {
        "STOPMO_SCREEN": "mpv", "STOPMO_MPV_SOCKET": str(mpv.socket),
        "STOPMO_OUTPUT_SIZE": "320x180"})
    made = sorted(make_demo(tmp_path / "inbox", frames=20, width=160, height=120,
                            publish=i != 1, now=T0.replace(minute=i)).name for i in range(3))
    log = tmp_path / "daemon.log"
    try:
        with daemon(env, log) as proc:
            wait_until(lambda: ids(mpv) == made, timeout=60, message="three on the screen")
            status = screen_cli(env, "status")
            assert status.returncode == 0, status.stderr
            report = json.loads(status.stdout)
            assert report["connected"] and sorted(report["playlist"]) == made
            assert screen_cli(env, "play", made[0]).stdout.strip() == "ok"
            wait_until(lambda: json.loads(screen_cli(env, "status").stdout)["playing"]
                       == made[0], timeout=10, message="played on request")
            assert screen_cli(env, "next").returncode == 0
            unknown = screen_cli(env, "play", "no-such-movie")
            assert unknown.returncode == 1 and "no such movie" in unknown.stderr
            proc.kill()  # the controller dies; mpv plays on
            proc.wait()
        entry_ids = [item["id"] for item in mpv.ask("get_property", "playlist")]
        down = screen_cli(env, "status")
        assert down.returncode == 1 and "does not answer" in down.stderr
        with daemon(env, log):
            wait_until(lambda: screen_cli(env, "status").returncode == 0, timeout=30,
                       message="daemon back")
            # The running mpv already had the loop: adopted, not reloaded.
            assert [item["id"] for item in mpv.ask("get_property", "playlist")] == entry_ids
            mpv.kill()
            mpv.start()
            wait_until(lambda: ids(mpv) == made, timeout=30, message="pushed to the new mpv")
        mpv.kill()  # a reboot: both start afresh, the loop comes from the movies on disk
        mpv.start()
        with daemon(env, log):
            wait_until(lambda: ids(mpv) == made, timeout=30, message="rebuilt from disk")
    finally:
        mpv.stop()
