"""kill -9 the daemon mid-encode and mid-upload: on restart, published exactly once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from processor.s3store import S3Store
from processor.screen import read_fake_screen
from tests.demo import make_demo
from tests.listing import listed_ids
from tests.processor.conftest import daemon, daemon_env, state_of
from tests.services import S3Server, ThrottledProxy, wait_until

pytestmark = pytest.mark.slow  # kill -9 tours of the daemon


def test_kill_9_mid_encode(tmp_path: Path) -> None:
    package = make_demo(tmp_path / "inbox", frames=400, width=640, height=480)
    env = daemon_env(tmp_path, (tmp_path / "store").as_uri())
    movies = tmp_path / "work" / "movies"
    with daemon(env, tmp_path / "daemon.log") as proc:
        wait_until(lambda: movies.exists() and any(movies.glob(".*.partial")), timeout=60,
                   message="ffmpeg writing")
        proc.kill()
        proc.wait()
    assert state_of(tmp_path, package.name) == "validated"
    wait_until(lambda: not _ffmpeg_running(tmp_path), timeout=10,
               message="ffmpeg gone with its killed parent")
    with daemon(env, tmp_path / "daemon.log"):
        wait_until(lambda: state_of(tmp_path, package.name) == "done", timeout=120,
                   message="done after restart")
    published = sorted(p.name for p in (tmp_path / "store" / "movies").iterdir())
    assert published == sorted([f"{package.name}.mp4", f"{package.name}.jpg",
                                f"{package.name}.json", "index"])
    assert listed_ids(tmp_path / "store") == [package.name]
    assert [s["package_id"] for s in read_fake_screen(tmp_path / "work" / "screen.jsonl")] == [
        package.name]
    assert not list(movies.glob(".*")) and not list((tmp_path / "store").glob(".uploading/*"))


def _ffmpeg_running(tmp_path: Path) -> bool:
    """Is an ffmpeg of this test (its paths are under tmp_path) still running?"""
    done = subprocess.run(["pgrep", "-f", f"ffmpeg .*{tmp_path}/"], capture_output=True)
    return done.returncode == 0


def test_kill_9_mid_upload(tmp_path: Path, s3_server: S3Server) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="festival")
    package = make_demo(tmp_path / "inbox", frames=60, width=640, height=480)
    proxy = ThrottledProxy(s3_server.port, bytes_per_second=40_000)
    env = daemon_env(tmp_path, "s3://festival/jff", {**s3_server.env(),
                                                     "AWS_ENDPOINT_URL": proxy.url})
    try:
        with daemon(env, tmp_path / "daemon.log") as proc:
            wait_until(lambda: state_of(tmp_path, package.name) == "shown"
                       and proxy.bytes_up > 20_000, timeout=120, message="uploading")
            proc.kill()
            proc.wait()
    finally:
        proxy.close()
    assert state_of(tmp_path, package.name) == "shown"  # on the screen, waiting to publish
    env["AWS_ENDPOINT_URL"] = s3_server.endpoint_url
    with daemon(env, tmp_path / "daemon.log"):
        wait_until(lambda: state_of(tmp_path, package.name) == "done", timeout=60,
                   message="done after restart")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="festival")["Contents"])
    [index] = [key for key in keys if key.startswith("jff/movies/index/main/")]
    assert keys == sorted([f"jff/movies/{package.name}{ext}" for ext in (".mp4", ".jpg", ".json")]
                          + [index])
    assert listed_ids(S3Store("festival", "jff", client=client)) == [package.name]
    assert not client.list_multipart_uploads(Bucket="festival").get("Uploads")
