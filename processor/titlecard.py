"""The title card: a still image shown for 4 s before each child's movie."""

from __future__ import annotations

import functools
import io
import logging
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from itertools import combinations, groupby
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from PIL import Image, ImageDraw, ImageFont, ImageOps, features

from moviepkg.atomic import write_atomic
from moviepkg.manifest import MAX_TITLE_CHARS
from moviepkg.times import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)

FESTIVAL_TZ = DEFAULT_TIMEZONE
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
FONT_PACKAGES = ("fonts-dejavu-core", "fonts-noto-core")
MIN_SIZE = (320, 180)
# Preferred first; DejaVu last, as it covers Latin, Hebrew and Arabic in one face.
_REGULAR = ("NotoSans-Regular.ttf", "NotoSansHebrew-Regular.ttf",
            "NotoSansArabic-Regular.ttf", "DejaVuSans.ttf")
_BOLD = ("NotoSans-Bold.ttf", "NotoSansHebrew-Bold.ttf", "NotoSansArabic-Bold.ttf",
         "DejaVuSans-Bold.ttf")

BACKGROUND = (36, 42, 84)
TITLE_COLOUR = (255, 247, 230)
FESTIVAL_COLOUR = (255, 190, 92)
FOOTER_COLOUR = (186, 196, 226)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")

_RAQM = features.check("raqm")
_REF = 100  # font size at which line breaks are chosen
_LINE_PENALTY = 0.9  # each extra title line must buy 10% more font size
_SPLIT_PENALTY = 0.7  # breaking inside a word must buy 30% more
_MISSING = "\uffff"  # a noncharacter: every font draws its .notdef box for it

Direction = Literal["ltr", "rtl"]
Box = tuple[int, int, int, int]


class FontsMissing(RuntimeError):
    """No usable font file was found on this machine."""


@dataclass(frozen=True, slots=True)
class TitleCard:
    """What a title card says: the title, or the station and date when there is none."""

    title: str | None
    station_id: str
    created_at: datetime
    festival: str = "stopmo"
    logo: Path | None = None
    footer: bool = True  # the idle card on the big screen has no station or date

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("created_at: expected an aware datetime, found a naive one")


@dataclass(frozen=True, slots=True)
class FontSet:
    """Font files in order of preference; each text gets the first that has all its glyphs."""

    regular: tuple[Path, ...]
    bold: tuple[Path, ...]

    def __post_init__(self) -> None:
        if not self.regular or not self.bold:
            raise ValueError("FontSet: expected at least one regular and one bold font")

    @classmethod
    def find(cls, dirs: Sequence[Path] = FONT_DIRS) -> FontSet:
        """Locate the Noto and DejaVu fonts; raise FontsMissing if there is none."""
        found: dict[str, Path] = {}
        for top in dirs:
            for root, subdirs, files in os.walk(top):
                subdirs.sort()
                for name in sorted(set(files) & set(_REGULAR + _BOLD)):
                    found.setdefault(name, Path(root) / name)
        regular = tuple(found[n] for n in _REGULAR if n in found)
        bold = tuple(found[n] for n in _BOLD if n in found)
        if not regular and not bold:
            raise FontsMissing(
                f"no title card fonts ({', '.join(_REGULAR + _BOLD)}) in "
                f"{', '.join(str(d) for d in dirs)}; install the Debian packages "
                f"{' and '.join(FONT_PACKAGES)}")
        return cls(regular or bold, bold or regular)

    def pick(self, text: str, bold: bool = False) -> Path:
        """Return the first font that has every glyph of text, else the one with most."""
        paths = self.bold if bold else self.regular
        chars = [ch for ch in set(text) if unicodedata.category(ch) not in ("Zs", "Cc", "Cf")]
        return max(paths, key=lambda p: (sum(_has_glyph(p, ch) for ch in chars), -paths.index(p)))


@functools.cache
def _default_fonts() -> FontSet:
    return FontSet.find()


@functools.cache
def festival_tz() -> tzinfo:
    """Return the festival's time zone, or UTC where the zone database is missing."""
    try:
        return ZoneInfo(FESTIVAL_TZ)
    except ZoneInfoNotFoundError:
        log.warning("time zone %s not found (install tzdata); title cards show UTC", FESTIVAL_TZ)
        return UTC


