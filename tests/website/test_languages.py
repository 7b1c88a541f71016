"""Three languages: English, Hebrew and Arabic (right to left), chosen by the browser or the
switch, which a cookie remembers; dates in each language in the festival's time zone; the
catalogs complete, compiled and extracted from the sources as they are now."""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from tests.services import chromium_page
from tests.website.conftest import StoreBuilder, make_record
from tests.website.test_app import client_for
from tests.website.test_browser import PHONE, serve, shots_dir
from website.app import create_app, settings_from_env
from website.languages import COOKIE, COOKIE_SECONDS, LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "website" / "translations"
LATE = datetime(2026, 5, 1, 23, 30, tzinfo=UTC)  # 2 May, 02:30 in Jerusalem (UTC+3)
TITLES = ["The cat who flew", "הסרט של נועה", "فيلم نور"]


def html_tag(page: str) -> tuple[str, str]:
    """The page's <html lang> and dir."""
    found = re.search(r'<html lang="([^"]*)" dir="([^"]*)">', page)
    assert found is not None, page[:200]
    return found[1], found[2]


def switch_links(page: str) -> list[tuple[str, str, bool, str]]:
    """The header's language links: (href, lang, current?, name)."""
    nav = re.search(r'<nav class="languages"[^>]*>(.*?)</nav>', page, re.S)
    assert nav is not None
    return [(html.unescape(href), lang, bool(current), name)
            for href, lang, current, name in re.findall(
        r'<a href="([^"]*)" lang="([^"]*)" hreflang="[^"]*"( aria-current="true")?>([^<]*)</a>',
        nav[1])]


