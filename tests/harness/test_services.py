"""The harness gives real, working services, and each of them can fail."""

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from botocore.exceptions import EndpointConnectionError
from PIL import Image

from tests.services import (
    RedisServer,
    S3Server,
    SshServer,
    XvfbDisplay,
    free_port,
    generate_keypair,
    require_binary,
    wait_until,
)

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- helpers -------------------------------------------------------------------


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535


def test_wait_until_times_out_with_a_message() -> None:
    with pytest.raises(TimeoutError, match="the moon"):
        wait_until(lambda: False, timeout=0.05, interval=0.01, message="the moon")


def test_missing_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="run scripts/setup"):
        require_binary("stopmo-no-such-binary")


def test_missing_binary_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        require_binary("stopmo-no-such-binary")


def test_present_binary_is_found() -> None:
    assert Path(require_binary("sh")).exists()


# -- redis ---------------------------------------------------------------------


def test_redis_set_get(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping()
    client.set("movie:1", b"ready")
    assert client.get("movie:1") == b"ready"
    client.close()


def test_redis_kill_and_restart_on_the_same_port(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=1)
    client.set("k", "v")
    redis_server.kill()
    assert not redis_server.running
    with pytest.raises(redis.ConnectionError):
        client.ping()
    url = redis_server.url
    redis_server.restart()
    assert redis_server.url == url
    assert client.ping()
    assert client.get("k") is None  # no persistence: a restart starts empty
    client.close()


def test_redis_start_failure_shows_the_log(tmp_path: Path, redis_server: RedisServer) -> None:
    # A second server on a port that is taken cannot start; the error says why.
    clash = RedisServer(tmp_path / "clash", port=redis_server.port)
    with pytest.raises(RuntimeError, match=r"(?s)did not start.*Address already in use"):
        clash.start()
    assert not clash.running


# -- S3 --------------------------------------------------------------------------


def test_s3_put_get_presigned_and_range(s3_server: S3Server) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="movies")
    body = bytes(range(256)) * 4
    s3.put_object(Bucket="movies", Key="a/movie.mp4", Body=body, ContentType="video/mp4")
    assert s3.get_object(Bucket="movies", Key="a/movie.mp4")["Body"].read() == body

    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "movies", "Key": "a/movie.mp4"}, ExpiresIn=60
    )
    assert url.startswith(s3_server.endpoint_url)
    assert "X-Amz-Signature=" in url  # SigV4, not the SigV2 default
    with NO_PROXY.open(url, timeout=5) as response:
        assert response.status == 200
        assert response.read() == body

    ranged = urllib.request.Request(url, headers={"Range": "bytes=10-19"})
    with NO_PROXY.open(ranged, timeout=5) as response:
        assert response.status == 206
        assert response.read() == body[10:20]


def test_s3_env_for_subprocesses(s3_server: S3Server) -> None:
    env = s3_server.env()
    assert env["AWS_ENDPOINT_URL"] == s3_server.endpoint_url
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"} <= env.keys()


def test_s3_stop_and_restart_on_the_same_port(s3_server: S3Server) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="movies")
    s3_server.stop()
    s3_server.stop()  # idempotent
    with pytest.raises(EndpointConnectionError):
        s3_server.client(retries={"max_attempts": 1}).list_buckets()
    s3_server.start()
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == ["movies"]  # moto's store lives in this process


# -- Xvfb ------------------------------------------------------------------------


# Tk keeps its X connection after destroy(); once this test's Xvfb is gone, the next Tk
# in the same process would die of an X I/O error. So the window lives in a child process.
TK_WINDOW = """
import sys, time, tkinter
root = tkinter.Tk(screenName=sys.argv[1])
root.geometry("200x100+0+0")
root.configure(background="#ff0000")
deadline = time.monotonic() + 5
while not root.winfo_viewable() and time.monotonic() < deadline:
    root.update()
    time.sleep(0.02)
root.update()
print("shown", flush=True)
sys.stdin.readline()
root.destroy()
"""


