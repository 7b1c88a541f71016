"""The title card: a still image shown for 4 s before each child's movie.

It says, for the hall: the festival's name and logo; the movie's title, or else the
station's friendly name; the date in the festival's language and time zone; and, for a
PUBLISH movie only, the movie's code with a QR code of its public page, large enough to
scan from a few metres. What every movie shares (the background with the festival's name
and logo) is drawn once per size and kept.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from PIL import Image, ImageDraw, ImageOps

from moviepkg.atomic import write_atomic
from moviepkg.times import DEFAULT_TIMEZONE

from .cardtext import Box, clean_text, draw_text, paragraph_direction, visual_order
from .config import LANGUAGES
from .fonts import FontSet, FontsMissing, default_fonts

__all__ = ["BACKGROUND", "FESTIVAL_COLOUR", "FOOTER_COLOUR", "LANGUAGES", "TITLE_COLOUR",
           "FontSet", "FontsMissing", "TitleCard", "date_text", "default_fonts", "festival_tz",
           "movie_page", "paragraph_direction", "qr_image", "render_title_card",
           "save_title_card", "station_label", "visual_order"]

log = logging.getLogger(__name__)

FESTIVAL_TZ = DEFAULT_TIMEZONE
MIN_SIZE = (320, 180)
RIGHT_TO_LEFT = ("he", "ar")  # the card is mirrored: logo top right, QR code on the left
_LOCALES = {"he": "he", "ar": "ar", "en": "en_GB"}  # en_GB: "2 December 2026"
_STATION = {"he": "עמדה {}", "ar": "محطة {}", "en": "Station {}"}

BACKGROUND = (36, 42, 84)
TITLE_COLOUR = (255, 247, 230)
FESTIVAL_COLOUR = (255, 190, 92)
FOOTER_COLOUR = (186, 196, 226)
QR_HEIGHT = 0.46  # the QR code's side, quiet zone included, as a share of the card's height
QR_WIDTH = 0.34  # ... and at most this share of its width (a tall card)
QR_BORDER = 4  # modules of white quiet zone around the code, as the QR standard asks


@dataclass(frozen=True, slots=True)
class TitleCard:
    """What a title card says; code and page_url only for a movie that will be published."""

    title: str | None
    station_id: str
    created_at: datetime
    festival: str = "stopmo"
    logo: Path | None = None
    footer: bool = True  # the idle card on the big screen has no station or date
    station_name: str = ""  # the station's friendly name; empty: "Station N" in language
    language: str = "he"  # of the date and the station's fallback name: he, ar or en
    code: str = ""  # the movie's code, shown under its QR code
    page_url: str = ""  # the movie's public page, drawn as a QR code

    def __post_init__(self) -> None:
        """Refuse a naive time and a language the card does not speak."""
        if self.created_at.tzinfo is None:
            raise ValueError("created_at: expected an aware datetime, found a naive one")
        if self.language not in LANGUAGES:
            raise ValueError(f"language: expected one of {', '.join(LANGUAGES)}, "
                             f"found {self.language!r}")


@functools.cache
def festival_tz() -> tzinfo:
    """Return the festival's time zone, or UTC where the zone database is missing."""
    try:
        return ZoneInfo(FESTIVAL_TZ)
    except ZoneInfoNotFoundError:
        log.warning("time zone %s not found (install tzdata); title cards show UTC", FESTIVAL_TZ)
        return UTC


def movie_page(public_url: str, code: str) -> str:
    """Return the public page of the movie with code, or "" without a site or a code."""
    if not public_url or not code:
        return ""
    return f"{public_url.rstrip('/')}/m/{code}"


def station_label(station_id: str, language: str) -> str:
    """Name a station that has no friendly name: `st-3` is "Station 3" in language."""
    number = re.search(r"(\d+)$", station_id)
    if number:
        return _STATION[language].format(int(number.group(1)))
    words = " ".join(re.split(r"[-_]+", station_id)).strip()
    return words[:1].upper() + words[1:]


def date_text(when: datetime, language: str) -> str:
    """Format a local time as the hall reads it, e.g. `2 December 2026 · 15:42` in English."""
    from babel.dates import format_date  # its locale data loads on first use: only here

    return f"{format_date(when, 'long', locale=_LOCALES[language])} · {when:%H:%M}"


