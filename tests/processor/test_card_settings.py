"""The title card's settings: the festival's language, the public site, station names."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor import config
from processor.config import load_settings
from processor.errors import ConfigError


@pytest.fixture(autouse=True)
def no_system_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never read /etc/stopmo/processor.toml of the machine running the tests."""
    monkeypatch.setattr(config, "DEFAULT_CONFIG", tmp_path / "absent.toml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "processor.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_hebrew_no_site_no_names() -> None:
    settings = load_settings(None, environ={})
    assert (settings.language, settings.public_url, settings.station_names) == ("he", "", ())
    assert settings.station_name("st-1") == ""


def test_the_title_table_from_toml(tmp_path: Path) -> None:
    path = write(tmp_path, '[title]\nlanguage = "ar"\npublic_url = "https://movies.example.org/"\n'
                           '[title.stations]\nst-1 = "Dragon table"\n"st-12" = " שולחן הדרקון "\n')
    settings = load_settings(path, environ={})
    assert settings.language == "ar"
    assert settings.public_url == "https://movies.example.org"  # the page adds /m/CODE
    assert settings.station_name("st-1") == "Dragon table"
    assert settings.station_name("st-12") == "שולחן הדרקון"
    assert settings.station_name("st-2") == ""


def test_the_environment_wins(tmp_path: Path) -> None:
    path = write(tmp_path, '[title]\nlanguage = "ar"\npublic_url = "http://10.0.0.100:8000"\n')
    settings = load_settings(path, environ={"STOPMO_LANGUAGE": "en",
                                            "STOPMO_PUBLIC_URL": "https://movies.example.org"})
    assert (settings.language, settings.public_url) == ("en", "https://movies.example.org")


def test_every_problem_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[title]\nlanguage = "fr"\npublic_url = "movies.example.org"\n'
                           '[title.stations]\n"ST 1" = "Dragon"\nst-2 = ""\nst-3 = 7\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert info.value.problems == [
        "title.language: expected one of he, ar, en, found 'fr'",
        "title.public_url: expected the website's http(s) address like "
        "https://movies.example.org, found 'movies.example.org'",
        "title.stations: 'ST 1': expected a station id like st-1; st-2: expected a name of "
        "1 to 80 characters, found ''; st-3: expected a name of 1 to 80 characters, found 7",
    ]


def test_stations_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"title\.stations: expected a table"):
        load_settings(write(tmp_path, '[title]\nstations = "st-1=Dragon"\n'), environ={})
