"""The end of a movie, in pictures: the publish question and the two done screens.

The question: the movie plays in a loop while two cards ask where it goes -- the
family's phone (green, the GO button) or the TV in the hall (red, the UNDO button), in
the buttons' order -- with a child asking a grown-up beside it. The countdown runs in
the TV card with an hourglass: when nobody answers, the movie stays at the festival.

Done, published: the movie's code, its QR code (the public movie page) and a phone
pointing at it. Done, kept at the festival: the TV in the hall playing the movie; no
code, no QR code. What does not change from frame to frame is drawn once and kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import qrcode
from PIL import Image, ImageDraw

from .art import BACKGROUND, COLOURS, INK, RGB, button, font
from .flow import Action
from .pictures import Box, arrow, grown_up, hourglass, phone, tv_hall

PHONE, TV = Action.GO, Action.UNDO  # the buttons that answer "where does it go?"


def darker(colour: RGB, share: float) -> RGB:
    """colour with only share of its light."""
    r, g, b = (int(c * share) for c in colour)
    return r, g, b


@dataclass(frozen=True, slots=True)
class Card:
    """A card in a button's colour: a picture with a screen, and the button under it."""

    box: Box
    screen: Box  # where the movie shows, in the whole picture's pixels


def _card(image: Image.Image, box: Box, action: Action, margin: int) -> tuple[int, int]:
    """Draw the card's face and its button; return the top and the bottom of its free room."""
    x0, y0, x1, y1 = box
    colour = COLOURS[action]
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(box, radius=margin, fill=colour, outline=darker(colour, 0.6),
                           width=max(3, margin // 6))
    size = int(min((x1 - x0) * 0.34, (y1 - y0) * 0.2))
    knob = button("phone" if action is PHONE else "tv", colour, size)
    left, top = (x0 + x1 - size) // 2, y1 - margin - size
    ring = max(3, size // 16)  # a dark ring: the button stands out of its own colour
    draw.ellipse((left - ring, top - ring, left + size + ring, top + size + ring),
                 fill=darker(colour, 0.55))
    image.paste(knob, (left, top), knob)
    return y0 + margin, top


@dataclass(frozen=True, slots=True)
class Question:
    """The publish question, laid out for one stage size; `base` is its unchanging part."""

    base: Image.Image
    phone: Card
    tv: Card
    preview: Box
    countdown: Box


def question(stage: tuple[int, int]) -> Question:
    """Lay out and draw the question's unchanging part for a stage of this size."""
    w, h = stage
    image = Image.new("RGB", stage, BACKGROUND)
    m = max(8, int(w * 0.025))
    cw, ch = int((w * 0.6 - 3 * m) / 2), h - 2 * m
    cards = []
    for i, action in enumerate((PHONE, TV)):
        box = (m + i * (cw + m), m, m + i * (cw + m) + cw, m + ch)
        top, bottom = _card(image, box, action, m)
        if action is PHONE:
            picture, screen = phone(int((bottom - top) * 0.86))
        else:
            picture, screen = tv_hall(int(cw * 0.9), darker(COLOURS[TV], 0.45),
                                      COLOURS[TV])
        left = (box[0] + box[2] - picture.width) // 2
        image.paste(picture, (left, top), picture)
        screen = (screen[0] + left, screen[1] + top, screen[2] + left, screen[3] + top)
        cards.append((box, screen, top + picture.height, bottom))
    # The countdown lives in the TV card, after an hourglass: what happens when time is up.
    box, _, room_top, room_bottom = cards[1]
    size = int(min(cw * 0.2, (room_bottom - room_top) * 0.8))
    row = (room_top + room_bottom) // 2
    glass = hourglass(size)
    image.paste(glass, (box[0] + m, row - size // 2), glass)
    bar = max(8, size // 3)
    countdown = (box[0] + m * 2 + size, row - bar // 2, box[2] - m, row + bar // 2)
    # Right: the movie itself, big, and a child asking a grown-up.
    right = cards[1][0][2] + m
    pw = w - m - right
    ph = min(int(pw * 9 / 16), int(h * 0.5))
    pw = min(pw, int(ph * 16 / 9))
    preview = (right + (w - m - right - pw) // 2, m, right + (w - m - right - pw) // 2 + pw,
               m + ph)
    draw = ImageDraw.Draw(image)
    draw.rectangle((preview[0] - 3, preview[1] - 3, preview[2] + 2, preview[3] + 2), fill=INK)
    size = min(w - m - right, h - m - preview[3] - m)
    asking = grown_up(size)
    image.paste(asking, ((right + w - m - size) // 2, preview[3] + m // 2 + (h - m - preview[3]
                                                                         - size) // 2), asking)
    return Question(image, Card(cards[0][0], cards[0][1]), Card(cards[1][0], cards[1][1]),
                    preview, countdown)


@dataclass(frozen=True, slots=True)
class Stays:
    """Done, kept at the festival: the TV card, big; `base` is its unchanging part."""

    base: Image.Image
    screen: Box


def stays(stage: tuple[int, int]) -> Stays:
    """Draw "it will play here, on the big screen" for a stage of this size."""
    w, h = stage
    image = Image.new("RGB", stage, BACKGROUND)
    m = max(8, int(h * 0.04))
    ch = int(h * 0.84)
    cw = min(int(w * 0.6), int(ch * 1.05))
    box = ((w - cw) // 2, m, (w + cw) // 2, m + ch)
    draw = ImageDraw.Draw(image)
    colour = COLOURS[TV]
    draw.rounded_rectangle(box, radius=m, fill=colour, outline=darker(colour, 0.6),
                           width=max(3, m // 6))
    picture, screen = tv_hall(int(cw * 0.9), darker(colour, 0.45), colour)
    left, top = (w - picture.width) // 2, box[1] + (ch - picture.height) // 2
    image.paste(picture, (left, top), picture)
    return Stays(image, (screen[0] + left, screen[1] + top, screen[2] + left, screen[3] + top))


def qr_picture(url: str, size: int) -> Image.Image:
    """A QR code of url, at most size pixels, each module a whole number of pixels."""
    code = qrcode.QRCode(border=2, box_size=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(url)
    code.make(fit=True)
    made = code.make_image(fill_color="black", back_color="white").get_image()
    picture: Image.Image = made.convert("RGB")
    scale = max(1, size // picture.width)
    return picture.resize((picture.width * scale, picture.height * scale),
                          Image.Resampling.NEAREST)


@dataclass(frozen=True, slots=True)
class Published:
    """Done, published: the code, a phone pointing at the QR code; its unchanging part."""

    base: Image.Image
    screen: Box  # the phone's screen, where the movie plays


def published(stage: tuple[int, int], code: str, url: str) -> Published:
    """Draw the code, the QR code of url and a phone pointing at it, for a stage this size."""
    w, h = stage
    image = Image.new("RGB", stage, BACKGROUND)
    draw = ImageDraw.Draw(image)
    m = max(8, int(w * 0.03))
    qr = qr_picture(url, min(int(h * 0.72), int(w * 0.4)))
    left = w - m - qr.width
    image.paste(qr, (left, max(m // 2, (int(h * 0.9) - qr.height) // 2)))
    text_x = left // 2
    draw.text((text_x, int(h * 0.2)), code, font=font(int(h * 0.19)), fill=INK, anchor="mm")
    picture, screen = phone(int(h * 0.5))
    gap = int(w * 0.03)
    length = max(16, min(int(w * 0.16), left - gap * 2 - picture.width - m))
    px = text_x - (picture.width + gap + length) // 2
    py = int(h * 0.36)
    image.paste(picture, (px, py), picture)
    pointer = arrow(length, COLOURS[PHONE])
    image.paste(pointer, (px + picture.width + gap, py + (picture.height - pointer.height) // 2),
                pointer)
    return Published(image, (screen[0] + px, screen[1] + py, screen[2] + px, screen[3] + py))