def qr_image(url: str, side: int) -> Image.Image:
    """Draw url as a black-on-white QR code with its quiet zone, at most side pixels wide.

    Each module is a whole number of pixels, so the edges stay sharp on a TV.
    """
    import qrcode  # only cards of published movies need it

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QR_BORDER)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()
    modules = Image.new("L", (len(matrix), len(matrix)))
    modules.putdata([0 if dark else 255 for row in matrix for dark in row])
    scale = max(1, side // len(matrix))
    return modules.resize((len(matrix) * scale,) * 2, Image.Resampling.NEAREST)


def _load_logo(path: Path, box: tuple[int, int]) -> Image.Image | None:
    """Load the logo scaled to fit box, or log why not and return None."""
    try:
        with Image.open(path) as raw:
            logo = ImageOps.exif_transpose(raw).convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("title card logo %s not drawn: %s", path, exc)
        return None
    return ImageOps.contain(logo, box, Image.Resampling.LANCZOS)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Return size if it is even and not too small; raise ValueError otherwise."""
    width, height = size
    if width % 2 or height % 2 or width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise ValueError(f"size: expected even width and height of at least "
                         f"{MIN_SIZE[0]}x{MIN_SIZE[1]}, found {width}x{height}")
    return width, height


def _metrics(size: tuple[int, int]) -> tuple[int, int, int]:
    """Return the margin, the gap between parts and the smallest font size for a card size."""
    width, height = size
    return (round(min(width, height) * 0.075), round(height * 0.03),
            max(8, round(min(width, height) * 0.02)))


def _stamp(path: Path | None) -> tuple[int, int] | None:
    """Return what tells a changed file apart (its mtime and size), or None."""
    try:
        stat = path.stat() if path else None
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size) if stat else None


@functools.lru_cache(maxsize=8)
def _background(size: tuple[int, int], festival: str, logo: Path | None,
                stamp: tuple[int, int] | None, mirrored: bool,
                fonts: FontSet) -> tuple[Image.Image, int]:
    """Draw what every card of a festival shares; return it and where the content starts.

    The logo's stamp is part of the cache key, so a replaced logo is drawn afresh.
    """
    width, height = size
    margin, gap, min_size = _metrics(size)
    image = Image.new("RGB", size, BACKGROUND)
    side = margin
    picture = _load_logo(logo, (round(width * 0.2), round(height * 0.16))) if logo else None
    if picture is not None:
        x = width - margin - picture.width if mirrored else margin
        image.paste(picture, (x, margin), picture)
        side += picture.width + gap  # the festival name stays clear of the logo, centred
    band = (side, margin, width - side, margin + round(height * 0.09))
    draw_text(ImageDraw.Draw(image), fonts, clean_text(festival), band, FESTIVAL_COLOUR,
              bold=True, max_size=height, min_size=min_size)
    return image, max(band[3], margin + (picture.height if picture else 0)) + gap


def _draw_code_panel(image: Image.Image, card: TitleCard, fonts: FontSet, area: Box,
                     mirrored: bool) -> Box:
    """Draw the QR code of the movie's page with its code below, beside the rest of the card
    in area (below it on a tall card); return the box the two take."""
    width, height = image.size
    left, top, right, bottom = area
    _, gap, min_size = _metrics(image.size)
    tall = height > width
    code_h = round(_unit(image.size) * 0.1) if card.code else 0
    qr = None
    if card.page_url:
        side = (min(round(width * 0.6), round(height * 0.3)) if tall else
                min(round(height * QR_HEIGHT), round(width * QR_WIDTH)))
        qr = qr_image(card.page_url, min(side, bottom - top - code_h - gap))
    panel_w = qr.width if qr else round(width * (0.6 if tall else 0.26))  # the code alone
    panel_h = (qr.height + gap if qr else 0) + code_h
    if tall:
        x, y = (width - panel_w) // 2, bottom - panel_h
    else:
        x, y = (left if mirrored else right - panel_w), top + (bottom - top - panel_h) // 2
    if qr:
        image.paste(qr, (x, y))
    draw_text(ImageDraw.Draw(image), fonts, card.code,
              (x, y + panel_h - code_h, x + panel_w, y + panel_h), TITLE_COLOUR, bold=True,
              max_size=code_h, min_size=min_size)
    return x, y, x + panel_w, y + panel_h


def _unit(size: tuple[int, int]) -> int:
    """Return the height text is sized by: the card's, or a 16:9 card's as wide on a tall one."""
    return min(size[1], round(size[0] * 9 / 16))


def render_title_card(card: TitleCard, size: tuple[int, int] = (1280, 720),
                      fonts: FontSet | None = None, tz: tzinfo | None = None) -> Image.Image:
    """Draw the title card as an RGB image of exactly size."""
    width, height = _check_size(size)
    fonts = fonts or default_fonts()
    mirrored = card.language in RIGHT_TO_LEFT
    base, top = _background(size, card.festival, card.logo, _stamp(card.logo), mirrored, fonts)
    image = base.copy()
    draw = ImageDraw.Draw(image)
    margin, gap, min_size = _metrics(size)
    unit = _unit(size)
    left, right, bottom = margin, width - margin, height - margin
    if card.code or card.page_url:
        panel = _draw_code_panel(image, card, fonts, (left, top, right, bottom), mirrored)
        if height > width:
            bottom = panel[1] - 2 * gap
        elif mirrored:
            left = panel[2] + 2 * gap
        else:
            right = panel[0] - 2 * gap

    def text(value: str, box: Box, colour: tuple[int, int, int], *, bold: bool,
             max_size: float, max_lines: int = 1, valign: str = "middle") -> None:
        """Draw one text of the card in box."""
        draw_text(draw, fonts, value, box, colour, bold=bold, max_size=max_size,
                  min_size=min_size, max_lines=max_lines, valign=valign)

    when = card.created_at.astimezone(tz or festival_tz())
    title = clean_text(card.title)
    station = clean_text(card.station_name) or station_label(card.station_id, card.language)
    # Under the title: the station, then the date; with no title the station takes its place.
    below = [(station, True, 0.08)] if title else []
    below += [(date_text(when, card.language), False, 0.07)] if card.footer or not title else []
    footer = sum(round(unit * share) + gap // 2 for _, _, share in below)
    text(title or station, (left, top, right, bottom - footer - gap // 2), TITLE_COLOUR,
         bold=True, max_size=unit * 0.16, max_lines=3 if title else 2)
    y = bottom - footer
    for value, bold, share in below:
        line_h = round(unit * share)
        y += gap // 2
        text(value, (left, y, right, y + line_h), FOOTER_COLOUR, bold=bold, max_size=line_h)
        y += line_h
    return image


def save_title_card(card: TitleCard, path: Path, size: tuple[int, int] = (1280, 720),
                    fonts: FontSet | None = None, tz: tzinfo | None = None) -> Path:
    """Render the card and write it to path as a PNG, atomically; return path."""
    data = io.BytesIO()
    card_image = render_title_card(card, size, fonts, tz)
    card_image.save(data, format="PNG", compress_level=1)  # read once, soon: favour speed
    write_atomic(path, data.getvalue())
    return path
