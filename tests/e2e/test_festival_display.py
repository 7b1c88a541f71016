"""The local festival with a display: the Tk kiosk and an mpv window, driven by keys."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.festival import Festival
from tests.services import XvfbDisplay, require_binary, wait_until

pytestmark = pytest.mark.slow  # the whole festival, every program real

ARTIFACTS = Path(os.environ.get("STOPMO_SCREENSHOTS", "/tmp/stopmo-festival-screens"))


def windows(display: XvfbDisplay, *search: str) -> list[str]:
    done = subprocess.run([require_binary("xdotool"), "search", *search], capture_output=True,
                          text=True, env={"DISPLAY": display.display}, check=False)
    return done.stdout.split()


def test_a_child_shoots_a_movie_with_keys_and_it_reaches_screen_and_website(
        tmp_path: Path, xvfb_display: XvfbDisplay) -> None:
    xdotool = require_binary("xdotool")
    with Festival(tmp_path / "var", frames=8, display=xvfb_display.display) as festival:
        # The scripted movie first (then the kiosk starts), as without a display.
        wait_until(lambda: festival.website_ids(strict=False), timeout=60, interval=0.2,
                   message="the scripted movie on the website")
        first = set(festival.website_ids())
        wait_until(lambda: windows(xvfb_display, "--class", "mpv"), timeout=60,
                   message="mpv's window")
        wait_until(lambda: windows(xvfb_display, "--class", "Tk"), timeout=30,
                   message="the kiosk's window")
        [kiosk] = windows(xvfb_display, "--class", "Tk")

        def key(name: str, wait: float = 0.5) -> None:
            subprocess.run([xdotool, "windowfocus", "--sync", kiosk, "key", name], check=True,
                           timeout=10, env={"DISPLAY": xvfb_display.display})
            time.sleep(wait)

        key("space", 1.0)  # attract -> shooting
        for _ in range(4):
            key("space", 0.7)  # four frames
        key("Return")  # finish
        key("1", 1.0)  # publish
        sent = festival.var / "station" / "sent"
        wait_until(lambda: len(list(sent.iterdir())) == 2, timeout=60, interval=0.2,
                   message="the kiosk's movie delivered")
        [package_id] = {p.name for p in sent.iterdir()} - first
        festival.wait_in_playlist(package_id)
        festival.wait_on_website(package_id)
        manifest = json.loads((sent / package_id / "MANIFEST").read_text())
        assert len(manifest["frames"]) == 4
        # mpv's window takes the bottom-right quarter (`--geometry=50%x50%-0-0`).
        [screen] = windows(xvfb_display, "--class", "mpv")[-1:]
        subprocess.run([xdotool, "windowraise", screen], check=True, timeout=10,
                       env={"DISPLAY": xvfb_display.display})
        geometry = subprocess.run([xdotool, "getwindowgeometry", screen], capture_output=True,
                                  text=True, check=True, env={"DISPLAY": xvfb_display.display})
        assert "Geometry: 640x400" in geometry.stdout, geometry.stdout
        time.sleep(0.5)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        xvfb_display.screenshot(ARTIFACTS / "festival-display.png")