def test_the_browser_language_picks_the_page_language(store: StoreBuilder) -> None:
    """Accept-Language he: Hebrew, right to left; ar: Arabic; iw (old phones) is Hebrew."""
    store.add(make_record(1, station="st-3"))
    client = client_for(store)
    response = client.get("/", headers={"Accept-Language": "he-IL,he;q=0.9,en;q=0.8"})
    page = response.get_data(as_text=True)
    assert html_tag(page) == ("he", "rtl")
    assert "<h1>סרטים</h1>" in page and "למצוא את הסרט שלי" in page  # the words
    assert '<span dir="auto">עמדה 3</span>' in page  # a station without a name, in Hebrew
    assert response.headers["Content-Language"] == "he"
    assert {"Accept-Language", "Cookie"} <= set(response.vary)  # caches keep them apart
    for header, expected in (("ar-EG,ar;q=0.9", ("ar", "rtl")), ("iw-IL", ("he", "rtl")),
                             ("fr-FR,ar;q=0.5,he;q=0.4", ("ar", "rtl")),
                             ("en-US,en;q=0.9", ("en", "ltr"))):
        answer = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)
        assert html_tag(answer) == expected, header
    arabic = client.get("/", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    assert "<h1>الأفلام</h1>" in arabic and '<span dir="auto">محطة 3</span>' in arabic


def test_the_switch_sets_a_cookie_that_sticks(store: StoreBuilder) -> None:
    """?lang=ar sets the cookie for a year; the next page is Arabic without it, even when
    the browser asks for Hebrew; switching again replaces it; plain pages set nothing."""
    record = store.add(make_record(1))
    client = client_for(store)
    first = client.get("/?lang=ar", headers={"Accept-Language": "he"})
    assert html_tag(first.get_data(as_text=True)) == ("ar", "rtl")
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=ar;") and f"Max-Age={COOKIE_SECONDS}" in cookie
    assert "SameSite=Lax" in cookie and "Path=/" in cookie and "HttpOnly" not in cookie
    assert COOKIE_SECONDS == 365 * 24 * 3600
    later = client.get(f"/movies/{record.id}", headers={"Accept-Language": "he"})
    assert html_tag(later.get_data(as_text=True)) == ("ar", "rtl")
    assert "Set-Cookie" not in later.headers  # nothing new to remember
    again = client.get("/privacy?lang=ar")
    assert "Set-Cookie" not in again.headers  # the same choice again
    english = client.get("/privacy?lang=en")
    assert english.headers["Set-Cookie"].startswith(f"{COOKIE}=en;")
    assert html_tag(client.get("/", headers={"Accept-Language": "he"}).get_data(
        as_text=True)) == ("en", "ltr")


def test_the_switch_is_on_every_page_and_keeps_the_path(store: StoreBuilder) -> None:
    """Each language by its own name, with its lang; the current one marked; the same page
    (and its query) in the other language; never a link to another host."""
    record = store.add(make_record(1))
    store.add(make_record(2))
    client = client_for(store, PAGE_SIZE=1)
    movie = client.get(f"/movies/{record.id}", headers={"Accept-Language": "he"})
    assert switch_links(movie.get_data(as_text=True)) == [
        (f"/movies/{record.id}?lang=en", "en", False, "English"),
        (f"/movies/{record.id}?lang=he", "he", True, "עברית"),
        (f"/movies/{record.id}?lang=ar", "ar", False, "العربية")]
    gallery = client.get("/?page=2&lang=ar").get_data(as_text=True)
    assert [link[0] for link in switch_links(gallery)] == [
        "/?page=2&lang=en", "/?page=2&lang=he", "/?page=2&lang=ar"]
    assert [link[2] for link in switch_links(gallery)] == [False, False, True]
    waiting = f"/m/{make_record(9).code}"  # being made: a page, not a redirect
    for path in ("/privacy", waiting, "/m/ZZZZ1Z", "/no/such/page"):
        page = client.get(path).get_data(as_text=True)
        assert switch_links(page)[0][0] == f"{path}?lang=en", path
    # A path that looks like another host (the test client would take it for one).
    odd = client.get("/", environ_overrides={"PATH_INFO": "//elsewhere.example/x"})
    assert switch_links(odd.get_data(as_text=True))[0][0] == "/elsewhere.example/x?lang=en"


def test_dates_in_each_language_in_the_festivals_time_zone(store: StoreBuilder) -> None:
    """Made at 23:30 UTC on 1 May: 2 May, 02:30 in Jerusalem, in each language's words;
    the API's dates are ISO 8601 and the same for everyone."""
    record = store.add(replace(make_record(1), created_at=LATE))
    client = client_for(store)
    expected = {"en": "2 May 2026, 02:30", "he": "2 במאי 2026, 02:30",
                "ar": "2 مايو 2026، 02:30"}
    for language, date in expected.items():
        page = client.get(f"/movies/{record.id}?lang={language}").get_data(as_text=True)
        assert f"</span> · {date} ·" in page, language
        gallery = client.get(f"/?lang={language}").get_data(as_text=True)
        assert f"</span> · {date}</span>" in gallery, language
    utc = client_for(store, TIMEZONE="UTC").get("/?lang=he").get_data(as_text=True)
    assert "1 במאי 2026, 23:30" in utc  # the setting, not a fixed zone
    answers = [client.get(f"/api/movies/{record.id}", headers={"Accept-Language": language})
               for language in ("he", "ar", "en")]
    assert answers[0].get_json() == answers[1].get_json() == answers[2].get_json()
    facts = answers[0].get_json()
    assert facts["date"] == "2026-05-02T02:30:00+03:00"
    assert facts["created_at"] == "2026-05-01T23:30:00+00:00"
    assert facts["station_name"] == "Station 1" and facts["length_words"] == "3 seconds"
    assert "Accept-Language" not in answers[0].headers.get("Vary", "")


def test_titles_in_any_script_keep_dir_auto(store: StoreBuilder) -> None:
    """A title is laid out by its own script, whatever the page's language."""
    records = [store.add(make_record(n, title=title)) for n, title in enumerate(TITLES)]
    client = client_for(store)
    for language in LANGUAGES:
        gallery = client.get(f"/?lang={language}").get_data(as_text=True)
        for title in TITLES:
            assert f'<span class="title" dir="auto">{title}</span>' in gallery, (language, title)
        for record, title in zip(records, TITLES, strict=True):
            page = client.get(f"/movies/{record.id}?lang={language}").get_data(as_text=True)
            heading = f'<h1 dir="auto"[^>]*>{re.escape(title)}</h1>'
            assert re.search(heading, page), (language, title)


def test_an_unknown_language_falls_back(store: StoreBuilder,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """?lang=fr or a strange cookie: ignored; a browser asking for none of the three gets
    STOPMO_LANGUAGE, English by default; a bad STOPMO_LANGUAGE stops the start."""
    store.add(make_record(1))
    client = client_for(store)
    unknown = client.get("/?lang=fr", headers={"Accept-Language": "he"})
    assert html_tag(unknown.get_data(as_text=True)) == ("he", "rtl")
    assert "Set-Cookie" not in unknown.headers
    client.set_cookie(COOKIE, "xx")
    assert html_tag(client.get("/", headers={"Accept-Language": "ar"}).get_data(
        as_text=True)) == ("ar", "rtl")
    assert html_tag(client.get("/", headers={"Accept-Language": "fr, de"}).get_data(
        as_text=True)) == ("en", "ltr")
    assert html_tag(client.get("/").get_data(as_text=True)) == ("en", "ltr")
    hebrew_festival = client_for(store, LANGUAGE="he")
    assert html_tag(hebrew_festival.get("/", headers={"Accept-Language": "fr"}).get_data(
        as_text=True)) == ("he", "rtl")
    monkeypatch.setenv("STOPMO_LANGUAGE", "ar")
    assert settings_from_env()["LANGUAGE"] == "ar"
    with pytest.raises(ValueError, match=r"STOPMO_LANGUAGE: expected one of en, he, ar"):
        create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(), "REDIS": None,
                    "LANGUAGE": "fr"})


