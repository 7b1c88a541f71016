"""The title card as the hall sees it: frames of the encoded movie (real ffmpeg), read back
for the QR code of the movie's page, and compared with the card the settings ask for."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageChops

from moviepkg.ids import movie_code
from moviepkg.reader import read_package
from processor.pipeline import Outcome, Pipeline
from processor.titlecard import TitleCard, movie_page, render_title_card
from tests.processor.conftest import T0, add_package, with_settings

SITE = "https://movies.example.org"


@pytest.fixture
def hall(pipeline: Pipeline) -> Pipeline:
    """The pipeline with the hall's title card settings."""
    return with_settings(pipeline, public_url=SITE, language="en",
                         station_names=(("st-1", "Dragon table"),))


def encode(pipeline: Pipeline, entry: Path) -> Path:
    """Take the package in and run it to the screen; return its movie."""
    outcome, state = pipeline.receive(entry)
    assert outcome is None and state is not None
    assert pipeline.advance(state.package_id, publish=False) in (Outcome.WAITING,
                                                                  Outcome.SHOWN)
    return pipeline.movies_dir / f"{state.package_id}.mp4"


def frame_at(movie: Path, seconds: float) -> Image.Image:
    """Return the movie's picture at seconds."""
    done = subprocess.run(["ffmpeg", "-v", "error", "-ss", str(seconds), "-i", str(movie),
                           "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-"],
                          capture_output=True, check=True, timeout=60)
    out = movie.with_suffix(f".{seconds}.png")
    out.write_bytes(done.stdout)
    with Image.open(out) as picture:
        return picture.convert("RGB")


def codes(image: Image.Image) -> list[str]:
    """Return the text of every QR code found in image."""
    return [found.text for found in zxingcpp.read_barcodes(image)]


def unlike(a: Image.Image, b: Image.Image) -> float:
    """Return the share of pixels that differ clearly (more than H.264's loss) in a and b."""
    diff = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > 60 else 0)
    histogram = diff.histogram()
    return histogram[255] / (a.width * a.height)


def test_a_published_movie_opens_with_its_code_and_page_for_4_seconds(hall: Pipeline) -> None:
    entry = add_package(hall.settings.inbox, title="The Cat Who Ate the Moon")
    page = f"{SITE}/m/{movie_code(entry.name)}"
    movie = encode(hall, entry)
    for seconds in (0.0, 2.0, 3.8):
        assert codes(frame_at(movie, seconds)) == [page], seconds
    assert codes(frame_at(movie, 4.2)) == []  # the child's frames


def test_a_nopublish_movie_opens_without_code_or_qr(hall: Pipeline) -> None:
    entry = add_package(hall.settings.inbox, publish=False, title="The Cat Who Ate the Moon")
    movie = encode(hall, entry)
    frame = frame_at(movie, 1.0)
    assert codes(frame) == []
    expected = TitleCard("The Cat Who Ate the Moon", "st-1", T0, festival="Test Festival",
                         station_name="Dragon table", language="en")
    assert unlike(frame, render_title_card(expected, (640, 360))) < 0.002
    with_code = TitleCard("The Cat Who Ate the Moon", "st-1", T0, festival="Test Festival",
                          station_name="Dragon table", language="en",
                          code=movie_code(entry.name))
    assert unlike(frame, render_title_card(with_code, (640, 360))) > 0.01


def test_an_untitled_movie_shows_its_stations_friendly_name(hall: Pipeline) -> None:
    entry = add_package(hall.settings.inbox, title=None)
    code = read_package(entry).code
    movie = encode(hall, entry)
    frame = frame_at(movie, 1.0)
    named = TitleCard(None, "st-1", T0, festival="Test Festival", station_name="Dragon table",
                      language="en", code=code, page_url=movie_page(SITE, code))
    unnamed = TitleCard(None, "st-1", T0, festival="Test Festival", language="en", code=code,
                        page_url=movie_page(SITE, code))
    assert unlike(frame, render_title_card(named, (640, 360))) < 0.002
    assert unlike(frame, render_title_card(unnamed, (640, 360))) > 0.01


def test_the_card_speaks_the_festivals_language(hall: Pipeline) -> None:
    arabic = with_settings(hall, language="ar")
    entry = add_package(arabic.settings.inbox, publish=False, station="st-2", title="Moon")
    frame = frame_at(encode(arabic, entry), 1.0)
    card = TitleCard("Moon", "st-2", T0, festival="Test Festival", language="ar")
    assert unlike(frame, render_title_card(card, (640, 360))) < 0.002
    english = TitleCard("Moon", "st-2", T0, festival="Test Festival", language="en")
    assert unlike(frame, render_title_card(english, (640, 360))) > 0.002
