"""Compose each kiosk screen as one picture (Pillow only; the Tk window just shows it)."""

from __future__ import annotations

import re

import qrcode
from PIL import Image, ImageDraw

from .art import BACKGROUND, COLOURS, INK, SYMBOLS, button, font, pulse, zeds
from .flow import Action, Screen, View

ONION_ALPHA = 0.35
# "Identify": two bright colours swapped four times a second (two flashes a second,
# under the three a second that can trouble people with photosensitive epilepsy).
IDENTIFY_COLOURS = ((255, 214, 0), (0, 200, 255))
IDENTIFY_SWAPS_PER_SECOND = 4
ASLEEP = (112, 120, 190)  # the out-of-order camera: a night colour, calm
MENDING = (230, 120, 60)
# Which buttons are lit on each screen (the others are dimmed).
LIT: dict[Screen, tuple[Action, ...]] = {
    Screen.ATTRACT: (Action.GO,),
    Screen.SHOOTING: (Action.GO, Action.UNDO, Action.PLAY, Action.ONION, Action.FINISH),
    Screen.PLAYING: (),
    Screen.STILL_THERE: tuple(Action),
    Screen.FINISH: (Action.GO, Action.UNDO, Action.PLAY),
    Screen.DONE: tuple(Action),
    Screen.HELP: (),
    Screen.OUT_OF_ORDER: (),
}


def station_number(station_id: str) -> str:
    """What a helper looks for: the number of `st-3`, or the whole id if it has none."""
    found = re.search(r"(\d+)$", station_id)
    return (found.group(1).lstrip("0") or "0") if found else station_id


