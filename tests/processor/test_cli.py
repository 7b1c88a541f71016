"""`python -m processor process`: exit codes, messages, and the package left for a retry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.processor.conftest import add_package
from tests.services import S3Server, wait_until


def processor(*args: str, env: dict[str, str], stdin: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "processor", *args], env=env,
                          capture_output=True, text=True, timeout=120, input=stdin)


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STOPMO_", "AWS_", "STORAGE_URL"))}
    env.update(STOPMO_INBOX=str(tmp_path / "inbox"), STOPMO_WORK_DIR=str(tmp_path / "work"),
               STOPMO_OUTPUT_SIZE="640x360", STOPMO_NICE="0", **extra)
    return env


def test_process_publishes_to_the_default_folder_store(tmp_path: Path) -> None:
    package = add_package(tmp_path / "elsewhere", frames=5)
    done = processor("process", str(package), env=base_env(tmp_path))
    assert (done.returncode, done.stdout) == (0, "published\n"), done.stderr
    assert (tmp_path / "work" / "store" / "movies" / f"{package.name}.mp4").exists()
    status = processor("status", env=base_env(tmp_path))
    assert f"{package.name}  done  attempts=0" in status.stdout
    again = processor("process", str(tmp_path / "work" / "packages" / package.name),
                      env=base_env(tmp_path))
    assert again.returncode == 0 and again.stdout == "duplicate\n"
    same_command = processor("process", str(package), env=base_env(tmp_path))  # moved away
    assert (same_command.returncode, same_command.stdout) == (0, "duplicate\n")
    missing = processor("process", str(tmp_path / "no-such-package"), env=base_env(tmp_path))
    assert missing.returncode == 1 and "no such package" in missing.stderr
    assert not list((tmp_path / "work" / "quarantine").iterdir())


def test_a_second_daemon_is_refused(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "processor", "run"], env=env,
                             stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "work" / "daemon.lock"
        wait_until(lambda: (tmp_path / "work" / "control.sock").exists(), timeout=20,
                   message="first daemon up")
        second = processor("run", env=env)
        assert second.returncode == 4 and "another processor daemon is running" in second.stderr
        assert lock.exists()
    finally:
        first.terminate()
        first.wait(timeout=30)
        assert first.stderr is not None
        first.stderr.close()


def test_keep_copies_instead_of_moving(tmp_path: Path) -> None:
    package = add_package(tmp_path / "elsewhere", frames=3, publish=False)
    done = processor("process", "--keep", str(package), env=base_env(tmp_path))
    assert (done.returncode, done.stdout) == (0, "shown\n"), done.stderr
    assert package.exists()


def test_invalid_package_exits_5_and_is_quarantined(tmp_path: Path) -> None:
    package = add_package(tmp_path / "inbox", frames=3)
    (package / "0001.jpg").unlink()
    done = processor("process", str(package), env=base_env(tmp_path))
    assert (done.returncode, done.stdout) == (5, "quarantined\n")
    reason = (tmp_path / "work" / "quarantine" / package.name / "REASON").read_text()
    assert reason == "0002.jpg: expected frame 0001.jpg before it, found a gap at 0001.jpg\n"
    assert "gap at 0001.jpg" in done.stderr  # the log says why, too


def test_bad_settings_exit_3_with_key_and_message(tmp_path: Path) -> None:
    config = tmp_path / "processor.toml"
    config.write_text('[encode]\nthreads = "many"\n')
    done = processor("--config", str(config), "process", str(tmp_path),
                     env=base_env(tmp_path, STORAGE_URL="gopher://x"))
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        "STORAGE_URL: expected file:///absolute/path or s3://bucket/prefix, found 'gopher://x'",
        "encode.threads: expected an integer from 1 to 64, found 'many'"]


def test_store_down_exits_1_and_the_movie_waits_to_publish(tmp_path: Path,
                                                              s3_server: S3Server) -> None:
    s3_server.client().create_bucket(Bucket="festival")
    env = base_env(tmp_path, STORAGE_URL="s3://festival", **s3_server.env())
    package = add_package(tmp_path / "inbox", frames=3)
    s3_server.stop()
    try:
        done = processor("process", str(package), env=env)
    finally:
        s3_server.start()
    assert done.returncode == 1 and done.stdout == "waiting\n", done.stderr  # on screen
    assert (tmp_path / "work" / "packages" / package.name / "MANIFEST").exists()
    again = processor("process", str(package), env=env)  # same command once S3 is back
    assert (again.returncode, again.stdout) == (0, "published\n"), again.stderr
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket="festival")["Contents"]]
    assert f"movies/{package.name}.mp4" in keys
