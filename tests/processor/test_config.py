"""Processor settings: defaults, TOML, environment, and every error at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor import config
from processor.config import Settings, load_settings
from processor.errors import ConfigError


@pytest.fixture(autouse=True)
def no_system_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never read /etc/stopmo/processor.toml of the machine running the tests."""
    monkeypatch.setattr(config, "DEFAULT_CONFIG", tmp_path / "absent.toml")


def test_defaults_without_file_or_environment() -> None:
    settings = load_settings(None, environ={})
    assert settings == Settings()
    assert settings.store_url == "file:///var/lib/stopmo/work/store"


def test_toml_then_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "processor.toml"
    config.write_text('[paths]\ninbox = "/srv/inbox"\nwork_dir = "/srv/work"\n'
                      '[encode]\nthreads = 4\nsize = "1920x1080"\n'
                      '[title]\nfestival_name = "Jerusalem Film Festival"\n')
    settings = load_settings(config, environ={"STOPMO_FFMPEG_THREADS": "1",
                                              "STORAGE_URL": "s3://movies/fest-2026"})
    assert settings.inbox == Path("/srv/inbox")
    assert settings.threads == 1
    assert settings.size == (1920, 1080)
    assert settings.festival_name == "Jerusalem Film Festival"
    assert settings.store_url == "s3://movies/fest-2026"


def test_every_problem_is_reported_as_key_message(tmp_path: Path) -> None:
    config = tmp_path / "processor.toml"
    config.write_text('[paths]\ninbox = "relative/inbox"\n[encode]\nthreads = 0\n'
                      'size = "1281x720"\ncolour = "blue"\n[screen]\nkind = "tv"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={"STORAGE_URL": "ftp://x"})
    assert info.value.problems == [
        "encode.colour: unknown setting",
        "paths.inbox: expected an absolute path, found 'relative/inbox'",
        "STORAGE_URL: expected file:///absolute/path or s3://bucket/prefix, found 'ftp://x'",
        "encode.threads: expected an integer from 1 to 64, found 0",
        "encode.size: expected even sizes from 320x180 to 3840x2160, found '1281x720'",
        "screen.kind: expected one of none, fake, mpv, found 'tv'",
    ]


def test_unreadable_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[paths\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, environ={})


def test_fake_screen_gets_a_log_in_the_work_dir() -> None:
    settings = load_settings(None, environ={"STOPMO_SCREEN": "fake",
                                            "STOPMO_WORK_DIR": "/tmp/stopmo-work"})
    assert settings.screen_log == Path("/tmp/stopmo-work/screen.jsonl")


def test_bad_timezone() -> None:
    with pytest.raises(ConfigError, match="STOPMO_TIMEZONE: expected a time zone"):
        load_settings(None, environ={"STOPMO_TIMEZONE": "Mars/Olympus"})


def test_missing_logo_and_overlapping_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"title\.festival_logo: no such file"):
        load_settings(None, environ={"STOPMO_FESTIVAL_LOGO": str(tmp_path / "logo.png")})
    with pytest.raises(ConfigError, match=r"paths\.work_dir: expected a folder apart"):
        load_settings(None, environ={"STOPMO_INBOX": "/srv/stopmo",
                                     "STOPMO_WORK_DIR": "/srv/stopmo/work"})
