"""Text on the title card: the font with its glyphs, right-to-left order, wrapping to fit."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, groupby
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFont, features

from moviepkg.manifest import MAX_TITLE_CHARS

from .fonts import FontSet

_RAQM = features.check("raqm")
_REF = 100  # font size at which line breaks are chosen
_LINE_PENALTY = 0.9  # each extra title line must buy 10% more font size
_SPLIT_PENALTY = 0.7  # breaking inside a word must buy 30% more
_MISSING = "\uffff"  # a noncharacter: every font draws its .notdef box for it

Direction = Literal["ltr", "rtl"]
Box = tuple[int, int, int, int]


def pick_font(fonts: FontSet, text: str, bold: bool = False) -> Path:
    """Return the first font of the set that has every glyph of text, else the one with
    most (the earlier of equals)."""
    paths = fonts.bold if bold else fonts.regular
    chars = [ch for ch in set(text) if unicodedata.category(ch) not in ("Zs", "Cc", "Cf")]
    best, most = paths[0], -1
    for path in paths:  # in order of preference: the first complete one needs no rival
        found = sum(_has_glyph(path, ch) for ch in chars)
        if found == len(chars):
            return path
        if found > most:
            best, most = path, found
    return best


@functools.lru_cache(maxsize=256)  # a card tries a few sizes of each of its texts
def _font(path: Path, size: int, layout: ImageFont.Layout) -> ImageFont.FreeTypeFont:
    """Open a font at size, once."""
    return ImageFont.truetype(str(path), size, layout_engine=layout)


@functools.lru_cache(maxsize=8192)
def _glyph_print(path: Path, ch: str) -> bytes:
    """Return what ch looks like in the font, to compare with its missing-glyph box."""
    font = _font(path, 24, ImageFont.Layout.BASIC)  # no shaping: one character, one glyph
    left, top, right, bottom = (int(v) for v in font.getbbox(ch))
    image = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(image).text((-left, -top), ch, font=font, fill=255)
    return repr(image.size).encode() + image.tobytes()


def _has_glyph(path: Path, ch: str) -> bool:
    """Tell whether the font draws ch as itself rather than as its missing-glyph box."""
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
    """Return a cluster's direction class: R(ight), L(eft), D(igit) or N(eutral)."""
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
    """Reverse a right-to-left run, keeping each number (15:42, 3.5, 1,000) in order."""
    digit = [_strong(c) == "D" for c in run]
    for i in range(1, len(run) - 1):  # one separator between digits belongs to the number
        if digit[i - 1] and digit[i + 1] and unicodedata.bidirectional(run[i][0]) == "CS":
            digit[i] = True
    pieces = [[c for _, c in group] for _, group in groupby(zip(digit, run, strict=True),
                                                              key=lambda dc: dc[0])]
    numbers = [is_digit for is_digit, _ in groupby(digit)]
    return [c for piece, number in zip(pieces[::-1], numbers[::-1], strict=True)
            for c in (piece if number else piece[::-1])]


@dataclass(frozen=True, slots=True)
class _Block:
    """Lines of text fitted into a box, ready to draw."""

    font: ImageFont.FreeTypeFont
    lines: tuple[str, ...]  # in visual order already when raqm is missing
    origins: tuple[tuple[int, int], ...]  # left end of each line's baseline
    direction: Direction | None  # for raqm; None when lines are in visual order


def _layout() -> ImageFont.Layout:
    """Return the layout engine: libraqm shapes and orders text; BASIC draws it as given."""
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


def clean_text(text: str | None) -> str:
    """Normalise text for one line: NFC, single spaces, at most MAX_TITLE_CHARS characters."""
    clusters = _clusters(" ".join(unicodedata.normalize("NFC", text or "").split()))
    if len(clusters) > MAX_TITLE_CHARS:
        clusters = [*clusters[:MAX_TITLE_CHARS - 1], "…"]
    return "".join(clusters)


def draw_text(draw: ImageDraw.ImageDraw, fonts: FontSet, value: str, box: Box,
              colour: tuple[int, int, int], *, bold: bool, max_size: float, min_size: int,
              max_lines: int = 1, valign: str = "middle") -> None:
    """Draw value in box as large as fits (at most max_size), wrapped onto max_lines."""
    if not value:
        return
    block = _fit(pick_font(fonts, value, bold), value, box, max_lines, round(max_size), min_size,
                 valign)
    for line, origin in zip(block.lines, block.origins, strict=True):
        draw.text(origin, line, fill=colour, font=block.font, anchor="ls",
                  direction=block.direction)
