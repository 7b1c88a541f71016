"""The title card for the hall, read back from the rendered pictures: the QR code of a
published movie's page, none on a NOPUBLISH card, the date in the festival's language, the
station's friendly name, and a layout that keeps the title clear of the QR code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageChops

from processor import titlecard
from processor.titlecard import (
    BACKGROUND,
    FontSet,
    FontsMissing,
    TitleCard,
    date_text,
    movie_page,
    render_title_card,
    station_label,
)
from tests.services import skip_or_fail

WHEN = datetime(2026, 12, 2, 13, 42, tzinfo=UTC)  # 15:42 in Jerusalem
SITE = "https://movies.example.org"
CODE = "7AXKMY"
TITLES = {
    "he": "הסרט הארוך ביותר בעולם על דרקון, רובוט ושלושה חלזונות אמיצים שהלכו לים ביחד היום",
    "ar": "فيلم طويل جدا عن تنين وروبوت وثلاثة حلزونات شجاعة ذهبوا إلى البحر معا اليوم",
    "en": "A very long title about a dragon, a robot and three brave snails who go to sea",
}
Box = tuple[int, int, int, int]


@pytest.fixture(scope="module")
def fonts() -> FontSet:
    try:
        return FontSet.find()
    except FontsMissing as exc:
        skip_or_fail(str(exc))


@pytest.fixture(scope="module")
def logo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logo") / "logo.png"
    Image.new("RGB", (400, 200), (0, 200, 0)).save(path)  # no pure white: see white_box
    return path


def published(title: str | None, language: str = "en", **changes: object) -> TitleCard:
    fields: dict[str, object] = {
        "title": title, "station_id": "st-3", "created_at": WHEN, "festival": "Festival",
        "language": language, "code": CODE, "page_url": movie_page(SITE, CODE)}
    return TitleCard(**(fields | changes))  # type: ignore[arg-type]


def unpublished(title: str | None, language: str = "en", **changes: object) -> TitleCard:
    return published(title, language, code="", page_url="", **changes)


def codes(image: Image.Image) -> list[str]:
    """Return the text of every QR code found in image."""
    return [found.text for found in zxingcpp.read_barcodes(image)
            if found.format == zxingcpp.BarcodeFormat.QRCode]


def white_box(image: Image.Image) -> Box | None:
    """Return the bounding box of the pure white pixels: the QR code with its quiet zone."""
    white = Image.new("RGB", image.size, (255, 255, 255))
    dark = ImageChops.difference(image, white).convert("L").point(lambda v: 255 if v else 0)
    return ImageChops.invert(dark).getbbox()


def ink(image: Image.Image) -> Box | None:
    """Return the bounding box of everything that is not background."""
    return ImageChops.difference(image, Image.new("RGB", image.size, BACKGROUND)).getbbox()


def test_the_movie_page_is_the_public_url_and_the_code() -> None:
    assert movie_page(SITE, CODE) == f"{SITE}/m/{CODE}"
    assert movie_page(SITE + "/", CODE) == f"{SITE}/m/{CODE}"
    assert movie_page("", CODE) == movie_page(SITE, "") == ""


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (640, 360)])
@pytest.mark.parametrize("language", ["he", "ar", "en"])
@pytest.mark.parametrize("with_logo", [False, True], ids=["no-logo", "logo"])
def test_a_published_card_has_a_qr_code_of_the_movies_page(
        fonts: FontSet, logo: Path, size: tuple[int, int], language: str,
        with_logo: bool) -> None:
    image = render_title_card(published(TITLES[language], language,
                                        logo=logo if with_logo else None), size, fonts)
    assert codes(image) == [f"{SITE}/m/{CODE}"]
    # From the back of the hall a phone sees the card small: a quarter of 720p still reads.
    far = image.resize((320, 180), Image.Resampling.BOX)
    assert codes(far) == [f"{SITE}/m/{CODE}"]


@pytest.mark.parametrize("language", ["he", "ar", "en"])
def test_the_qr_code_is_large_with_its_quiet_zone_and_the_code_below(
        fonts: FontSet, language: str) -> None:
    image = render_title_card(published(None, language), fonts=fonts)
    width, height = image.size
    (found,) = zxingcpp.read_barcodes(image)
    corners = [found.position.top_left, found.position.top_right,
               found.position.bottom_right, found.position.bottom_left]
    xs, ys = [p.x for p in corners], [p.y for p in corners]
    assert max(ys) - min(ys) >= 0.3 * height  # the symbol alone, without its quiet zone
    square = white_box(image)
    assert square is not None
    modules = (max(xs) - min(xs)) / 29  # version 3: 29 modules a side, for this URL
    for inner, outer in zip((min(xs), min(ys)), square[:2], strict=True):
        assert inner - outer >= 3.5 * modules  # four modules of white all around
    for inner, outer in zip((max(xs), max(ys)), square[2:], strict=True):
        assert outer - inner >= 3.5 * modules
    # The code is written under it, on the side where the layout ends: left in RTL.
    under = ink(image.crop((square[0], square[3], square[2], height)))
    assert under is not None and under[3] - under[1] > 0.05 * height
    assert (square[2] < width / 2) == (language in ("he", "ar"))


@pytest.mark.parametrize("title", [None, "The Moon", TITLES["he"]])
@pytest.mark.parametrize("language", ["he", "ar", "en"])
def test_a_nopublish_card_has_no_qr_code_and_no_code(fonts: FontSet, logo: Path,
                                                    title: str | None, language: str) -> None:
    image = render_title_card(unpublished(title, language, logo=logo), fonts=fonts)
    assert codes(image) == []
    assert white_box(image) is None
    # Without the side panel the text is centred on the whole card.
    found = ink(render_title_card(unpublished(title, language), fonts=fonts))
    assert found is not None and abs((found[0] + found[2]) / 2 - 640) < 40


@pytest.mark.parametrize("language", ["he", "ar", "en"])
@pytest.mark.parametrize("with_logo", [False, True], ids=["no-logo", "logo"])
def test_a_long_title_keeps_clear_of_the_qr_code_and_the_bands(
        fonts: FontSet, logo: Path, language: str, with_logo: bool) -> None:
    logo_path = logo if with_logo else None
    long = render_title_card(published(TITLES[language], language, logo=logo_path),
                             fonts=fonts)
    short = render_title_card(published("x", language, logo=logo_path), fonts=fonts)
    title = ImageChops.difference(long, short).getbbox()
    square = white_box(long)
    assert title is not None and square is not None
    if language == "en":
        assert title[2] < square[0] - 20
    else:
        assert title[0] > square[2] + 20
    width, height = long.size
    top_band = ImageChops.difference(short.crop((0, 0, width, height // 4)),
                                     Image.new("RGB", (width, height // 4), BACKGROUND))
    band = top_band.getbbox()
    assert band is not None and band[3] < title[1]
    footer = ink(short.crop((title[0], title[3], title[2], height)))
    assert footer is not None  # the station and the date, below the title
    assert title[1] > 0 and title[3] < height - 0.075 * height


def test_the_date_is_in_the_festivals_language_and_time_zone() -> None:
    local = WHEN.astimezone(titlecard.festival_tz())
    assert date_text(local, "he") == "2 בדצמבר 2026 · 15:42"
    assert date_text(local, "ar") == "2 ديسمبر 2026 · 15:42"
    assert date_text(local, "en") == "2 December 2026 · 15:42"


def test_the_language_changes_only_the_date_line(fonts: FontSet) -> None:
    cards = {language: render_title_card(unpublished("Moon", language, station_name="Dragon"),
                                         fonts=fonts) for language in ("he", "ar", "en")}
    height = cards["en"].height
    for language in ("he", "ar"):
        changed = ImageChops.difference(cards[language], cards["en"]).getbbox()
        assert changed is not None and changed[1] > 0.85 * height  # the last line only


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="language: expected one of he, ar, en"):
        published("x", "fr")


@pytest.mark.parametrize(("station_id", "language", "label"), [
    ("st-1", "en", "Station 1"), ("st-12", "he", "עמדה 12"), ("st-03", "ar", "محطة 3"),
    ("kitchen", "en", "Kitchen"), ("dragon-table", "he", "Dragon table"),
])
def test_a_station_without_a_name_gets_a_friendly_one(station_id: str, language: str,
                                                      label: str) -> None:
    assert station_label(station_id, language) == label


def test_the_friendly_station_name_stands_in_for_a_missing_title(fonts: FontSet) -> None:
    named = render_title_card(published(None, station_name="Dragon table"), fonts=fonts)
    other_id = published(None, station_id="st-9", station_name="Dragon table")
    assert render_title_card(other_id, fonts=fonts) == named  # the id is not drawn
    # Drawn as the title would be: big, where the title goes, in the title's colour.
    height = named.height
    middle = named.crop((0, height // 4, named.width * 2 // 3, height * 3 // 4))
    colours = {colour for _, colour in middle.getcolors(1 << 16) or []}
    assert titlecard.TITLE_COLOUR in colours
    unnamed = render_title_card(published(None), fonts=fonts)
    assert render_title_card(published(None, station_name="Station 3"), fonts=fonts) == unnamed


def test_the_background_is_drawn_once_and_again_for_a_new_logo(fonts: FontSet,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    Image.new("RGB", (400, 200), (0, 200, 0)).save(path)
    render_title_card(published("One", logo=path), fonts=fonts)
    hits = titlecard._background.cache_info().hits
    first = render_title_card(published("Two", logo=path), fonts=fonts)
    assert titlecard._background.cache_info().hits == hits + 1
    Image.new("RGB", (400, 300), (200, 0, 200)).save(path)  # replaced while running
    second = render_title_card(published("Two", logo=path), fonts=fonts)
    assert second.getpixel((60, 60)) == (200, 0, 200) != first.getpixel((60, 60))


def test_the_code_alone_when_no_public_site_is_set(fonts: FontSet) -> None:
    image = render_title_card(published("Moon", page_url=""), fonts=fonts)
    assert codes(image) == []
    found = ink(image.crop((image.width * 2 // 3, 0, image.width, image.height)))
    assert found is not None  # the code, at the side


@pytest.mark.parametrize("size", [(320, 180), (720, 1280)])
@pytest.mark.parametrize("language", ["he", "en"])
def test_small_and_tall_cards_keep_the_qr_code_inside_the_margins(
        fonts: FontSet, size: tuple[int, int], language: str) -> None:
    image = render_title_card(published(TITLES[language], language), size, fonts)
    assert codes(image) == [f"{SITE}/m/{CODE}"]
    found, edge = ink(image), round(min(size) * 0.05)
    assert found is not None
    assert min(found[:2]) >= edge and found[2] <= size[0] - edge and found[3] <= size[1] - edge
