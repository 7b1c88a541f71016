"""The helper's words in the station's language: the setting, the fonts, right to left."""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops, ImageDraw

from stations.art import BACKGROUND
from stations.config import LANGUAGES, ConfigError, load_settings
from stations.flow import Action, Screen, View
from stations.render import Renderer
from stations.words import CALL_A_HELPER, covers, shaping, text_font, write


def test_the_language_is_a_setting_hebrew_by_default() -> None:
    """kiosk.language: he unless told; STOPMO_LANGUAGE; anything else is refused."""
    assert load_settings(environ={}).kiosk.language == "he"
    assert load_settings(environ={"STOPMO_LANGUAGE": "ar"}).kiosk.language == "ar"
    with pytest.raises(ConfigError) as bad:
        load_settings(environ={"STOPMO_LANGUAGE": "fr"})
    assert bad.value.problems == ["STOPMO_LANGUAGE: expected one of he, ar, en, found 'fr'"]
    assert set(CALL_A_HELPER) == set(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_font_with_every_letter(language: str) -> None:
    """The font chosen for the words has a glyph for each of their letters."""
    text = CALL_A_HELPER[language]
    assert covers(text_font(language, 40, text), text)


@pytest.mark.parametrize("size", [(1280, 800), (640, 400)])
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_helper_screens_words_stay_clear_of_its_circle(language: str,
                                                           size: tuple[int, int]) -> None:
    """Under the circle there is nothing but the words, inside their box."""
    renderer = Renderer(size, language=language)
    circle, words = renderer.help_layout()
    w, h = renderer.stage
    assert words[1] > circle[3] and 0 <= words[0] < words[2] <= w and words[3] <= h
    view = View(Screen.HELP, 0, 10, True, False, acts=frozenset(Action))
    picture = renderer.draw(view, 0.0)
    below = picture.crop((0, circle[3] + 1, w, h))  # under the circle: only the words
    inked = ImageChops.difference(below, Image.new("RGB", below.size, BACKGROUND)).getbbox()
    assert inked is not None
    x0, y0, x1, y1 = inked
    slack = 3
    assert words[0] - slack <= x0 and x1 <= words[2] + slack
    assert words[1] - slack <= y0 + circle[3] + 1 and y1 + circle[3] + 1 <= words[3] + slack
    assert (x1 - x0) > w * 0.3  # big enough for a helper to read from a few steps


@pytest.mark.parametrize("language", ["he", "ar"])
def test_hebrew_and_arabic_read_right_to_left(language: str) -> None:
    """The sentence's first word is drawn at its right end, as it is when drawn alone."""
    text = CALL_A_HELPER[language]
    face = text_font(language, 48, text)

    def drawn(words: str) -> Image.Image:
        """words drawn alone, cropped to their ink's columns."""
        image = Image.new("RGB", (1400, 120), (0, 0, 0))
        write(ImageDraw.Draw(image), (700, 60), words, language, face, (255, 255, 255))
        picture = image.convert("L")
        box = picture.getbbox()
        assert box is not None
        return picture.crop((box[0], 0, box[2], picture.height))  # same rows: same font

    whole, alone = drawn(text), drawn(text.split()[0])
    width = alone.width

    def distance(x: int) -> int:
        """How unlike the word alone whole is from column x on."""
        part = whole.crop((x, 0, x + width, whole.height))
        histogram = ImageChops.difference(part, alone).histogram()
        return sum(level * count for level, count in enumerate(histogram))

    best = min(range(whole.width - width + 1), key=distance)
    assert best >= whole.width - width - 3  # found at the right end of the sentence


def test_shaping_is_there() -> None:
    """Pillow here lays out with raqm (Hebrew in order, Arabic joined)."""
    assert shaping()
