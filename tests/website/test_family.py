"""A family's whole journey on a phone, in a real browser: the QR code's link before the
movie is online, the movie arriving, naming it, sharing it, removing it; screenshots, and
axe-core finds no serious or critical accessibility problem on any page on the way."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from moviepkg.owner import key_hash, new_owner_key
from tests.services import chromium_page
from tests.website.conftest import StoreBuilder, make_record
from tests.website.test_browser import LOOK, PHONE, serve, shots_dir
from website.app import create_app

pytestmark = pytest.mark.slow  # real Chromium
SERIOUS = ("serious", "critical")


def accessibility_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{[n['target'] for n in v['nodes']][:3]}" for v in found if v["impact"] in SERIOUS]


NAMES = {"en": "Dragon picnic", "he": "הפיקניק של הדרקון", "ar": "نزهة التنين"}


@pytest.mark.parametrize("language", ["en", "he", "ar"])
def test_a_family_finds_names_shares_and_removes_their_movie(
        store: StoreBuilder, tmp_path: Path, language: str) -> None:
    """The phone asks for its language (Accept-Language), as a parent's phone does."""
    title = NAMES[language]
    store.add(make_record(1, title="Robots"))
    key = new_owner_key()
    movie = replace(make_record(2), title=None, owner_key_sha256=key_hash(key), width=320,
                    height=180)
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(), "REDIS": None,
                      "CACHE_SECONDS": 1, "POLL_FIRST_SECONDS": 0.5, **LOOK})
    shots = shots_dir(tmp_path)
    problems: list[str] = []
    axe: dict[str, list[str]] = {}

    def look(name: str) -> None:
        page.screenshot(path=str(shots / f"family-{name}-{language}.png"), full_page=True)
        axe[name] = accessibility_problems(page)

    with serve(app) as site, chromium_page(PHONE, True, problems) as page:
        page.set_extra_http_headers({"Accept-Language": f"{language},en;q=0.5"})
        # The QR code's link, scanned before the movie is online.
        page.goto(f"{site}/m/{movie.code}#k={key}")
        page.locator("#waiting").wait_for()
        assert "#k=" not in page.url  # a shared "being made" address never carries the key
        assert page.get_attribute("html", "lang") == language
        assert page.get_attribute("html", "dir") == ("ltr" if language == "en" else "rtl")
        look("being-made")
        store.add(movie)  # the processor publishes it
        page.wait_for_url(f"**/movies/{movie.id}", timeout=15000)
        page.locator("#owner").wait_for(state="visible")
        assert "#k=" not in page.url  # the key left the address (kept on this phone only)
        assert page.evaluate(f"localStorage.getItem('stopmo-owner-{movie.id}')") == key
        assert page.locator("button.share").is_visible()
        page.wait_for_function("document.getElementById('player').readyState >= 2",
                               timeout=15000)
        look("movie")

        # Naming it: shown at once, and to everyone.
        page.fill("#owner-title", title)
        page.click("form.owner-name button")
        page.locator("[data-say=saved]").wait_for(state="visible")
        assert page.locator("h1").inner_text() == title
        look("named")
        page.goto(f"{site}/movies/{movie.id}")  # back later on the same phone: still theirs
        assert page.locator("h1").inner_text() == title
        assert page.locator("#owner").is_visible()
        page.goto(f"{site}/")
        assert page.locator(".card .title", has_text=title).count() == 1
        look("gallery")

        # Removing it: gone from the page at once, and for good.
        page.goto(f"{site}/movies/{movie.id}")
        page.click("button.remove")
        page.locator(".owner-confirm").wait_for(state="visible")
        look("remove-confirm")
        page.click("button.remove-yes")
        page.locator("[data-say=removed]").wait_for(state="visible")
        assert page.locator("#player").is_hidden()
        look("removed")
        assert page.evaluate(f"localStorage.getItem('stopmo-owner-{movie.id}')") is None
        assert problems == [], problems  # no CSP violation, script error or missing file so far
        answer = page.goto(f"{site}/movies/{movie.id}")
        assert answer is not None and answer.status == 404
        problems.clear()  # that 404 was the point
        page.goto(f"{site}/")
        assert page.locator(".card").count() == 1

        # A phone without the key never sees the panel.
        other = page.context.browser.new_page()  # type: ignore[union-attr]
        other.goto(f"{site}/movies/{store.records[0].id}")
        assert other.locator("#owner").is_hidden()
    assert problems == [], problems
    assert axe == {name: [] for name in axe}, axe