def test_tk_window_shows_up_in_a_screenshot(xvfb_display: XvfbDisplay, tmp_path: Path) -> None:
    import sys

    child = subprocess.Popen([sys.executable, "-c", TK_WINDOW, xvfb_display.display],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "shown"
        time.sleep(0.2)
        shot = xvfb_display.screenshot(tmp_path / "screen.png")
    finally:
        child.communicate("\n", timeout=10)
    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert image.size == (1280, 800)
        rgb = image.convert("RGB")
        assert rgb.getpixel((100, 50)) == (255, 0, 0)
        assert rgb.getpixel((600, 400)) != (255, 0, 0)


def test_xvfb_answers_one_short_lived_client_after_another(xvfb_display: XvfbDisplay) -> None:
    """What mpv does while it probes its video outputs, and a test polling with xdotool:
    open the display, close it, open it again, as its only client. An X server that resets
    when its last client goes refuses some of these (mpv then showed no window)."""
    xdpyinfo = require_binary("xdpyinfo")
    script = f'for i in $(seq 150); do {xdpyinfo} >/dev/null || {{ echo "refused at $i"; exit 1; }}'
    script += "; done"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120,
                          env={"DISPLAY": xvfb_display.display, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr


def test_xvfb_stop_is_idempotent_and_frees_the_display(tmp_path: Path) -> None:
    display = XvfbDisplay(tmp_path)
    with display:
        assert display.env() == {"DISPLAY": display.display}
        number = display.number
    display.stop()
    assert not display.running
    assert not Path(f"/tmp/.X{number}-lock").exists()


# -- sshd ------------------------------------------------------------------------


def _ssh(
    server: SshServer, *command: str, key: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*server.ssh_command(key), *command], capture_output=True, text=True, timeout=20
    )


def test_ssh_runs_a_command(ssh_server: SshServer) -> None:
    result = _ssh(ssh_server, "echo", "hello")
    assert result.returncode == 0, result.stderr + ssh_server.log_tail()
    assert result.stdout == "hello\n"


def test_rsync_over_ssh_copies_a_folder(ssh_server: SshServer, tmp_path: Path) -> None:
    rsync = require_binary("rsync")
    source = tmp_path / "pkg"
    (source / "frames").mkdir(parents=True)
    (source / "frames" / "0001.jpg").write_bytes(b"\xff\xd8frame")
    (source / "manifest.json").write_text("{}")
    target = tmp_path / "inbox"
    result = subprocess.run(
        [
            rsync,
            "-a",
            "-e",
            ssh_server.rsync_rsh(),
            str(source),
            f"{ssh_server.destination}:{target}/",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr + ssh_server.log_tail()
    assert (target / "pkg" / "frames" / "0001.jpg").read_bytes() == b"\xff\xd8frame"
    assert (target / "pkg" / "manifest.json").read_text() == "{}"


def test_authorized_key_with_a_forced_command(ssh_server: SshServer, tmp_path: Path) -> None:
    key = tmp_path / "restricted"
    public = generate_keypair(key, "restricted")
    ssh_server.authorize(f'command="echo forced",restrict {public}')
    result = _ssh(ssh_server, "echo", "ignored", key=key)
    assert result.returncode == 0, result.stderr + ssh_server.log_tail()
    assert result.stdout == "forced\n"


def test_unknown_key_is_refused(ssh_server: SshServer, tmp_path: Path) -> None:
    key = tmp_path / "stranger"
    generate_keypair(key, "stranger")
    result = _ssh(ssh_server, "true", key=key)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_sshd_stop_and_start_on_the_same_port(ssh_server: SshServer) -> None:
    port = ssh_server.port
    ssh_server.stop()
    ssh_server.stop()  # idempotent
    refused = _ssh(ssh_server, "true")
    assert refused.returncode == 255
    assert "refused" in refused.stderr
    ssh_server.start()
    assert ssh_server.port == port
    assert _ssh(ssh_server, "echo", "back").stdout == "back\n"
