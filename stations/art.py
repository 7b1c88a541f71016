"""The kiosk's pictures, drawn with Pillow at start-up: no words needed to use it.

Every action has the colour of its arcade button and a symbol; the screens are
composed from the live view, these icons and a few big shapes.
"""

from __future__ import annotations

import functools
import math

from PIL import Image, ImageDraw, ImageFont

from .flow import Action

RGB = tuple[int, int, int]
BACKGROUND: RGB = (36, 42, 84)
INK: RGB = (255, 247, 230)
COLOURS: dict[Action, RGB] = {Action.GO: (46, 170, 80), Action.UNDO: (220, 60, 50),
                              Action.PLAY: (50, 120, 220), Action.ONION: (235, 235, 235),
                              Action.FINISH: (245, 200, 40)}
FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
              "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf")


@functools.lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A bold font of about `size` pixels (Pillow's own if no system font is there)."""
    for path in FONT_FILES:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _symbol(draw: ImageDraw.ImageDraw, kind: str, box: tuple[float, float, float, float],
            ink: RGB) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    line = max(3, int(w / 12))
    if kind == "camera":
        draw.rounded_rectangle((x0, y0 + h * .25, x1, y1 - h * .1), radius=w * .1, fill=ink)
        draw.rectangle((cx - w * .15, y0 + h * .12, cx + w * .15, y0 + h * .3), fill=ink)
        r = w * .2
        draw.ellipse((cx - r, cy + h * .07 - r, cx + r, cy + h * .07 + r), fill=(40, 40, 40))
    elif kind == "undo":  # an arrow turning back
        draw.arc((x0 + w * .15, y0 + h * .15, x1 - w * .15, y1 - h * .15), 200, 520,
                 fill=ink, width=line)
        ax, ay = x0 + w * .18, cy - h * .05
        draw.polygon([(ax - w * .15, ay), (ax + w * .15, ay), (ax, ay + h * .25)], fill=ink)
    elif kind == "play":
        draw.polygon([(x0 + w * .25, y0 + h * .15), (x0 + w * .25, y1 - h * .15),
                      (x1 - w * .12, cy)], fill=ink)
    elif kind == "onion":  # two frames, one see-through over the other: onion skin on
        draw.rounded_rectangle((x0 + w * .05, y0 + h * .15, x1 - w * .3, y1 - h * .3),
                               radius=w * .06, outline=ink, width=line)
        draw.rounded_rectangle((x0 + w * .3, y0 + h * .3, x1 - w * .05, y1 - h * .15),
                               radius=w * .06, fill=ink)
    elif kind == "onion-off":  # the same, without the see-through frame: onion skin off
        draw.rounded_rectangle((x0 + w * .3, y0 + h * .3, x1 - w * .05, y1 - h * .15),
                               radius=w * .06, fill=ink)
    elif kind == "finish":  # a chequered flag
        draw.line((x0 + w * .2, y0 + h * .1, x0 + w * .2, y1 - h * .05), fill=ink, width=line)
        size = w * .15
        for row in range(3):
            for col in range(4):
                if (row + col) % 2 == 0:
                    fx, fy = x0 + w * .22 + col * size, y0 + h * .12 + row * size
                    draw.rectangle((fx, fy, fx + size, fy + size), fill=ink)
        draw.rectangle((x0 + w * .22, y0 + h * .12, x0 + w * .22 + 4 * size,
                        y0 + h * .12 + 3 * size), outline=ink, width=max(2, line // 2))
    elif kind == "phone":  # the family's phone: the movie goes to the website
        draw.rounded_rectangle((cx - w * .24, y0 + h * .02, cx + w * .24, y1 - h * .02),
                               radius=w * .08, outline=ink, width=line)
        draw.rectangle((cx - w * .15, y0 + h * .14, cx + w * .15, y1 - h * .2), fill=ink)
    elif kind == "tv":  # the big screen in the hall: the movie stays at the festival
        draw.rounded_rectangle((x0, y0 + h * .12, x1, y1 - h * .2), radius=w * .05,
                               outline=ink, width=line)
        draw.rectangle((x0 + w * .14, y0 + h * .25, x1 - w * .14, y1 - h * .33), fill=ink)
        draw.line((cx - w * .2, y1 - h * .04, cx + w * .2, y1 - h * .04), fill=ink, width=line)
        draw.line((cx, y1 - h * .2, cx, y1 - h * .04), fill=ink, width=line)
    elif kind == "question":
        draw.text((cx, cy), "?", font=font(int(h * .9)), fill=ink, anchor="mm")
    elif kind == "helper":  # a person waving
        r = w * .12
        draw.ellipse((cx - r, y0 + h * .08, cx + r, y0 + h * .08 + 2 * r), fill=ink)
        draw.line((cx, y0 + h * .35, cx, y0 + h * .7), fill=ink, width=line * 2)
        draw.line((cx, y0 + h * .45, cx + w * .3, y0 + h * .2), fill=ink, width=line)
        draw.line((cx, y0 + h * .45, cx - w * .25, y0 + h * .6), fill=ink, width=line)
        draw.line((cx, y0 + h * .7, cx - w * .15, y1 - h * .05), fill=ink, width=line)
        draw.line((cx, y0 + h * .7, cx + w * .15, y1 - h * .05), fill=ink, width=line)
    elif kind == "asleep":  # the camera with its eye shut: it is not working now
        draw.rounded_rectangle((x0, y0 + h * .25, x1, y1 - h * .1), radius=w * .1, fill=ink)
        draw.rectangle((cx - w * .15, y0 + h * .12, cx + w * .15, y0 + h * .3), fill=ink)
        r, ey = w * .24, cy + h * .07
        draw.ellipse((cx - r, ey - r, cx + r, ey + r), fill=(40, 40, 40))
        lid = (cx - r * .7, ey - r * .75, cx + r * .7, ey + r * .45)
        draw.arc(lid, 20, 160, fill=ink, width=max(2, line // 2))
        for k in (-0.45, 0.0, 0.45):  # lashes under the shut lid
            lx = cx + r * .62 * k
            draw.line((lx, ey + r * .42, lx + r * .18 * k, ey + r * .68), fill=ink,
                      width=max(2, line // 3))
    elif kind == "tools":  # a wrench and a screwdriver, crossed: being mended
        draw.line((x0 + w * .14, y0 + h * .14, cx + w * .06, cy + h * .06), fill=ink,
                  width=max(2, line // 2))
        draw.line((cx + w * .08, cy + h * .08, x1 - w * .1, y1 - h * .1), fill=ink,
                  width=line * 2)
        draw.line((x0 + w * .14, y1 - h * .14, x1 - w * .34, y0 + h * .34), fill=ink,
                  width=int(line * 1.4))
        r, hx, hy = w * .17, x1 - w * .27, y0 + h * .27
        draw.arc((hx - r, hy - r, hx + r, hy + r), 350, 640, fill=ink, width=line)


def zeds(draw: ImageDraw.ImageDraw, corner: tuple[float, float], size: float, t: float,
         ink: RGB) -> None:
    """Three Zs drifting up from corner, the sign of sleep (drawn, not a font's letters)."""
    for k in range(3):
        rise = (t * 0.35 + k / 3) % 1.0  # each Z rises, then starts again
        z = size * (0.45 + 0.3 * k / 2)
        x = corner[0] + size * (0.25 + 0.55 * k)
        y = corner[1] - size * (0.2 + 1.6 * rise)
        width = max(2, int(z / 7))
        draw.line([(x, y), (x + z, y), (x, y + z), (x + z, y + z)], fill=ink, width=width,
                  joint="curve")


SYMBOLS = {Action.GO: "camera", Action.UNDO: "undo", Action.PLAY: "play",
           Action.ONION: "onion", Action.FINISH: "finish"}


@functools.lru_cache(maxsize=128)
def button(kind: str, colour: RGB, size: int, dim: bool = False) -> Image.Image:
    """A round arcade button in its colour with a symbol on it."""
    scale = 4  # draw large, shrink: smooth edges
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    fill = tuple(int(c * .45) for c in colour) if dim else colour
    draw.ellipse((0, 0, big - 1, big - 1), fill=(*fill, 255))
    draw.ellipse((big * .06, big * .06, big * .94, big * .94), outline=(255, 255, 255, 90),
                 width=max(2, big // 40))
    ink: RGB = (40, 40, 40) if sum(colour) > 600 else (255, 255, 255)
    _symbol(draw, kind, (big * .25, big * .25, big * .75, big * .75), ink)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def pulse(t: float) -> float:
    """0..1..0 once a second and a half, for things that breathe."""
    return 0.5 + 0.5 * math.sin(t * 4.2)