def test_lengths_titles_and_the_waiting_page_in_words(store: StoreBuilder) -> None:
    """Lengths said with each language's plurals; an untitled movie; "being made" in Arabic."""
    lengths = {2: "ثانيتان", 5: "5 ثوانٍ", 11: "11 ثانية", 62: "دقيقة واحدة وثانيتان",
               120: "دقيقتان"}
    for n, seconds in enumerate(lengths):
        store.add(replace(make_record(n), title=None, duration_s=float(seconds)))
    client = client_for(store, PAGE_SIZE=10)
    arabic = client.get("/?lang=ar").get_data(as_text=True)
    said = dict(re.findall(r'datetime="PT(\d+)S" aria-label="([^"]+)"', arabic))
    assert {int(key): value for key, value in said.items()} == lengths
    hebrew = client.get("/?lang=he").get_data(as_text=True)
    said = dict(re.findall(r'datetime="PT(\d+)S" aria-label="([^"]+)"', hebrew))
    assert (said["2"], said["62"]) == ("שתי שניות", "דקה אחת ו-שתי שניות")
    code = store.records[0].code
    assert f'<span class="title" dir="auto">סרט {code}</span>' in hebrew
    waiting = client.get(f"/m/{make_record(40).code}?lang=ar").get_data(as_text=True)
    assert html_tag(waiting) == ("ar", "rtl") and "<h1>فيلمكم في الطريق</h1>" in waiting
    assert "لن يضيع شيء" in waiting  # nothing is lost
    share = client.get(f"/movies/{store.records[0].id}?lang=he").get_data(as_text=True)
    assert 'data-text="סרט הסטופ-מושן שיצרנו ב-stopmo"' in share  # what the share sheet says


# The catalogs: every word translated, compiled, and extracted from today's sources.

def read_catalog(path: Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file)


def words(catalog: Catalog) -> set[object]:
    """The msgids (with their plurals) of a catalog, without its header."""
    return {message.id for message in catalog if message.id}