@functools.lru_cache(maxsize=64)
def _font(path: Path, size: int, layout: ImageFont.Layout) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size, layout_engine=layout)


@functools.lru_cache(maxsize=8192)
def _glyph_print(path: Path, ch: str) -> bytes:
    font = _font(path, 24, ImageFont.Layout.BASIC)  # no shaping: one character, one glyph
    left, top, right, bottom = (int(v) for v in font.getbbox(ch))
    image = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(image).text((-left, -top), ch, font=font, fill=255)
    return repr(image.size).encode() + image.tobytes()


def _has_glyph(path: Path, ch: str) -> bool:
    return _glyph_print(path, ch) != _glyph_print(path, _MISSING)


def _clusters(text: str) -> list[str]:
    """Split text into what a reader sees as one character (a base with its marks)."""
    out: list[str] = []
    for ch in text:
        joins = unicodedata.category(ch).startswith("M") or ch == "\u200d"
        if out and (joins or out[-1].endswith("\u200d") or "\U0001f3fb" <= ch <= "\U0001f3ff"):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _strong(cluster: str) -> str:
    kind = unicodedata.bidirectional(cluster[0])
    return {"R": "R", "AL": "R", "L": "L", "EN": "D", "AN": "D"}.get(kind, "N")


def paragraph_direction(text: str) -> Direction:
    """Return the direction of text's first strong character (ltr if there is none)."""
    kinds = (unicodedata.bidirectional(ch) for ch in text)
    first = next((k for k in kinds if k in ("L", "R", "AL")), "L")
    return "ltr" if first == "L" else "rtl"


def visual_order(line: str, direction: Direction) -> str:
    """Reorder a line for display without raqm: reverse right-to-left runs, no shaping."""
    clusters = _clusters(line)
    base = "R" if direction == "rtl" else "L"
    kinds = [_strong(c) for c in clusters]
    for i, kind in enumerate(kinds):
        if kind == "D":  # digits read left to right but sit in the run before them
            kinds[i] = next((k for k in reversed(kinds[:i]) if k in "LR"), base)
    for i, kind in enumerate(kinds):
        if kind == "N":  # a neutral between two runs of one direction joins them
            before = next((k for k in reversed(kinds[:i]) if k != "N"), base)
            after = next((k for k in kinds[i + 1:] if k != "N"), base)
            kinds[i] = before if before == after else base
    runs = [(kind, [c for _, c in group])
            for kind, group in groupby(zip(kinds, clusters, strict=True), key=lambda kc: kc[0])]
    parts = ["".join(_reverse_rtl(run) if kind == "R" else run) for kind, run in runs]
    return "".join(parts[::-1] if base == "R" else parts)


def _reverse_rtl(run: list[str]) -> list[str]:
    """Reverse a right-to-left run, keeping the digits of each number in order."""
    pieces = [list(group) for _, group in groupby(run, key=lambda c: _strong(c) == "D")]
    return [c for piece in reversed(pieces)
            for c in (piece if _strong(piece[0]) == "D" else piece[::-1])]


@dataclass(frozen=True, slots=True)
class _Block:
    """Lines of text fitted into a box, ready to draw."""

    font: ImageFont.FreeTypeFont
    lines: tuple[str, ...]  # in visual order already when raqm is missing
    origins: tuple[tuple[int, int], ...]  # left end of each line's baseline
    direction: Direction | None  # for raqm; None when lines are in visual order


def _layout() -> ImageFont.Layout:
    return ImageFont.Layout.RAQM if _RAQM else ImageFont.Layout.BASIC


def _ink(font: ImageFont.FreeTypeFont, line: str, direction: Direction) -> Box:
    """Return the ink box of line drawn with its baseline's left end at (0, 0)."""
    if _RAQM:
        box = font.getbbox(line, anchor="ls", direction=direction)
    else:
        box = font.getbbox(visual_order(line, direction), anchor="ls")
    return int(box[0]) - 1, int(box[1]) - 1, int(box[2]) + 1, int(box[3]) + 1


