"""The title card renderer, with real Pillow and the real system fonts."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from PIL import Image, ImageChops, features

from processor import cardtext
from processor.cardtext import pick_font
from processor.titlecard import (
    BACKGROUND,
    TITLE_COLOUR,
    FontSet,
    FontsMissing,
    TitleCard,
    render_title_card,
    save_title_card,
    visual_order,
)
from tests.services import skip_or_fail

WHEN = datetime(2026, 3, 14, 13, 42, tzinfo=UTC)  # 15:42 in Jerusalem
SIZES = [(1280, 720), (1920, 1080), (640, 360), (320, 180), (720, 1280)]
HEBREW = "הסרט של נועה"
ARABIC = "فيلم نور"
LONG_TITLES = {
    "sentence": "A very long title about a dragon, a robot and three brave snails who go to sea",
    "one-word": "Supercalifragilisticexpialidocious" * 2 + "abcdefghijkl",
    "wide": "W" * 80,
    "hebrew": "הסרט הארוך ביותר בעולם על דרקון, רובוט ושלושה חלזונות אמיצים שהלכו לים ביחד היום",
    "arabic": "فيلم طويل جدا عن تنين وروبوت وثلاثة حلزونات شجاعة ذهبوا إلى البحر معا اليوم",
}
needs_raqm = pytest.mark.skipif(not features.check("raqm") and os.environ.get("CI") != "true",
                                reason="Pillow has no libraqm (apt-get install libraqm0)")


@pytest.fixture(scope="module")
def fonts() -> FontSet:
    try:
        return FontSet.find()
    except FontsMissing as exc:
        skip_or_fail(str(exc))


def card(title: str | None, **changes: object) -> TitleCard:
    fields: dict[str, object] = {"title": title, "station_id": "kitchen-2", "created_at": WHEN}
    return TitleCard(**(fields | changes))  # type: ignore[arg-type]


def ink(image: Image.Image, box: tuple[int, int, int, int] | None = None
        ) -> tuple[int, int, int, int] | None:
    """Return the bounding box of everything that is not background (within box)."""
    region = image.crop(box) if box else image
    found = ImageChops.difference(region, Image.new("RGB", region.size, BACKGROUND)).getbbox()
    if found is None or box is None:
        return found
    return found[0] + box[0], found[1] + box[1], found[2] + box[0], found[3] + box[1]


def assert_clear_margins(image: Image.Image) -> None:
    width, height = image.size
    edge = round(min(width, height) * 0.05)
    found = ink(image)
    assert found is not None
    assert found[0] >= edge and found[1] >= edge, found
    assert found[2] <= width - edge and found[3] <= height - edge, found


def columns(image: Image.Image) -> list[int]:
    """Return how much ink each column of the middle band holds."""
    width, height = image.size
    band = image.crop((0, height * 3 // 10, width, height * 7 // 10))
    diff = ImageChops.difference(band, Image.new("RGB", band.size, BACKGROUND)).convert("L")
    return list(diff.resize((width, 1), Image.Resampling.BOX).tobytes())


def find(template: list[int], profile: list[int]) -> int:
    """Return the offset where template matches profile best (least absolute difference)."""
    nonzero = [i for i, v in enumerate(template) if v]
    template = template[nonzero[0]:nonzero[-1] + 1]
    return min(range(len(profile) - len(template) + 1),
               key=lambda x: sum(abs(a - b) for a, b in zip(template, profile[x:], strict=False)))


@pytest.mark.parametrize("size", SIZES)
def test_size_mode_and_margins(fonts: FontSet, size: tuple[int, int]) -> None:
    image = render_title_card(card("The Cat Who Ate the Moon"), size, fonts)
    assert image.mode == "RGB"
    assert image.size == size
    assert_clear_margins(image)


@pytest.mark.parametrize("size", [(1279, 720), (1280, 719), (318, 180), (0, 0)])
def test_refuses_odd_or_tiny_sizes(fonts: FontSet, size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="even width and height"):
        render_title_card(card("x"), size, fonts)


def test_title_is_drawn_in_the_centre(fonts: FontSet) -> None:
    image = render_title_card(card("Moon"), fonts=fonts)
    centre = image.crop((320, 240, 960, 480))
    assert TITLE_COLOUR in {colour for _, colour in centre.getcolors(1 << 16) or []}
    assert render_title_card(card("Sun"), fonts=fonts) != image


@pytest.mark.parametrize("size", [(1280, 720), (640, 360)])
@pytest.mark.parametrize("title", LONG_TITLES.values(), ids=LONG_TITLES.keys())
def test_long_titles_stay_between_the_bands(fonts: FontSet, title: str,
                                            size: tuple[int, int]) -> None:
    assert len(title) <= 80
    image = render_title_card(card(title), size, fonts)
    assert_clear_margins(image)
    # The title must keep clear of the festival name above and the footer below.
    width, height = size
    short = render_title_card(card("x"), size, fonts)
    festival = ink(short, (0, 0, width, height // 4))
    footer = ink(short, (0, height * 3 // 4, width, height))
    title_ink = ImageChops.difference(image, short).getbbox()
    assert festival and footer and title_ink
    assert festival[3] < title_ink[1] and title_ink[3] < footer[1]


def test_long_title_is_wrapped_not_shrunk_to_one_line(fonts: FontSet) -> None:
    image = render_title_card(card(LONG_TITLES["one-word"]), fonts=fonts)
    found = ink(image, (0, 150, 1280, 570))
    assert found and found[3] - found[1] > 200  # three lines, not one thin line


@pytest.mark.parametrize(("text", "script"), [(HEBREW, "Hebrew"), (ARABIC, "Arabic")])
def test_hebrew_and_arabic_get_a_font_with_their_glyphs(fonts: FontSet, text: str,
                                                        script: str) -> None:
    assert script in pick_font(fonts, text, bold=True).name
    assert script in pick_font(fonts, text).name
    boxes = "".join(" " if ch == " " else "\u0378" for ch in text)  # unassigned: .notdef
    assert render_title_card(card(text), fonts=fonts) != render_title_card(card(boxes),
                                                                           fonts=fonts)


def test_mixed_text_gets_one_font_that_has_every_glyph(fonts: FontSet) -> None:
    assert pick_font(fonts, "Noa's movie הסרט 2026", bold=True).name == "DejaVuSans-Bold.ttf"
    assert pick_font(fonts, "The Cat", bold=True).name == "NotoSans-Bold.ttf"


@pytest.mark.parametrize("raqm", [pytest.param(True, marks=needs_raqm), False])
def test_hebrew_reads_right_to_left(fonts: FontSet, raqm: bool,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cardtext, "_RAQM", raqm)
    alef, bet, both = (columns(render_title_card(card(t), fonts=fonts))
                       for t in ("א", "ב", "אב"))
    assert find(alef, both) > find(bet, both) + 10


def test_visual_order_without_raqm() -> None:
    assert visual_order("אב", "rtl") == "בא"
    assert visual_order("Noa אב 2026", "ltr") == "Noa 2026 בא"
    assert visual_order("אב 12 גד", "rtl") == "דג 12 בא"
    assert visual_order("בְּא", "rtl") == "אבְּ"  # the point stays on its letter
    # A separator between digits is part of the number: a time, a decimal, thousands.
    assert visual_order("2 בדצמבר 2026 · 15:42", "rtl") == "15:42 · 2026 רבמצדב 2"
    assert visual_order("אב 1,000.5 גד", "rtl") == "דג 1,000.5 בא"
    assert visual_order("אב: 12", "rtl") == "12 :בא"


@needs_raqm
def test_arabic_letters_are_joined(fonts: FontSet) -> None:
    unjoined = "\u200c".join(ARABIC)  # zero-width non-joiners stop the joining
    joined_ink = ink(render_title_card(card(ARABIC), fonts=fonts), (0, 200, 1280, 520))
    unjoined_ink = ink(render_title_card(card(unjoined), fonts=fonts), (0, 200, 1280, 520))
    assert joined_ink and unjoined_ink
    # Joined forms are narrower than the isolated ones (about 2:3 in Noto Sans Arabic).
    assert joined_ink[2] - joined_ink[0] < 0.85 * (unjoined_ink[2] - unjoined_ink[0])


@pytest.mark.parametrize("title", ["Noa's movie הסרט 2026", "🐱", "\U0001fae8 \u0378 \ue000"])
def test_mixed_emoji_and_unknown_glyphs_render(fonts: FontSet, title: str) -> None:
    image = render_title_card(card(title), fonts=fonts)
    assert ink(image, (0, 200, 1280, 520)) is not None
    assert_clear_margins(image)


def test_text_too_long_for_the_smallest_font_is_cut_short(fonts: FontSet) -> None:
    festival = "Jerusalem International Stop-Motion Festival for Children " * 2
    image = render_title_card(card("W" * 80, festival=festival), (320, 180), fonts)
    assert_clear_margins(image)
    found = ink(image, (0, 0, 320, 40))
    assert found and found[2] - found[0] > 250


def test_untitled_card_shows_the_station_large_and_the_date(fonts: FontSet) -> None:
    untitled = render_title_card(card(None), fonts=fonts)
    assert render_title_card(card("   "), fonts=fonts) == untitled
    found = ink(untitled, (0, 200, 1280, 520))
    assert found and found[3] - found[1] > 80  # "Station 2", as large as a title
    assert ink(untitled, (0, 560, 1280, 720)) is not None  # the date, at the bottom
    assert_clear_margins(untitled)


def test_date_is_shown_in_festival_time(fonts: FontSet) -> None:
    jerusalem = render_title_card(card("x"), fonts=fonts)
    same_clock = card("x", created_at=datetime(2026, 3, 14, 15, 42, tzinfo=UTC))
    assert render_title_card(same_clock, fonts=fonts, tz=UTC) == jerusalem
    assert render_title_card(card("x"), fonts=fonts, tz=UTC) != jerusalem


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        card("x", created_at=datetime(2026, 3, 14, 13, 42))


def test_rendering_is_deterministic(fonts: FontSet) -> None:
    first = render_title_card(card(HEBREW, festival="Festival"), fonts=fonts)
    assert render_title_card(card(HEBREW, festival="Festival"), fonts=fonts) == first


def test_logo_is_drawn_inside_the_margins(fonts: FontSet, tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("RGB", (400, 100), (0, 200, 0)).save(logo)
    image = render_title_card(card("Moon", logo=logo, festival="Jerusalem Stop-Motion Festival"),
                              fonts=fonts)
    colours = cast(list[tuple[int, tuple[int, int, int]]], image.getcolors(1 << 16))
    green = sum(n for n, (r, g, b) in colours if g > 150 and r < 60 and b < 60)
    assert green > 1000
    assert_clear_margins(image)


def test_unreadable_logo_is_skipped_and_logged(fonts: FontSet, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"not a png")
    with caplog.at_level(logging.WARNING):
        image = render_title_card(card("Moon", logo=logo), fonts=fonts)
    assert image == render_title_card(card("Moon"), fonts=fonts)
    assert "logo.png" in caplog.text


def test_find_names_the_packages_when_no_font_is_there(tmp_path: Path) -> None:
    with pytest.raises(FontsMissing, match=r"fonts-dejavu-core.*fonts-noto-core"):
        FontSet.find([tmp_path / "nope"])


def test_find_makes_do_with_one_font(fonts: FontSet, tmp_path: Path) -> None:
    dejavu = next(p for p in fonts.regular if p.name == "DejaVuSans.ttf")
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "DejaVuSans.ttf").symlink_to(dejavu)
    found = FontSet.find([tmp_path])
    assert found.regular == found.bold == (tmp_path / "deep" / "DejaVuSans.ttf",)
    assert render_title_card(card(HEBREW), (640, 360), found).size == (640, 360)


def test_save_writes_a_png_atomically(fonts: FontSet, tmp_path: Path) -> None:
    target = tmp_path / "card.png"
    target.write_bytes(b"old")
    assert save_title_card(card(HEBREW), target, (640, 360), fonts) == target
    assert os.listdir(tmp_path) == ["card.png"]
    with Image.open(target) as saved:
        assert (saved.format, saved.size, saved.mode) == ("PNG", (640, 360), "RGB")
        assert saved.tobytes() == render_title_card(card(HEBREW), (640, 360), fonts).tobytes()
