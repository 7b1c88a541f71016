"""Compose each kiosk screen as one picture (Pillow only; the Tk window just shows it).

The button bar at the bottom matches the five arcade buttons, in their colours and
order; a button is lit exactly when pressing it does something now (the flow's
`acts`). Modes show at a glance: the onion skin's white frame and badge, the replay's
play mark and progress, the pulsing finish flag at the frame limit. A countdown bar
starts full and is empty when its time is up.
"""

from __future__ import annotations

import re

from PIL import Image, ImageDraw

from moviepkg.owner import owner_url

from . import outcome
from .art import BACKGROUND, COLOURS, INK, SYMBOLS, button, font, pulse, zeds
from .flow import Action, Screen, View
from .pictures import Box, countdown, hourglass, show_in
from .words import CALL_A_HELPER, Font, text_box, text_font, write

ONION_ALPHA = 0.35
# "Identify": two bright colours swapped four times a second (two flashes a second,
# under the three a second that can trouble people with photosensitive epilepsy).
IDENTIFY_COLOURS = ((255, 214, 0), (0, 200, 255))
IDENTIFY_SWAPS_PER_SECOND = 4
ASLEEP = (112, 120, 190)  # the out-of-order camera: a night colour, calm
MENDING = (230, 120, 60)
HELPER = (230, 120, 60)
BAR = (24, 28, 58)
METER = (60, 66, 110)
COUNTED = (255, 190, 92)
NEAR_END = (235, 90, 60)
SCREENS_WITH_A_COUNT = (Screen.SHOOTING, Screen.PLAYING, Screen.FINISH, Screen.STILL_THERE)


def station_number(station_id: str) -> str:
    """What a helper looks for: the number of `st-3`, or the whole id if it has none."""
    found = re.search(r"(\d+)$", station_id)
    return (found.group(1).lstrip("0") or "0") if found else station_id