def _place(font: ImageFont.FreeTypeFont, lines: Sequence[str], direction: Direction,
           box: Box, valign: str) -> tuple[tuple[int, int], ...] | None:
    """Return where each line goes to sit centred in box, or None if they do not fit."""
    inks = [_ink(font, line, direction) for line in lines]
    pitch = max(round(1.2 * font.size),
                max(i[3] - i[1] for i in inks) + round(0.15 * font.size))
    top = min(i[1] + n * pitch for n, i in enumerate(inks))
    height = max(i[3] + n * pitch for n, i in enumerate(inks)) - top
    left, upper, right, lower = box
    if height > lower - upper or any(i[2] - i[0] > right - left for i in inks):
        return None
    spare = lower - upper - height
    y = upper - top + {"top": 0, "bottom": spare}.get(valign, spare // 2)
    return tuple(((left + right - i[0] - i[2]) // 2, y + n * pitch) for n, i in enumerate(inks))


def _choose_lines(path: Path, text: str, direction: Direction, box: Box, max_lines: int,
                  max_size: int) -> tuple[tuple[str, ...], int]:
    """Split text into lines that allow the largest font, and estimate that size."""
    ref = _font(path, _REF, _layout())
    clusters = _clusters(text)
    prefix = [0.0]
    for cluster in clusters:
        prefix.append(prefix[-1] + ref.getlength(cluster))
    ink = _ink(ref, text, direction)
    ink_h = (ink[3] - ink[1]) / _REF
    pitch = max(1.2, ink_h + 0.15)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    # A cut ends one line at `end` and starts the next at `start` (after a space).
    cuts = [(k, k + 1, False) if clusters[k] == " " else (k, k, True)
            for k in range(1, len(clusters)) if clusters[k - 1] != " "]
    best: tuple[float, float, list[tuple[int, int]]] = (-1.0, 0.0, [(0, len(clusters))])
    for count in range(1, max_lines + 1):
        for chosen in combinations(cuts, count - 1):
            starts = [0] + [c[1] for c in chosen]
            ends = [c[0] for c in chosen] + [len(clusters)]
            if any(e <= s for s, e in zip(starts, ends, strict=True)):
                continue
            widest = max(prefix[e] - prefix[s] for s, e in zip(starts, ends, strict=True))
            size = min(max_size, box_w * _REF / max(widest, 1.0),
                       box_h / ((count - 1) * pitch + ink_h))
            score = size * _LINE_PENALTY ** (count - 1)
            if any(c[2] for c in chosen):
                score *= _SPLIT_PENALTY
            # Equal sizes (capped by max_size): the most even lines win.
            if (score, -widest) > best[:2]:
                best = (score, -widest, list(zip(starts, ends, strict=True)))
    lines = tuple("".join(clusters[s:e]) for s, e in best[2])
    # Measure the chosen lines whole: shaping and kerning change the sum of the parts.
    inks = [_ink(ref, line, direction) for line in lines]
    widest_ink = max(i[2] - i[0] for i in inks)
    block = (len(lines) - 1) * pitch * _REF + max(i[3] - i[1] for i in inks)
    size = min(max_size, box_w * _REF / widest_ink, box_h * _REF / block)
    return lines, max(1, int(size))


def _cut_to_fit(font: ImageFont.FreeTypeFont, lines: Sequence[str], direction: Direction,
                box: Box, valign: str) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """Cut lines short with an ellipsis until they fit box: the last resort."""
    kept = list(lines)
    while kept:
        origins = _place(font, kept, direction, box, valign)
        if origins is not None:
            return tuple(kept), origins
        inks = [_ink(font, line, direction) for line in kept]
        wide = [n for n, i in enumerate(inks) if i[2] - i[0] > box[2] - box[0]]
        if not wide:  # too tall: drop the last line
            kept.pop()
            if kept and not kept[-1].endswith("…"):
                kept[-1] += "…"
            continue
        clusters = _clusters(kept[wide[0]].removesuffix("…"))
        if clusters:
            kept[wide[0]] = "".join(clusters[:-1]).rstrip() + "…"
        else:
            del kept[wide[0]]
    return (), ()


def _fit(path: Path, text: str, box: Box, max_lines: int, max_size: int, min_size: int,
         valign: str = "middle") -> _Block:
    """Wrap and size text to fit inside box, shrinking it and as a last resort cutting it."""
    direction = paragraph_direction(text)
    lines, size = _choose_lines(path, text, direction, box, max_lines, max_size)
    size = max(size, min_size)
    while True:
        font = _font(path, size, _layout())
        origins = _place(font, lines, direction, box, valign)
        if origins is not None:
            break
        if size <= min_size:
            lines, origins = _cut_to_fit(font, lines, direction, box, valign)
            break
        size = max(min_size, min(size - 1, int(size * 0.97)))
    if _RAQM:
        return _Block(font, lines, origins, direction)
    return _Block(font, tuple(visual_order(line, direction) for line in lines), origins, None)


def _clean(text: str | None) -> str:
    """Normalise text for one line: NFC, single spaces, at most MAX_TITLE_CHARS characters."""
    clusters = _clusters(" ".join(unicodedata.normalize("NFC", text or "").split()))
    if len(clusters) > MAX_TITLE_CHARS:
        clusters = [*clusters[:MAX_TITLE_CHARS - 1], "…"]
    return "".join(clusters)


def _date_text(when: datetime) -> str:
    """Format a local time like `14 March 2026 · 15:42`, whatever the locale."""
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year} · {when:%H:%M}"


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
    width, height = size
    if width % 2 or height % 2 or width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise ValueError(f"size: expected even width and height of at least "
                         f"{MIN_SIZE[0]}x{MIN_SIZE[1]}, found {width}x{height}")
    return width, height


def render_title_card(card: TitleCard, size: tuple[int, int] = (1280, 720),
                      fonts: FontSet | None = None, tz: tzinfo | None = None) -> Image.Image:
    """Draw the title card as an RGB image of exactly size."""
    width, height = _check_size(size)
    fonts = fonts or _default_fonts()
    when = card.created_at.astimezone(tz or festival_tz())
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    margin = round(min(width, height) * 0.075)
    gap = round(height * 0.03)
    min_size = max(8, round(min(width, height) * 0.02))

    def text(value: str, box: Box, colour: tuple[int, int, int], *, bold: bool,
             max_size: float, max_lines: int = 1, valign: str = "middle") -> None:
        if not value:
            return
        block = _fit(fonts.pick(value, bold), value, box, max_lines, round(max_size),
                     min_size, valign)
        for line, origin in zip(block.lines, block.origins, strict=True):
            draw.text(origin, line, fill=colour, font=block.font, anchor="ls",
                      direction=block.direction)

    side = margin
    logo = _load_logo(card.logo, (round(width * 0.2), round(height * 0.16))) if card.logo else None
    if logo is not None:
        image.paste(logo, (margin, margin), logo)
        side += logo.width + gap  # the festival name stays clear of the logo, centred
    top_band = (side, margin, width - side, margin + round(height * 0.09))
    bottom_band = (margin, height - margin - round(height * 0.07), width - margin, height - margin)
    centre_top = max(top_band[3], margin + (logo.height if logo else 0)) + gap
    centre = (margin, centre_top, width - margin, bottom_band[1] - gap)
    text(_clean(card.festival), top_band, FESTIVAL_COLOUR, bold=True, max_size=height)
    title, station, date = _clean(card.title), _clean(card.station_id), _date_text(when)
    if title:
        text(title, centre, TITLE_COLOUR, bold=True, max_size=height * 0.16, max_lines=3)
        footer = " · ".join(part for part in (station, date) if part) if card.footer else ""
        text(footer, bottom_band, FOOTER_COLOUR, bold=False, max_size=height)
    else:
        split = centre[1] + (centre[3] - centre[1]) * 3 // 5
        text(station, (*centre[:3], split), TITLE_COLOUR, bold=True, max_size=height * 0.13,
             max_lines=2, valign="bottom")
        text(date, (centre[0], split + gap, centre[2], centre[3]), FOOTER_COLOUR, bold=False,
             max_size=height * 0.07, valign="top")
    return image


def save_title_card(card: TitleCard, path: Path, size: tuple[int, int] = (1280, 720),
                    fonts: FontSet | None = None, tz: tzinfo | None = None) -> Path:
    """Render the card and write it to path as a PNG, atomically; return path."""
    data = io.BytesIO()
    card_image = render_title_card(card, size, fonts, tz)
    card_image.save(data, format="PNG", compress_level=1)  # read once, soon: favour speed
    write_atomic(path, data.getvalue())
    return path
