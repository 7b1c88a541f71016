"""A real browser (headless Chromium) finds a movie by its code and plays it; a code whose
movie is not online yet turns into the movie when it is published."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.services import chromium_page
from tests.website.conftest import StoreBuilder, make_record
from website.app import create_app

pytestmark = pytest.mark.slow  # real Chromium
PHONE = {"width": 390, "height": 844}
LOOK = {"FESTIVAL_NAME": "Stop-motion festival", "STATION_NAMES": {"st-1": "Dragon table"}}


@contextlib.contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Run app on a free loopback port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def site(store: StoreBuilder) -> Iterator[str]:
    """Four movies with titles in three scripts, served on loopback."""
    for n, title in enumerate(["The cat who flew", "הסרט של נועה", "فيلم نور", "Robots"]):
        store.add(make_record(n, title=title))
    with serve(create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(), "REDIS": None,
                           **LOOK})) as url:
        yield url


def shots_dir(tmp_path: Path) -> Path:
    """Where screenshots go: STOPMO_SCREENSHOTS, or the test's own folder."""
    folder = Path(os.environ.get("STOPMO_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize(("name", "viewport"), [("phone", PHONE),
                                                ("desktop", {"width": 1280, "height": 800})])
def test_find_by_code_and_play(site: str, store: StoreBuilder, tmp_path: Path, name: str,
                               viewport: dict[str, int]) -> None:
    wanted = store.records[1]  # the Hebrew title
    problems: list[str] = []
    with chromium_page(viewport, name == "phone", problems) as page:
        page.goto(site + "/")
        assert page.locator(".card").count() == 4
        assert page.locator(".card .play").count() == 4
        page.screenshot(path=str(shots_dir(tmp_path) / f"gallery-{name}.png"), full_page=True)
        page.fill("#code", wanted.code.lower())
        page.click("form.find button")
        page.wait_for_url(f"**/movies/{wanted.id}")
        assert page.locator("h1").inner_text() == "הסרט של נועה"
        page.wait_for_function("document.getElementById('player').readyState >= 2",
                               timeout=15000)
        duration = page.evaluate("document.getElementById('player').duration")
        assert abs(duration - 3.0) < 0.2
        assert page.locator(".video-error").is_hidden()
        assert page.locator("button.share").is_visible()  # shown by the script
        page.screenshot(path=str(shots_dir(tmp_path) / f"movie-{name}.png"), full_page=True)
        assert problems == [], problems  # no CSP violations, no script errors, no 404s
        page.goto(site + "/m/ZZZZ1Z")
        assert "That is not a movie code" in page.content()
        page.screenshot(path=str(shots_dir(tmp_path) / f"notfound-{name}.png"), full_page=True)


def test_being_made_turns_into_the_movie_when_it_is_published(
        store: StoreBuilder, tmp_path: Path) -> None:
    """At phone size the being-made page polls, then becomes the movie once published."""
    store.add(make_record(1, title="Robots"))
    coming = make_record(2, title="The cat who flew")  # shot, not online yet
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(), "REDIS": None,
                      "CACHE_SECONDS": 1, "POLL_FIRST_SECONDS": 0.5, **LOOK})
    polls: list[str] = []
    problems: list[str] = []
    with serve(app) as site, chromium_page(PHONE, True, problems) as page:
        def answered(route: Any) -> None:
            """Pass a poll on to the site, noting its answer."""
            response = route.fetch()
            polls.append(response.json()["status"])
            route.fulfill(response=response)

        page.route("**/api/code/*", answered)
        page.goto(f"{site}/m/{coming.code.lower()}")
        assert page.locator("h1").inner_text() == "Your movie is on its way"
        page.screenshot(path=str(shots_dir(tmp_path) / "being-made-phone.png"), full_page=True)
        for _ in range(50):  # it asks by itself, first after about POLL_FIRST_SECONDS
            if polls:
                break
            page.wait_for_timeout(100)
        assert polls == ["waiting"], polls
        store.add(coming)  # the processor publishes it
        page.wait_for_url(f"**/movies/{coming.id}", timeout=15000)
        assert polls[-1] == "ready"
        assert page.locator("h1").inner_text() == "The cat who flew"
        page.wait_for_function("document.getElementById('player').readyState >= 2",
                               timeout=15000)
        page.click("button.share")  # no share sheet here: the link is copied, or shown
        page.locator(".copied:visible, .copy-link:visible").wait_for(timeout=5000)
        page.screenshot(path=str(shots_dir(tmp_path) / "being-made-arrived-phone.png"),
                        full_page=True)
        page.go_back()  # the waiting page was replaced: back leaves, it does not loop
        assert f"/m/{coming.code.lower()}" not in page.url
    assert problems == [], problems
