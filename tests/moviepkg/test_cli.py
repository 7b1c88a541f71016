"""`python -m moviepkg validate` (and `python -m tests.demo`), run as real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.services import require_binary

ROOT = Path(__file__).resolve().parents[2]


def moviepkg(*args: str) -> subprocess.CompletedProcess[str]:
    if args and args[0] == "make-demo":  # the demo maker lives with the tests, not the contract
        return subprocess.run([sys.executable, "-m", "tests.demo", *args[1:]],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
    return subprocess.run([sys.executable, "-m", "moviepkg", *args], capture_output=True,
                          text=True, timeout=60)


def test_make_demo_then_validate(tmp_path: Path) -> None:
    made = moviepkg("make-demo", str(tmp_path), "--frames", "12", "--nopublish")
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.strip())
    assert path.parent == tmp_path and (path / "NOPUBLISH").exists()
    checked = moviepkg("validate", str(path))
    assert checked.returncode == 0
    assert checked.stdout.startswith(f"valid: {path.name}")
    assert "12 frames" in checked.stdout and "NOPUBLISH" in checked.stdout


def test_invalid_package_exits_5_with_one_line(tmp_path: Path) -> None:
    path = Path(moviepkg("make-demo", str(tmp_path), "--frames", "3").stdout.strip())
    (path / "0001.jpg").unlink()
    checked = moviepkg("validate", str(path))
    assert checked.returncode == 5
    assert checked.stdout == "invalid: 0002.jpg: expected frame 0001.jpg before it, " \
                             "found a gap at 0001.jpg\n"


def test_limits_on_the_command_line(tmp_path: Path) -> None:
    path = Path(moviepkg("make-demo", str(tmp_path), "--frames", "3").stdout.strip())
    checked = moviepkg("validate", str(path), "--max-frames", "2")
    assert checked.returncode == 5 and "at most 2" in checked.stdout


def test_demo_frames_make_a_movie_with_real_ffmpeg(tmp_path: Path) -> None:
    ffprobe = require_binary("ffprobe")
    path = Path(moviepkg("make-demo", str(tmp_path), "--frames", "15").stdout.strip())
    probe = subprocess.run(
        [ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames,width,height", "-of", "csv=p=0", "-f", "image2",
         "-framerate", "10", str(path / "%04d.jpg")],
        capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "640,480,15"


def test_bad_size_is_a_clear_error(tmp_path: Path) -> None:
    made = moviepkg("make-demo", str(tmp_path), "--size", "big")
    assert made.returncode == 1 and "error:" in made.stderr
