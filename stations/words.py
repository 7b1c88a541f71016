"""The kiosk's few words, for a helper, in the station's language (kiosk.language).

Children do not read: every screen works with pictures alone. Words appear only where a
helper reads them ("please call a helper"). Hebrew and Arabic run right to left; with
Pillow's raqm layout they are shaped and ordered properly, without it the letters are
put in visual order by hand (Hebrew reads right, Arabic letters stay unjoined). Each
language has fonts to try in turn, and a font is used only if it has every glyph.
"""

from __future__ import annotations

import functools
import logging

from PIL import ImageDraw, ImageFont, features

log = logging.getLogger("stopmo.station.words")

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RIGHT_TO_LEFT = frozenset(("he", "ar"))
CALL_A_HELPER = {
    "he": "נא לקרוא לאיש צוות",
    "ar": "الرجاء مناداة أحد أفراد الطاقم",
    "en": "Please call a helper",
}
_DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"  # Latin, Hebrew, Arabic
_NOTO = "/usr/share/fonts/truetype/noto/"
FONT_FILES = {
    "he": (_NOTO + "NotoSansHebrew-Bold.ttf", _DEJAVU),
    "ar": (_NOTO + "NotoSansArabic-Bold.ttf", _DEJAVU),
    "en": (_DEJAVU, _NOTO + "NotoSans-Bold.ttf"),
}
_NO_SUCH_LETTER = "\u0378"  # unassigned in Unicode: every font draws its "missing" glyph


def shaping() -> bool:
    """Whether Pillow lays text out with raqm (bidi and Arabic shaping)."""
    return bool(features.check("raqm"))


def covers(font: ImageFont.FreeTypeFont, text: str) -> bool:
    """Whether font has a glyph of its own for every letter of text."""
    missing = bytes(font.getmask(_NO_SUCH_LETTER))
    return all(ch.isspace() or bytes(font.getmask(ch)) != missing for ch in set(text))


@functools.lru_cache(maxsize=16)
def text_font(language: str, size: int, text: str) -> Font:
    """A bold font of about size pixels that has every glyph of text (first that fits)."""
    for path in FONT_FILES.get(language, FONT_FILES["en"]):
        try:
            font = ImageFont.truetype(path, size)
        except OSError:
            continue
        if covers(font, text):
            return font
    log.warning("no font with every letter of %r; install fonts-dejavu-core", text)
    return ImageFont.load_default(size)


def _layout(text: str, language: str) -> tuple[str, str | None, str | None]:
    """The string to draw, and Pillow's direction and language for it."""
    if language not in RIGHT_TO_LEFT:
        return text, None, None
    if shaping():
        return text, "rtl", language
    return text[::-1], None, None  # no raqm: visual order by hand (no mirrored brackets here)


def text_box(draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, language: str,
             font: Font) -> tuple[int, int, int, int]:
    """The box text covers when `write` draws it centred on centre."""
    shown, direction, lang = _layout(text, language)
    box = draw.textbbox(centre, shown, font=font, anchor="mm", direction=direction,
                        language=lang)
    return int(box[0]), int(box[1]), int(box[2]), int(box[3])


def write(draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, language: str,
          font: Font, fill: tuple[int, int, int]) -> None:
    """Draw text centred on centre, right to left where the language reads so."""
    shown, direction, lang = _layout(text, language)
    draw.text(centre, shown, font=font, fill=fill, anchor="mm", direction=direction,
              language=lang)
