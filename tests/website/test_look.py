"""The festival's look: its name and logo, station names, posters with a play mark and the
length, a styled not-found page, the privacy note."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from tests.website.conftest import StoreBuilder, make_record
from tests.website.test_app import client_for
from website.app import create_app, settings_from_env

LOOK = {"FESTIVAL_NAME": "Jerusalem Film Festival",
        "FESTIVAL_LOGO_URL": "https://cdn.example.test/festival/logo.png",
        "STATION_NAMES": '{"st-1": "Dragon table", "st-2": "שולחן הדרקון"}'}


def test_the_festival_and_its_stations_by_name(store: StoreBuilder) -> None:
    """The header shows the festival's name and logo; cards name the stations."""
    for n, station in enumerate(("st-1", "st-2", "st-12", "hall-b")):
        store.add(make_record(n, station=station))
    client = client_for(store, **LOOK)
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert '<img class="logo" src="https://cdn.example.test/festival/logo.png"' in page
    assert '<span dir="auto">Jerusalem Film Festival</span></a>' in page
    assert "<title>Movies · Jerusalem Film Festival</title>" in page
    assert "img-src 'self' https://cdn.example.test data:" in response.headers[
        "Content-Security-Policy"]
    stations = re.findall(r'<span class="meta"><span dir="auto">([^<]+)</span>', page)
    assert stations == ["Hall b", "Station 12", "שולחן הדרקון", "Dragon table"]
    assert "st-1" not in re.sub(r'(href|src)="[^"]*"', "", page)  # ids only in addresses
    api = client.get("/api/movies").get_json()["movies"]
    assert [(m["station"], m["station_name"]) for m in api][-1] == ("st-1", "Dragon table")


def test_defaults_and_every_bad_setting_at_once(store: StoreBuilder,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults without settings; every bad setting in one error; the env names."""
    store.add(make_record(1))
    page = client_for(store).get("/").get_data(as_text=True)
    assert '<span dir="auto">stopmo</span>' in page and 'class="logo"' not in page
    assert '<span dir="auto">Station 1</span> ·' in page
    bad = {"STATION_NAMES": '{"St 1": ""}', "SITE_URL": "https://movies.example.org/path",
           "MOVIE_SIZE": "big", "FESTIVAL_LOGO_URL": "javascript:alert(1)"}
    with pytest.raises(ValueError) as error:
        create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(), "REDIS": None, **bad})
    for variable in ("STATION_NAMES", "SITE_URL", "STOPMO_OUTPUT_SIZE", "FESTIVAL_LOGO_URL"):
        assert f"{variable}: " in str(error.value)
    for variable, value in (("STOPMO_FESTIVAL_NAME", "JFF"), ("STATION_NAMES", "{}"),
                            ("FESTIVAL_LOGO_URL", "/static/favicon.svg"),
                            ("STOPMO_OUTPUT_SIZE", "1920x1080"), ("SITE_URL", "https://x.org")):
        monkeypatch.setenv(variable, value)
    read = settings_from_env()
    assert (read["FESTIVAL_NAME"], read["MOVIE_SIZE"], read["SITE_URL"]) == (
        "JFF", "1920x1080", "https://x.org")


def test_posters_show_a_play_mark_and_the_length(store: StoreBuilder) -> None:
    """Each gallery poster carries a play mark and the movie's length."""
    store.add(make_record(1))
    store.add(replace(make_record(2), duration_s=125.4))
    page = client_for(store).get("/").get_data(as_text=True)
    assert page.count('<span class="play" aria-hidden="true"></span>') == 2
    lengths = r'<time class="length" datetime="(PT\d+S)" aria-label="([^"]+)">([^<]+)</time>'
    assert re.findall(lengths, page) == [("PT125S", "2 minutes and 5 seconds", "2:05"),
                                         ("PT3S", "3 seconds", "0:03")]


def test_a_styled_not_found_and_the_privacy_note(store: StoreBuilder) -> None:
    """Not found in the site's look; the privacy note, linked everywhere; no cookie unless a
    language is chosen (test_languages.py), as the note says."""
    store.add(make_record(1))
    client = client_for(store, **LOOK)
    missing = client.get("/no/such/page")
    text = missing.get_data(as_text=True)
    assert missing.status_code == 404 and "Nothing here" in text
    assert 'class="lost"' in text and "Jerusalem Film Festival" in text  # the site's own look
    privacy = client.get("/privacy").get_data(as_text=True)
    assert "ask at the festival desk with the movie's code" in privacy
    assert "Remove it from the website" in privacy  # with the family's own link
    assert "shown only on the big screen in the hall" in privacy  # NOPUBLISH movies
    assert "only when you choose a language" in privacy  # the one cookie
    for path in ("/", "/privacy", f"/movies/{store.records[0].id}", "/no/such/page"):
        answer = client.get(path)
        assert 'href="/privacy"' in answer.get_data(as_text=True), path
        assert "Set-Cookie" not in answer.headers, path  # only the language switch sets one