def fit(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    """Scale image to fit box, keeping its shape."""
    ratio = min(box[0] / image.width, box[1] / image.height)
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    return image if image.size == size else image.resize(size, Image.Resampling.BILINEAR)


def steps(value: float, size: int, every: int = 4) -> int:
    """size grown by up to a fifth as value goes from 0 to 1, in steps of `every` pixels
    (a few sizes only: the button cache holds them)."""
    return size + int(value * size * 0.2) // every * every


class Renderer:
    """Draws screens of a given size; keeps what it can between frames."""

    def __init__(self, size: tuple[int, int], website_url: str = "",
                 language: str = "he") -> None:
        self.size = size
        self.website_url = website_url.rstrip("/")
        self.language = language
        w, h = size
        self.bar_height = int(h * 0.2)
        self.stage = (w, h - self.bar_height)
        self.button_size = int(self.bar_height * 0.7)
        self._question: outcome.Question | None = None
        self._stays: outcome.Stays | None = None
        self._published: tuple[str, outcome.Published] | None = None
        self._helper_layout: tuple[Box, Font, tuple[int, int], Box] | None = None

    # --- geometry (the tests read the pictures at these places) ------------------------

    def slot(self, action: Action) -> tuple[int, int]:
        """The left and top of action's button in the bar."""
        w, h = self.size
        size, slots = self.button_size, len(Action)
        gap = (w * 0.62 - slots * size) / (slots + 1)
        i = list(Action).index(action)
        return int(gap + i * (size + gap)), h - self.bar_height + (self.bar_height - size) // 2

    def countdown_box(self, screen: Screen) -> Box:
        """Where screen's countdown bar is."""
        if screen is Screen.FINISH:
            return self.question.countdown
        w, h = self.stage
        bar = max(8, int(h * 0.03))
        y = int(h * 0.935)
        return int(w * 0.2), y, int(w * 0.8), y + bar

    def progress_box(self) -> Box:
        """Where the replay's progress bar is."""
        w, h = self.stage
        bar = max(8, int(h * 0.03))
        return int(w * 0.12), h - int(h * 0.05) - bar, int(w * 0.88), h - int(h * 0.05)

    @property
    def question(self) -> outcome.Question:
        """The publish question's layout and unchanging part (drawn once)."""
        if self._question is None:
            self._question = outcome.question(self.stage)
        return self._question

    @property
    def stays(self) -> outcome.Stays:
        """The "it plays here, on the big screen" done screen's unchanging part."""
        if self._stays is None:
            self._stays = outcome.stays(self.stage)
        return self._stays

    def help_layout(self) -> tuple[Box, Box]:
        """Where the helper screen's circle and its words are: one above the other."""
        circle, _, _, box = self._help_words()
        return circle, box

    def _help_words(self) -> tuple[Box, Font, tuple[int, int], Box]:
        """The circle's box; the largest font that fits the words under it, where they are
        centred and the box they cover (in the middle of the room under the circle)."""
        if self._helper_layout is None:
            self._helper_layout = self._lay_out_help()
        return self._helper_layout

    def _lay_out_help(self) -> tuple[Box, Font, tuple[int, int], Box]:
        """Work out `_help_words` (once: fitting the words takes a few layouts)."""
        w, h = self.stage
        size = int(h * 0.62) // 16 * 16
        top = int(h * 0.04)
        circle = ((w - size) // 2, top, (w + size) // 2, top + size)
        text = CALL_A_HELPER.get(self.language, CALL_A_HELPER["en"])
        room = (int(w * 0.05), circle[3] + int(h * 0.04), int(w * 0.95), h - int(h * 0.03))
        points = int(min(room[3] - room[1], h * 0.14) * 0.8)
        scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        centre = (w // 2, (room[1] + room[3]) // 2)
        while True:
            face = text_font(self.language, points, text)
            box = text_box(scratch, centre, text, self.language, face)
            if points <= 10 or (box[2] - box[0] <= room[2] - room[0]
                                and box[3] - box[1] <= room[3] - room[1]):
                break
            points = int(points * 0.92)
        centre = (centre[0] - (box[0] + box[2]) // 2 + centre[0],
                  centre[1] - (box[1] + box[3]) // 2 + centre[1])
        return circle, face, centre, text_box(scratch, centre, text, self.language, face)

    # --- the bar ------------------------------------------------------------------------

    def _bar(self, image: Image.Image, view: View, t: float,
             position: tuple[int, int] | None) -> None:
        """The five buttons (lit when they act), and the movie's frame count and length."""
        w, h = self.size
        draw = ImageDraw.Draw(image)
        top = h - self.bar_height
        draw.rectangle((0, top, w, h), fill=BAR)
        size = self.button_size
        at_limit = view.screen is Screen.SHOOTING and view.frames >= view.limit
        for action in Action:
            kind = SYMBOLS[action]
            if view.screen is Screen.FINISH and action in (outcome.PHONE, outcome.TV):
                kind = "phone" if action is outcome.PHONE else "tv"
            elif action is Action.ONION and not view.onion:
                kind = "onion-off"
            x, y = self.slot(action)
            if at_limit and action is Action.FINISH and action in view.acts:
                grown = steps(pulse(t), size)  # the flag calls: finish your movie
                glow = Image.new("RGBA", (grown + 16, grown + 16), (0, 0, 0, 0))
                ImageDraw.Draw(glow).ellipse((0, 0, grown + 15, grown + 15),
                                             fill=(*COLOURS[action], 110))
                image.paste(glow, (x + (size - grown) // 2 - 8, y + (size - grown) // 2 - 8),
                            glow)
                icon = button(kind, COLOURS[action], grown)
                image.paste(icon, (x + (size - grown) // 2, y + (size - grown) // 2), icon)
                continue
            icon = button(kind, COLOURS[action], size, action not in view.acts)
            image.paste(icon, (x, y), icon)
        if view.screen in SCREENS_WITH_A_COUNT:
            left = int(w * 0.66)
            right = w - int(w * 0.03)
            y = top + self.bar_height // 2
            shown = position[0] + 1 if position and view.screen is Screen.PLAYING else view.frames
            draw.text((left, y - self.bar_height * 0.12), f"{shown}",
                      font=font(int(self.bar_height * 0.35)), fill=INK, anchor="ls")
            fill = (right - left) * min(1.0, view.frames / max(1, view.limit))
            bar = (left, y + self.bar_height * 0.05, right, y + self.bar_height * 0.22)
            draw.rounded_rectangle(bar, radius=6, fill=METER)
            if fill > 0:
                near_end = view.frames >= view.limit * 0.9
                draw.rounded_rectangle((left, bar[1], left + fill, bar[3]), radius=6,
                                       fill=NEAR_END if near_end else COUNTED)

    # --- the screens --------------------------------------------------------------------

    def draw(self, view: View, t: float, live: Image.Image | None = None,
             onion: Image.Image | None = None, played: Image.Image | None = None,
             position: tuple[int, int] | None = None) -> Image.Image:
        """The whole screen for `view` at time t.

        live: the camera's view (shooting); onion: the last frame (the onion skin);
        played: the movie's frame now (the replay, and the loop on the question and the
        done screens); position: which frame of how many the replay shows.
        """
        image = Image.new("RGB", self.size, BACKGROUND)
        screen = view.screen
        if screen is Screen.SHOOTING and live is not None:
            self._shooting(image, view, t, live, onion)
        elif screen is Screen.PLAYING and played is not None:
            self._replay(image, played, position)
        elif screen is Screen.ATTRACT:
            grow = 0.45 + 0.08 * pulse(t)
            self._big(image, "camera", COLOURS[Action.GO], grow)
        elif screen is Screen.STILL_THERE:
            self._big(image, "question", COLOURS[Action.FINISH], 0.5 + 0.05 * pulse(t))
            self._countdown(image, view)
        elif screen is Screen.FINISH:
            self._ask(image, view, played)
        elif screen is Screen.DONE:
            self._done(image, view, played)
        elif screen is Screen.HELP:
            self._help(image)
        elif screen is Screen.OUT_OF_ORDER:
            self._out_of_order(image, t)
        self._bar(image, view, t, position)
        return image

    def _shooting(self, image: Image.Image, view: View, t: float, live: Image.Image,
                  onion: Image.Image | None) -> None:
        """The live view; the onion skin framed in white with its badge; the flash."""
        picture = fit(live, self.stage)
        if view.onion and onion is not None:
            ghost = onion.resize(picture.size, Image.Resampling.BILINEAR)
            picture = Image.blend(picture, ghost, ONION_ALPHA)
        x, y = self._centre(image, picture)
        badge = int(self.stage[1] * 0.14)
        if view.onion:  # onion skin on: a white frame and the white button's own badge
            edge = max(3, self.stage[1] // 90)
            draw = ImageDraw.Draw(image)
            draw.rectangle((x, y, x + picture.width - 1, y + picture.height - 1),
                           outline=COLOURS[Action.ONION], width=edge)
            icon = button("onion", COLOURS[Action.ONION], badge)
            image.paste(icon, (x + edge * 3, y + edge * 3), icon)
        if view.busy:  # a flash and a shutter: the press was heard
            overlay = Image.new("RGB", self.stage, (255, 255, 255))
            stage = image.crop((0, 0, *self.stage))
            image.paste(Image.blend(stage, overlay, 0.45), (0, 0))
            self._big(image, "camera", COLOURS[Action.GO], 0.35)
        elif view.frames >= view.limit:  # the film is full: the flag, over its button
            size = steps(pulse(t), int(self.stage[1] * 0.3), 8)
            fx, _ = self.slot(Action.FINISH)
            left = min(self.stage[0] - size, max(0, fx + self.button_size // 2 - size // 2))
            icon = button("finish", COLOURS[Action.FINISH], size)
            image.paste(icon, (left, self.stage[1] - size - self.stage[1] // 30), icon)

    def _replay(self, image: Image.Image, played: Image.Image,
                position: tuple[int, int] | None) -> None:
        """The movie's frame, the play mark, and how far the replay has got."""
        x, y = self._centre(image, fit(played, self.stage))
        badge = int(self.stage[1] * 0.2)
        icon = button("play", COLOURS[Action.PLAY], badge)
        pad = max(6, self.stage[1] // 40)
        image.paste(icon, (x + pad, y + pad), icon)
        if position is not None:
            index, count = position
            box = self.progress_box()
            draw = ImageDraw.Draw(image)
            countdown(draw, box, (index + 1) / max(1, count), fill=COLOURS[Action.PLAY])
            head = box[0] + round((box[2] - box[0]) * (index + 1) / max(1, count))
            r = (box[3] - box[1])
            draw.ellipse((head - r, box[1] - r // 2, head + r, box[3] + r // 2), fill=INK)

    def _ask(self, image: Image.Image, view: View, movie: Image.Image | None) -> None:
        """The publish question: the movie in a loop, the phone or the TV, the countdown."""
        layout = self.question
        image.paste(layout.base, (0, 0))
        for screen in (layout.phone.screen, layout.tv.screen, layout.preview):
            show_in(image, screen, movie)
        self._countdown(image, view)

    def _done(self, image: Image.Image, view: View, movie: Image.Image | None) -> None:
        """Published: the code and its QR code; kept here: the TV in the hall."""
        if view.publish and view.code and self.website_url:
            url = f"{self.website_url}/m/{view.code}"
            if view.owner_key:  # the family's own link: the key in the fragment, never sent
                url = owner_url(url, view.owner_key)
            if self._published is None or self._published[0] != url:
                self._published = (url, outcome.published(self.stage, view.code, url))
            done = self._published[1]
            image.paste(done.base, (0, 0))
            show_in(image, done.screen, movie)
        else:
            image.paste(self.stays.base, (0, 0))
            show_in(image, self.stays.screen, movie)
        self._countdown(image, view)

    def _help(self, image: Image.Image) -> None:
        """The helper, waving, and the words for a helper under it (never over it)."""
        circle, face, centre, _ = self._help_words()
        size = circle[2] - circle[0]
        icon = button("helper", HELPER, size)
        image.paste(icon, circle[:2], icon)
        text = CALL_A_HELPER.get(self.language, CALL_A_HELPER["en"])
        write(ImageDraw.Draw(image), centre, text, self.language, face, INK)

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

    def _centre(self, image: Image.Image, picture: Image.Image) -> tuple[int, int]:
        """Paste picture (already fitted) in the middle of the stage; its left and top."""
        x = (self.stage[0] - picture.width) // 2
        y = (self.stage[1] - picture.height) // 2
        image.paste(picture, (x, y))
        return x, y

    def _big(self, image: Image.Image, kind: str, colour: tuple[int, int, int],
             share: float) -> None:
        """One big round button in the middle of the stage."""
        size = int(min(self.stage) * share * 1.6) // 16 * 16  # few sizes: the cache holds them
        icon = button(kind, colour, size)
        image.paste(icon, ((self.stage[0] - size) // 2, (self.stage[1] - size) // 2), icon)

    def _countdown(self, image: Image.Image, view: View) -> None:
        """The time left of the screen's whole time: full at first, empty when it is up."""
        if view.seconds_left is None or not view.seconds_total:
            return
        box = self.countdown_box(view.screen)
        if view.screen is not Screen.FINISH:  # the question's has its own, in the TV card
            size = (box[3] - box[1]) * 2
            glass = hourglass(size)
            image.paste(glass, (box[0] - size - size // 3, (box[1] + box[3] - size) // 2), glass)
        countdown(ImageDraw.Draw(image), box, view.seconds_left / view.seconds_total)
