"""A real browser (headless Chromium) finds a movie by its code and plays it."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.services import chromium_page
from tests.website.conftest import StoreBuilder, make_record
from website.app import create_app

pytestmark = pytest.mark.slow  # real Chromium

@pytest.fixture
def site(store: StoreBuilder) -> Iterator[str]:
    for n, title in enumerate(["The cat who flew", "הסרט של נועה", "فيلم نور", "Robots"]):
        store.add(make_record(n, title=title))
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(), "REDIS": None})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("STOPMO_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize(("name", "viewport"), [("phone", {"width": 390, "height": 844}),
                                                ("desktop", {"width": 1280, "height": 800})])
def test_find_by_code_and_play(site: str, store: StoreBuilder, tmp_path: Path, name: str,
                               viewport: dict[str, int]) -> None:
    wanted = store.records[1]  # the Hebrew title
    problems: list[str] = []
    with chromium_page(viewport, name == "phone", problems) as page:
        page.goto(site + "/")
        assert page.locator(".card").count() == 4
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
        page.screenshot(path=str(shots_dir(tmp_path) / f"movie-{name}.png"), full_page=True)
        assert problems == [], problems  # no CSP violations, no script errors, no 404s
        page.goto(site + "/m/ZZZZZZ")
        assert "No movie has the code ZZZZZZ" in page.content()