def texts(catalog: Catalog) -> dict[object, object]:
    """msgid -> msgstr of every message (plurals as tuples: a .mo reads them as lists)."""
    def frozen(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value
    return {frozen(message.id): frozen(message.string) for message in catalog}


def test_every_word_is_translated() -> None:
    """Each language's catalog has every msgid of the template, none fuzzy or empty."""
    template = read_catalog(TRANSLATIONS / "messages.pot")
    assert len(words(template)) > 40
    for language in LANGUAGES:
        catalog = read_catalog(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po")
        assert words(catalog) == words(template), f"{language}: run pybabel update"
        for message in catalog:
            if not message.id:
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert not message.fuzzy, (language, message.id)
            assert all(text.strip() for text in strings), (language, message.id)
            if message.pluralizable:
                assert len(strings) == catalog.num_plurals, (language, message.id)
            else:  # the same placeholders, so formatting never fails
                assert sorted(re.findall(r"%\(\w+\)[sd]", strings[0])) == sorted(
                    re.findall(r"%\(\w+\)[sd]", str(message.id))), (language, message.id)


def test_the_compiled_catalogs_are_the_po_files() -> None:
    """Each .mo holds what its .po compiles to (run pybabel compile after an edit)."""
    for language in LANGUAGES:
        folder = TRANSLATIONS / language / "LC_MESSAGES"
        compiled = io.BytesIO()
        write_mo(compiled, read_catalog(folder / "messages.po"))
        compiled.seek(0)
        fresh = read_mo(compiled)
        with (folder / "messages.mo").open("rb") as file:
            shipped = read_mo(file)
        assert texts(shipped) == texts(fresh), language
        assert shipped.plural_forms == fresh.plural_forms, language


def test_the_template_is_extracted_from_the_sources(tmp_path: Path) -> None:
    """messages.pot has exactly the words of the templates and Python now (the command of
    docs/website.md, "Languages")."""
    out = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "--quiet", "extract",
                    "-F", "website/babel.cfg", "-o", str(out), "--add-comments=Translators:",
                    "--project=stopmo", "--version=0.1.0", "website"],
                   cwd=ROOT, check=True, timeout=120)
    assert words(read_catalog(out)) == words(read_catalog(TRANSLATIONS / "messages.pot")), (
        "run pybabel extract and update (docs/website.md, \"Languages\")")


@pytest.mark.slow  # real Chromium
def test_each_language_on_a_phone(store: StoreBuilder, tmp_path: Path) -> None:
    """At phone size, the switch turns the gallery and a movie page into each language, and
    the choice sticks; right to left for Hebrew and Arabic, nothing off the screen."""
    for n, title in enumerate(TITLES):
        store.add(make_record(n, title=title, station=f"st-{n + 1}"))
    store.add(replace(make_record(3, title="Robots", station="st-2"), created_at=LATE))
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(), "REDIS": None,
                      "FESTIVAL_NAME": "Jerusalem Film Festival"})
    folder = shots_dir(tmp_path)
    problems: list[str] = []
    with serve(app) as site, chromium_page(PHONE, True, problems) as page:
        page.goto(site + "/")
        for language, title in zip(LANGUAGES, TITLES, strict=True):
            page.click(f'nav.languages a[lang="{language}"]')
            page.wait_for_url(re.compile(rf"/\?lang={language}$"))
            direction = "rtl" if language in ("he", "ar") else "ltr"
            assert page.evaluate("[document.documentElement.lang, document.dir]") == [
                language, direction]
            assert page.locator("nav.languages a[aria-current]").get_attribute(
                "lang") == language
            assert page.locator(".card").count() == 4
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            page.screenshot(path=str(folder / f"gallery-{language}.png"), full_page=True)
            page.click(f'.card a:has-text("{title}")')  # no ?lang= now: the cookie says
            page.wait_for_url(re.compile(r"/movies/[^?]+$"))
            page.wait_for_function("document.getElementById('player').readyState >= 2",
                                   timeout=15000)
            assert page.evaluate("document.dir") == direction
            assert page.locator("h1").inner_text() == title
            assert page.locator("button.share").is_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            page.screenshot(path=str(folder / f"movie-{language}.png"), full_page=True)
            page.goto(site + "/")  # the switch is there on the next page, too
    assert problems == [], problems
