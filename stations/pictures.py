"""The kiosk's larger pictures: a phone, the TV in the hall, a child asking a grown-up.

They say what happens to a movie without a word: on the family's phone (published), or
on the big screen here (kept at the festival). Each is drawn once per size (large, then
shrunk for smooth edges) and kept; the phone and the TV tell where their screen is, so
the movie itself can be pasted into it, frame by frame.
"""

from __future__ import annotations

import functools

from PIL import Image, ImageDraw, ImageOps

from .art import INK, RGB, font

Box = tuple[int, int, int, int]
SCALE = 4  # drawn this much larger, then shrunk: smooth edges
BODY: RGB = (28, 30, 40)  # phones and TVs
GLASS: RGB = (8, 8, 12)
TRACK: RGB = (60, 66, 110)  # the empty part of a countdown


def _shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Shrink a picture drawn at SCALE to its size, smoothly."""
    return image.resize(size, Image.Resampling.LANCZOS)


def _box(box: tuple[float, float, float, float]) -> Box:
    """A box drawn at SCALE, in the shrunk picture's pixels."""
    x0, y0, x1, y1 = (round(v / SCALE) for v in box)
    return x0, y0, x1, y1


@functools.lru_cache(maxsize=8)
def phone(height: int) -> tuple[Image.Image, Box]:
    """A phone standing up, its screen dark; and where its screen is."""
    width = round(height * 0.56)
    w, h = width * SCALE, height * SCALE
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=w * 0.16, fill=(*BODY, 255),
                           outline=(*INK, 255), width=max(SCALE, w // 28))
    screen = (w * 0.09, h * 0.1, w * 0.91, h * 0.86)
    draw.rectangle(screen, fill=(*GLASS, 255))
    draw.rounded_rectangle((w * 0.36, h * 0.045, w * 0.64, h * 0.065), radius=h * 0.01,
                           fill=(110, 110, 125, 255))
    r = w * 0.06
    draw.ellipse((w / 2 - r, h * 0.93 - r, w / 2 + r, h * 0.93 + r), outline=(110, 110, 125, 255),
                 width=max(SCALE, w // 40))
    return _shrink(image, (width, height)), _box(screen)


def audience(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float],
             shade: RGB, edge: RGB) -> None:
    """Two rows of people seen from behind, filling box: a hall watching."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    for count, r, cy in ((6, h * 0.17, y0 + h * 0.3), (5, h * 0.21, y0 + h * 0.62)):
        step = w / count
        for k in range(count):
            cx = x0 + step * (k + 0.5)
            shoulders = (cx - r * 1.9, cy + r * 0.8, cx + r * 1.9, cy + r * 4)
            draw.ellipse(shoulders, fill=(*shade, 255), outline=(*edge, 255),
                         width=max(SCALE, round(r / 6)))
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*shade, 255),
                         outline=(*edge, 255), width=max(SCALE, round(r / 6)))


@functools.lru_cache(maxsize=8)
def tv_hall(width: int, shade: RGB, edge: RGB) -> tuple[Image.Image, Box]:
    """The big TV on its stand with people watching it; and where its screen is."""
    height = round(width * 0.86)
    w, h = width * SCALE, height * SCALE
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    bezel = w * 0.025
    outer = (w * 0.1, w * 0.02, w * 0.9, w * 0.02 + w * 0.75 * 9 / 16 + 2 * bezel)
    draw.polygon([(w * 0.44, outer[3]), (w * 0.56, outer[3]), (w * 0.6, w * 0.56),
                  (w * 0.4, w * 0.56)], fill=(*BODY, 255))  # the stand
    draw.rounded_rectangle(outer, radius=w * 0.025, fill=(*BODY, 255), outline=(*INK, 255),
                           width=max(SCALE, w // 90))
    screen = (outer[0] + bezel, outer[1] + bezel, outer[2] - bezel, outer[3] - bezel)
    draw.rectangle(screen, fill=(*GLASS, 255))
    audience(draw, (0, w * 0.56, w, w * 0.9), shade, edge)
    return _shrink(image, (width, height)), _box(screen)


@functools.lru_cache(maxsize=4)
def grown_up(size: int) -> Image.Image:
    """A child holding a grown-up's hand and asking "?": ask your grown-up."""
    s = size * SCALE
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    ink = (*INK, 255)
    line = max(SCALE, s // 26)

    def person(cx: float, head: float, r: float, hip: float, foot: float, hand: tuple[float, float],
               other: tuple[float, float]) -> None:
        """A person standing at cx, one hand at hand, the other at other."""
        draw.ellipse((cx - r, head - r, cx + r, head + r), fill=ink)
        neck = head + r * 1.25
        draw.rounded_rectangle((cx - r * 0.95, neck, cx + r * 0.95, hip), radius=r * 0.6,
                               fill=ink)
        for dx in (-0.5, 0.5):
            draw.line((cx + r * dx, hip - r * 0.2, cx + r * dx * 1.6, foot), fill=ink,
                      width=line)
        shoulder = neck + r * 0.35
        draw.line((cx, shoulder, *hand), fill=ink, width=line)
        draw.line((cx, shoulder, *other), fill=ink, width=line)

    hands = (s * 0.5, s * 0.62)
    person(s * 0.7, s * 0.2, s * 0.085, s * 0.66, s * 0.97, hands, (s * 0.86, s * 0.64))
    person(s * 0.32, s * 0.56, s * 0.065, s * 0.8, s * 0.97, hands, (s * 0.18, s * 0.74))
    draw.ellipse((hands[0] - line, hands[1] - line, hands[0] + line, hands[1] + line), fill=ink)
    bubble = (s * 0.04, s * 0.06, s * 0.46, s * 0.4)  # the child asks
    draw.polygon([(s * 0.24, s * 0.36), (s * 0.34, s * 0.36), (s * 0.3, s * 0.47)], fill=ink)
    draw.ellipse(bubble, fill=ink)
    draw.text(((bubble[0] + bubble[2]) / 2, (bubble[1] + bubble[3]) / 2), "?",
              font=font(int(s * 0.26)), fill=(*BODY, 255), anchor="mm")
    return _shrink(image, (size, size))


@functools.lru_cache(maxsize=4)
def hourglass(size: int) -> Image.Image:
    """An hourglass: when the time runs out, this is what happens."""
    s = size * SCALE
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    ink = (*INK, 255)
    bar = s * 0.09
    draw.rounded_rectangle((s * 0.15, 0, s * 0.85, bar), radius=bar / 3, fill=ink)
    draw.rounded_rectangle((s * 0.15, s - bar, s * 0.85, s), radius=bar / 3, fill=ink)
    glass = max(SCALE, s // 20)
    top, bottom, mid = bar, s - bar, s / 2
    draw.line([(s * 0.24, top), (s * 0.47, mid), (s * 0.24, bottom)], fill=ink, width=glass)
    draw.line([(s * 0.76, top), (s * 0.53, mid), (s * 0.76, bottom)], fill=ink, width=glass)
    sand = (*INK, 200)
    draw.polygon([(s * 0.33, top + s * 0.14), (s * 0.67, top + s * 0.14), (s * 0.5, mid)],
                 fill=sand)
    draw.polygon([(s * 0.5, bottom - s * 0.16), (s * 0.7, bottom - s * 0.02),
                  (s * 0.3, bottom - s * 0.02)], fill=sand)
    return _shrink(image, (size, size))


@functools.lru_cache(maxsize=4)
def arrow(length: int, colour: RGB) -> Image.Image:
    """A fat arrow pointing right (from the phone to the code it scans)."""
    w, h = length * SCALE, length * SCALE // 2
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, h * 0.32), (w * 0.58, h * 0.32), (w * 0.58, h * 0.05), (w, h * 0.5),
                  (w * 0.58, h * 0.95), (w * 0.58, h * 0.68), (0, h * 0.68)], fill=(*colour, 255))
    return _shrink(image, (length, length // 2))


def show_in(image: Image.Image, screen: Box, movie: Image.Image | None) -> None:
    """Paste movie into screen (a box of image), cropped to fill it."""
    if movie is None:
        return
    x0, y0, x1, y1 = screen
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    picture = ImageOps.fit(movie, (x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
    image.paste(picture, (x0, y0))


def countdown(draw: ImageDraw.ImageDraw, box: Box, share: float, fill: RGB = INK) -> None:
    """A bar that is full at share 1 and empty at 0, draining from its right end."""
    x0, y0, x1, y1 = box
    radius = (y1 - y0) // 2
    draw.rounded_rectangle(box, radius=radius, fill=TRACK)
    right = x0 + round((x1 - x0) * max(0.0, min(1.0, share)))
    if right > x0:
        draw.rounded_rectangle((x0, y0, right, y1), radius=min(radius, (right - x0) // 2),
                               fill=fill)
