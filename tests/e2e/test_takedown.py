"""A movie's story and its take-down, over the local festival with every program real.

A movie shot at the scripted station reaches the website; the console's story page tells
its way, station to store, in order; then an operator takes it down from the console (a
parent's request) and it is gone from the site (gallery, code lookup, API, video), from
the store and its index, and the audit log and `processor status` say who did it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from moviepkg.ids import movie_code
from tests.festival import ROOT, ConsoleClient, Festival
from tests.listing import listed_ids
from tests.services import chromium_page, wait_until

pytestmark = pytest.mark.slow  # the whole festival, every program real

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# The order a published movie's events happen in (moviepkg.telemetry.EVENTS).
WAY = ["shot_started", "shot_finished", "delivered", "received", "validated", "encoded",
       "on_screen", "published"]


def shots_dir() -> Path:
    """Where the screenshots go (STOPMO_SCREENSHOTS, or /tmp/stopmo-ops-screens)."""
    folder = Path(os.environ.get("STOPMO_SCREENSHOTS", "/tmp/stopmo-ops-screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def status_of(url: str) -> int:
    """The HTTP status a GET of url answers (no proxy, no redirects followed for errors)."""
    try:
        with NO_PROXY.open(urllib.request.Request(url, headers={"Range": "bytes=0-7"}),
                           timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def story(console: ConsoleClient, key: str) -> dict[str, Any] | None:
    """The console's story of a movie as JSON, or None while it knows nothing of it."""
    try:
        doc: dict[str, Any] = json.loads(console.get(f"/api/movies/{key}"))
    except urllib.error.HTTPError:
        return None
    return doc


def processor_status(festival: Festival) -> dict[str, Any]:
    """`processor status --json` on the festival's processing unit."""
    done = subprocess.run([sys.executable, "-m", "processor", "--config",
                           str(festival.var / "processor.toml"), "status", "--json"],
                          cwd=ROOT, env=festival.env, capture_output=True, text=True,
                          timeout=60, check=True)
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def take_down_and_check(festival: Festival, package_id: str, video_url: str
                        ) -> tuple[ConsoleClient, float]:
    """Take the movie down from the console; wait until the site forgets it; return when."""
    code = movie_code(package_id)
    console = festival.console()
    asked = time.monotonic()
    console.post("/take-down", movie=code)
    site = festival.url

    def gone() -> bool:
        return (package_id not in festival.website_ids(strict=False)
                and status_of(f"{site}/api/movies/{package_id}") == 404
                and (festival.get_json(f"/api/code/{code}") or {}).get("status") == "waiting"
                and status_of(f"{site}/movies/{package_id}") == 404)

    # The site's cache lives 5 s in the festival (CACHE_SECONDS): gone within that, plus the
    # command's way over the broker and the store's work.
    wait_until(gone, timeout=30, interval=0.2, message=f"{package_id} gone from the website")
    seconds = time.monotonic() - asked
    print(f"take-down: gone from the website after {seconds:.1f} s")
    assert status_of(video_url) in (403, 404), "the video is still served"
    page = console.get("/devices/processor")  # the festival's processing unit
    assert "take-down" in page and code in page and "done" in page, "not in the audit log"
    taken = [movie for movie in processor_status(festival).get("taken_down", [])
             if movie.get("package_id") == package_id]
    assert taken and taken[0].get("by") == "operator", processor_status(festival)
    return console, seconds


def test_a_movies_story_and_its_take_down_over_the_festival(tmp_path: Path) -> None:
    with Festival(tmp_path / "var", frames=8) as festival:
        wait_until(lambda: festival.website_ids(strict=False), timeout=90, interval=0.3,
                   message="the scripted movie on the website")
        [package_id] = festival.website_ids()
        code = movie_code(package_id)
        console = festival.console()
        def in_order() -> bool:
            """Every step, in order. "delivered" is the station hearing the receiver's
            answer, while the processor already takes the package the moment the receiver
            renames it into the inbox: it comes after the shot, anywhere among the
            processor's first steps."""
            kinds = [line["kind"] for line in (story(console, code) or {}).get(
                "timeline", []) if line["kind"] in WAY]
            rest = [kind for kind in kinds if kind != "delivered"]
            return sorted(kinds) == sorted(WAY) and rest == [k for k in WAY if k != "delivered"] \
                and kinds.index("delivered") > kinds.index("shot_finished")

        wait_until(in_order, timeout=30, interval=0.5,
                   message=f"every step of {package_id} in the console's story, in order")
        told = story(console, code)
        assert told is not None and told["package_id"] == package_id
        steps = {step["step"]: step["seconds"] for step in told["steps"]}
        assert {"deliver", "receive", "validate", "encode", "to_screen", "publish"} <= set(
            steps), told["steps"]
        assert all(0 <= seconds < 120 for seconds in steps.values()), steps  # plausible
        problems: list[str] = []
        password = (festival.var / "ops" / "operator.password").read_text().strip()
        with chromium_page({"width": 1280, "height": 900}, False, problems) as page:
            page.goto(console.url + f"/movies/{code}")
            page.fill("#user", "operator")
            page.fill("#password", password)
            page.click("form.login button")
            page.wait_for_url(f"**/movies/{code}")
            text = page.locator("main").inner_text()
            assert package_id in text and "Published on the website" in text
            page.screenshot(path=str(shots_dir() / "festival-story.png"), full_page=True)
        assert problems == [], problems

        video = festival.get_json(f"/api/movies/{package_id}")["video_url"]
        video = video if video.startswith("http") else festival.url + video
        assert status_of(video) in (200, 206)
        take_down_and_check(festival, package_id, video)
        movies = festival.store / "movies"
        assert not list(movies.glob(f"{package_id}*")), list(movies.glob(f"{package_id}*"))
        assert package_id not in listed_ids(festival.store)
        wait_until(lambda: "taken_down" in [line["kind"] for line in (story(
            console, code) or {}).get("timeline", [])], timeout=15, interval=0.5,
            message="the take-down in the movie's story")