def fit(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    """Scale image to fit box, keeping its shape."""
    ratio = min(box[0] / image.width, box[1] / image.height)
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    return image if image.size == size else image.resize(size, Image.Resampling.BILINEAR)


class Renderer:
    """Draws screens of a given size; keeps what it can between frames."""

    def __init__(self, size: tuple[int, int], website_url: str = "") -> None:
        self.size = size
        self.website_url = website_url.rstrip("/")
        w, h = size
        self.bar_height = int(h * 0.2)
        self.stage = (w, h - self.bar_height)
        self._qr: tuple[str, Image.Image] | None = None

    def _centre(self, image: Image.Image, picture: Image.Image) -> Image.Image:
        picture = fit(picture, self.stage)
        x = (self.stage[0] - picture.width) // 2
        y = (self.stage[1] - picture.height) // 2
        image.paste(picture, (x, y))
        return image

    def _bar(self, image: Image.Image, view: View, t: float) -> None:
        w, h = self.size
        draw = ImageDraw.Draw(image)
        top = h - self.bar_height
        draw.rectangle((0, top, w, h), fill=(24, 28, 58))
        lit = LIT[view.screen]
        size = int(self.bar_height * 0.7)
        slots = len(Action)
        gap = (w * 0.62 - slots * size) / (slots + 1)
        for i, action in enumerate(Action):
            kind = SYMBOLS[action]
            if view.screen is Screen.FINISH and action in (Action.GO, Action.UNDO):
                kind = "share" if action is Action.GO else "home"
            dim = action not in lit or (view.busy and action is Action.GO)
            icon = button(kind, COLOURS[action], size, dim)
            x = int(gap + i * (size + gap))
            image.paste(icon, (x, top + (self.bar_height - size) // 2), icon)
        if view.screen in (Screen.SHOOTING, Screen.PLAYING, Screen.FINISH, Screen.STILL_THERE):
            left = int(w * 0.66)
            right = w - int(w * 0.03)
            y = top + self.bar_height // 2
            draw.text((left, y - self.bar_height * 0.12), f"{view.frames}",
                      font=font(int(self.bar_height * 0.35)), fill=INK, anchor="ls")
            fill = (right - left) * min(1.0, view.frames / max(1, view.limit))
            bar = (left, y + self.bar_height * 0.05, right, y + self.bar_height * 0.22)
            draw.rounded_rectangle(bar, radius=6, fill=(60, 66, 110))
            if fill > 0:
                near_end = view.frames >= view.limit * 0.9
                draw.rounded_rectangle((left, bar[1], left + fill, bar[3]), radius=6,
                                       fill=(235, 90, 60) if near_end else (255, 190, 92))

    def draw(self, view: View, t: float, live: Image.Image | None = None,
             onion: Image.Image | None = None, played: Image.Image | None = None) -> Image.Image:
        """The whole screen for `view` at time t."""
        image = Image.new("RGB", self.size, BACKGROUND)
        screen = view.screen
        if screen is Screen.SHOOTING and live is not None:
            picture = fit(live, self.stage)
            if view.onion and onion is not None:
                ghost = onion.resize(picture.size, Image.Resampling.BILINEAR)
                picture = Image.blend(picture, ghost, ONION_ALPHA)
            self._centre(image, picture)
            if view.busy:  # a flash and a shutter: the press was heard
                overlay = Image.new("RGB", self.stage, (255, 255, 255))
                stage = image.crop((0, 0, *self.stage))
                image.paste(Image.blend(stage, overlay, 0.45), (0, 0))
                self._big(image, "camera", COLOURS[Action.GO], 0.35)
        elif screen is Screen.PLAYING and played is not None:
            self._centre(image, played)
        elif screen is Screen.ATTRACT:
            grow = 0.45 + 0.08 * pulse(t)
            self._big(image, "camera", COLOURS[Action.GO], grow)
        elif screen is Screen.STILL_THERE:
            self._big(image, "question", COLOURS[Action.FINISH], 0.5 + 0.05 * pulse(t))
            self._countdown(image, view)
        elif screen is Screen.FINISH:
            self._choice(image)
            self._countdown(image, view)
        elif screen is Screen.DONE:
            self._done(image, view)
        elif screen is Screen.HELP:
            self._big(image, "helper", (230, 120, 60), 0.5)
            draw = ImageDraw.Draw(image)
            draw.text((self.stage[0] // 2, int(self.stage[1] * 0.9)), "Please call a helper",
                      font=font(int(self.stage[1] * 0.07)), fill=INK, anchor="mm")
        elif screen is Screen.OUT_OF_ORDER:
            self._out_of_order(image, t)
        self._bar(image, view, t)
        return image

    def _out_of_order(self, image: Image.Image, t: float) -> None:
        """A sleeping camera with Zs rising, and the tools that mend it: no words needed."""
        w, h = self.stage
        size = int(min(self.stage) * 0.5 * 1.6) // 16 * 16
        left, top = (w - size) // 2, (h - size) // 2
        image.paste(button("asleep", ASLEEP, size), (left, top), button("asleep", ASLEEP, size))
        zeds(ImageDraw.Draw(image), (left + size * 0.88, top + size * 0.3), size * 0.22, t,
             INK)
        tools = int(size * 0.34) // 16 * 16
        icon = button("tools", MENDING, tools)
        image.paste(icon, (left + size - tools // 3, top + size - tools * 2 // 3), icon)

    def identify(self, station_id: str, t: float) -> Image.Image:
        """The whole screen, flashing, with the station's number huge: find it in the hall."""
        w, h = self.size
        phase = int(t * IDENTIFY_SWAPS_PER_SECOND) % 2
        image = Image.new("RGB", self.size, IDENTIFY_COLOURS[phase])
        draw = ImageDraw.Draw(image)
        ink = (20, 20, 40)
        number = station_number(station_id)
        size = int(h * 0.72)
        while size > 20 and draw.textlength(number, font=font(size)) > w * 0.9:
            size = int(size * 0.85)
        draw.text((w // 2, int(h * 0.44)), number, font=font(size), fill=ink, anchor="mm")
        if number != station_id:
            draw.text((w // 2, int(h * 0.9)), station_id, font=font(int(h * 0.08)), fill=ink,
                      anchor="mm")
        edge = max(8, h // 30)  # a frame in the other colour: it flashes at the edges too
        draw.rectangle((0, 0, w - 1, h - 1), outline=IDENTIFY_COLOURS[1 - phase], width=edge)
        return image

    def _big(self, image: Image.Image, kind: str, colour: tuple[int, int, int],
             share: float) -> None:
        size = int(min(self.stage) * share * 1.6) // 16 * 16  # few sizes: the cache holds them
        icon = button(kind, colour, size)
        image.paste(icon, ((self.stage[0] - size) // 2, (self.stage[1] - size) // 2), icon)

    def _countdown(self, image: Image.Image, view: View) -> None:
        if view.seconds_left is None:
            return
        draw = ImageDraw.Draw(image)
        w = self.stage[0]
        y = int(self.stage[1] * 0.94)
        draw.rounded_rectangle((w * 0.2, y, w * 0.8, y + 14), radius=7, fill=(60, 66, 110))
        share = min(1.0, view.seconds_left / 60.0)
        draw.rounded_rectangle((w * 0.2, y, w * (0.2 + 0.6 * share), y + 14), radius=7,
                               fill=INK)

    def _choice(self, image: Image.Image) -> None:
        size = int(self.stage[1] * 0.55)
        for i, (kind, action) in enumerate((("share", Action.GO), ("home", Action.UNDO))):
            icon = button(kind, COLOURS[action], size)
            x = int(self.stage[0] * (0.3 if i == 0 else 0.7)) - size // 2
            image.paste(icon, (x, (self.stage[1] - size) // 2), icon)

    def _done(self, image: Image.Image, view: View) -> None:
        draw = ImageDraw.Draw(image)
        w, h = self.stage
        code = view.code or ""
        text_x = w // 2
        if self.website_url and code:
            url = f"{self.website_url}/m/{code}"
            qr = self._qr_image(url, min(int(h * 0.7), int(w * 0.4)))
            left = w - int(w * 0.04) - qr.width
            image.paste(qr, (left, (h - qr.height) // 2))
            text_x = left // 2
            draw.text((text_x, int(h * 0.66)), url.split("://", 1)[-1],
                      font=font(int(h * 0.045)), fill=(186, 196, 226), anchor="mm")
        draw.text((text_x, int(h * 0.42)), code, font=font(int(h * 0.2)), fill=INK, anchor="mm")

    def _qr_image(self, url: str, size: int) -> Image.Image:
        if self._qr is None or self._qr[0] != url:
            code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
            code.add_data(url)
            code.make(fit=True)
            picture = code.make_image(fill_color="black", back_color="white").get_image()
            self._qr = (url, picture.convert("RGB").resize((size, size), Image.Resampling.NEAREST))
        return self._qr[1]
