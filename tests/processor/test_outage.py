"""The uplink is down: movies reach mpv at once, survive kill -9, publish once it is back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.demo import make_demo
from tests.processor.conftest import T0, daemon, daemon_env, state_of
from tests.services import MpvProcess, S3Server, tail, wait_until

pytestmark = pytest.mark.slow  # the daemon, mpv and an S3 outage


def on_screen(mpv: MpvProcess) -> set[str]:
    return {Path(name).stem for name in mpv.playlist()}


def bucket_keys(s3: S3Server) -> list[str]:
    listing = s3.client().list_objects_v2(Bucket="festival")
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_the_screen_never_waits_for_the_uplink(tmp_path: Path) -> None:
    s3 = S3Server().start()
    s3.reset()
    s3.client().create_bucket(Bucket="festival")
    s3.stop()  # the uplink drops: nothing answers on the endpoint's port
    mpv = MpvProcess(tmp_path / "mpv").start()
    env = daemon_env(tmp_path, "s3://festival/jff", {
        **s3.env(), "STOPMO_SCREEN": "mpv", "STOPMO_MPV_SOCKET": str(mpv.socket),
        "STOPMO_OUTPUT_SIZE": "320x180"})
    log = tmp_path / "daemon.log"
    inbox = tmp_path / "inbox"
    try:
        with daemon(env, log) as proc:
            wait_until(lambda: "watching" in log.read_text(), timeout=30, message="daemon up")
            first = make_demo(tmp_path / "outbox", frames=20, width=160, height=120,
                              now=T0.replace(minute=1))
            arrived = time.monotonic()
            first.rename(inbox / first.name)
            wait_until(lambda: first.name in on_screen(mpv), timeout=10,
                       message=f"first movie on the screen\n{tail(log)}")
            assert time.monotonic() - arrived < 5, "on the screen within 5 s of arriving"
            wait_until(lambda: json.loads((tmp_path / "work" / "state" /
                                           f"{first.name}.json").read_text())["attempts"] >= 1,
                       timeout=30, message="a publish try failed")
            assert state_of(tmp_path, first.name) == "shown"
            proc.kill()  # kill -9 during the outage
            proc.wait()
        second = make_demo(inbox, frames=15, width=160, height=120, now=T0.replace(minute=2))
        with daemon(env, log):
            wait_until(lambda: second.name in on_screen(mpv), timeout=30,
                       message=f"second movie on the screen\n{tail(log)}")
            assert first.name in on_screen(mpv)
            assert state_of(tmp_path, first.name) == "shown"
            # Handed to the screen, then the step is saved: a moment after mpv has it.
            wait_until(lambda: state_of(tmp_path, second.name) == "shown", timeout=10,
                       message="the second movie's step saved")
            s3.start()  # the uplink is back, on the same port
            wait_until(lambda: all(state_of(tmp_path, p.name) == "done"
                                   for p in (first, second)),
                       timeout=90, message=f"published after the outage\n{tail(log)}")
        index_key = f"jff/movies/index/main/{T0:%Y-%m-%d}.json"  # the hall main's, that day
        expected = sorted([f"jff/movies/{p.name}{ext}" for p in (first, second)
                           for ext in (".mp4", ".jpg", ".json")] + [index_key])
        assert bucket_keys(s3) == expected
        index = json.loads(s3.client().get_object(Bucket="festival", Key=index_key)
                           ["Body"].read())
        assert [m["id"] for m in index["movies"]] == [second.name, first.name]  # once each
    finally:
        mpv.stop()
        s3.stop()
