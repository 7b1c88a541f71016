"""The kiosk's screens as pictures: read back from what the Renderer drew, no window needed.

A real Flow (with a clock the test moves) says what to show; the Renderer draws it;
the tests read the pixels: how full a countdown is, which buttons are lit, whether a
QR code is there and where it leads.
"""

from __future__ import annotations

import pytest
import zxingcpp
from PIL import Image

from moviepkg.owner import key_matches
from moviepkg.reader import read_package
from stations.art import BACKGROUND, COLOURS, INK
from stations.flow import Action, Flow, Screen, View
from stations.kiosk import MOVIE_SCREENS, loop_index, tick_period
from stations.pictures import TRACK
from stations.render import Renderer
from tests.demo import demo_frame
from tests.stations.conftest import Clock, T

SIZE = (640, 400)
URL = "https://movies.example.org"
MOVIE = (200, 30, 200)  # a colour no screen uses: where it shows, the movie shows


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """A small renderer (its pictures are read pixel by pixel)."""
    return Renderer(SIZE, URL)


def shoot(flow: Flow, frames: int) -> None:
    """Capture frames, as the kiosk does for GO."""
    for i in range(frames):
        flow.handle(Action.GO)
        flow.captured(demo_frame(i, frames, 64, 48))


def movie() -> Image.Image:
    """A frame of the movie, in a colour nothing else uses."""
    return Image.new("RGB", (640, 360), MOVIE)


def fill(picture: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, int, int],
         head: tuple[int, int, int] | None = None) -> float:
    """The share of a bar's middle row that is colour (the rest is its empty track, and
    the head that marks where it is, if it has one)."""
    y = (box[1] + box[3]) // 2
    row = [picture.getpixel((x, y)) for x in range(box[0], box[2])]
    assert all(p in (colour, TRACK, head) for p in row), "not a countdown bar"
    return sum(p in (colour, head) for p in row) / len(row)


def lit(renderer: Renderer, picture: Image.Image) -> set[Action]:
    """The buttons of the bar drawn in their full colour."""
    size = renderer.button_size
    shown = set()
    for action in Action:
        x, y = renderer.slot(action)
        if picture.getpixel((x + int(size * 0.15), y + size // 2)) == COLOURS[action]:
            shown.add(action)
    return shown


# --- countdowns -------------------------------------------------------------------------


def test_still_there_drains_from_full_to_empty_in_its_time(flow: Flow, clock: Clock,
                                                           renderer: Renderer) -> None:
    """The "still there?" bar: full, three quarters... empty, each at its time."""
    flow.handle(Action.GO)
    shoot(flow, 2)
    clock.now += T.still_there
    flow.tick()
    assert flow.screen is Screen.STILL_THERE
    box = renderer.countdown_box(Screen.STILL_THERE)
    start = clock.now
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        clock.now = start + T.give_up * share
        picture = renderer.draw(flow.view(), 0.0)
        assert fill(picture, box, INK) == pytest.approx(1 - share, abs=0.02), share
    clock.now = start + T.give_up - 0.01
    flow.tick()
    assert flow.screen is Screen.STILL_THERE  # empty exactly when its time is up
    clock.now = start + T.give_up
    flow.tick()
    assert flow.screen is Screen.DONE


@pytest.mark.parametrize("screen", [Screen.FINISH, Screen.DONE])
def test_the_question_and_the_done_screen_count_down_honestly(
        flow: Flow, clock: Clock, renderer: Renderer, screen: Screen) -> None:
    """The question's bar (in the TV card) and the done screen's, against the clock."""
    flow.handle(Action.GO)
    shoot(flow, 1)
    flow.handle(Action.FINISH)
    if screen is Screen.DONE:
        flow.handle(Action.UNDO)
    total = T.finish_choice if screen is Screen.FINISH else T.done
    box = renderer.countdown_box(screen)
    start = clock.now
    for share in (0.0, 0.5, 1.0):
        clock.now = start + total * share
        picture = renderer.draw(flow.view(), 0.0, played=movie())
        assert fill(picture, box, INK) == pytest.approx(1 - share, abs=0.02), share


# --- the done screens -------------------------------------------------------------------


def test_published_done_screen_has_the_qr_code_of_the_movie_page(flow: Flow, clock: Clock,
                                                                 renderer: Renderer) -> None:
    """PUBLISH: the QR code decodes to the movie's public page; the phone plays it."""
    flow.handle(Action.GO)
    shoot(flow, 2)
    flow.handle(Action.FINISH)
    flow.handle(Action.GO)
    view = flow.view()
    package = read_package(flow.outbox / str(flow.last_package))
    code = package.code
    picture = renderer.draw(view, 0.0, played=movie())
    [found] = zxingcpp.read_barcodes(picture)
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    # The family's own link: the key only in the QR code, only its hash in the MANIFEST.
    page, _, key = found.text.partition("#k=")
    assert page == f"{URL}/m/{code}"
    assert key == view.owner_key and key_matches(key, package.manifest.owner_key_sha256)
    assert key.encode() not in (package.path / "MANIFEST").read_bytes()
    assert view.code == code
    assert MOVIE in {c for _, c in picture.getcolors(1 << 16) or []}  # the phone plays it
    clock.now += T.done_guard
    assert lit(renderer, renderer.draw(flow.view(), 0.0)) == {Action.GO}


@pytest.mark.parametrize("timed_out", [False, True])
def test_a_movie_that_stays_has_no_code_and_no_qr(flow: Flow, clock: Clock, renderer: Renderer,
                                                  timed_out: bool) -> None:
    """NOPUBLISH, chosen or timed out: the TV plays the movie; no code, no QR code."""
    flow.handle(Action.GO)
    shoot(flow, 2)
    flow.handle(Action.FINISH)
    if timed_out:
        clock.now += T.finish_choice
        flow.tick()
    else:
        flow.handle(Action.UNDO)
    view = flow.view()
    assert view.screen is Screen.DONE and view.publish is False and view.code is None
    picture = renderer.draw(view, 0.0, played=movie())
    assert zxingcpp.read_barcodes(picture) == []
    tv = renderer.stays.screen
    assert picture.getpixel(((tv[0] + tv[2]) // 2, (tv[1] + tv[3]) // 2)) == MOVIE
    assert lit(renderer, picture) == set()  # just done: nothing to press yet


# --- the question -----------------------------------------------------------------------


def test_the_question_plays_the_movie_on_a_phone_and_a_tv(flow: Flow,
                                                          renderer: Renderer) -> None:
    """The movie on the phone, on the TV and big; the cards in their buttons' colours."""
    flow.handle(Action.GO)
    shoot(flow, 1)
    flow.handle(Action.FINISH)
    picture = renderer.draw(flow.view(), 0.0, played=movie())
    layout = renderer.question
    for screen in (layout.phone.screen, layout.tv.screen, layout.preview):
        assert picture.getpixel(((screen[0] + screen[2]) // 2,
                                 (screen[1] + screen[3]) // 2)) == MOVIE
    # Each card in its button's colour, in the buttons' order; the countdown in the TV's.
    phone, tv = layout.phone.box, layout.tv.box
    assert picture.getpixel((phone[0] + 5, phone[1] + (phone[3] - phone[1]) // 10)) \
        == COLOURS[Action.GO]
    assert picture.getpixel((tv[0] + 5, tv[1] + (tv[3] - tv[1]) // 10)) == COLOURS[Action.UNDO]
    assert phone[2] < tv[0] and renderer.slot(Action.GO)[0] < renderer.slot(Action.UNDO)[0]
    bar = renderer.countdown_box(Screen.FINISH)
    assert tv[0] < bar[0] < bar[2] < tv[2] and tv[1] < bar[1] < bar[3] < tv[3]
    assert lit(renderer, picture) == {Action.GO, Action.UNDO}


# --- modes ------------------------------------------------------------------------------


def shooting_view(onion: bool, frames: int = 3, limit: int = 10) -> View:
    """What the flow says while shooting (green acts until the limit)."""
    acts = frozenset(Action) if frames < limit else frozenset(Action) - {Action.GO}
    return View(Screen.SHOOTING, frames, limit, onion, False, acts=acts)


def test_onion_skin_on_and_off_look_different(renderer: Renderer) -> None:
    """The white button's symbol, a white frame round the view, the ghost."""
    live = Image.new("RGB", (640, 360), (10, 120, 10))
    ghost = Image.new("RGB", (640, 360), (250, 250, 250))
    on = renderer.draw(shooting_view(True), 0.0, live=live, onion=ghost)
    off = renderer.draw(shooting_view(False), 0.0, live=live, onion=ghost)
    x, y = renderer.slot(Action.ONION)
    size = renderer.button_size
    icon = (x, y, x + size, y + size)
    assert on.crop(icon).tobytes() != off.crop(icon).tobytes()  # the button's symbol
    stage_w, stage_h = renderer.stage
    left = (stage_w - round(stage_h * 16 / 9)) // 2  # the live view's left edge
    assert on.getpixel((left + 1, stage_h // 2)) == COLOURS[Action.ONION]  # a white frame
    assert off.getpixel((left + 1, stage_h // 2)) == (10, 120, 10)
    assert on.getpixel((stage_w // 2, stage_h // 2)) != (10, 120, 10)  # the ghost shows


def test_at_the_frame_limit_green_dims_and_the_flag_pulses(renderer: Renderer) -> None:
    """The film is full: green dim, the flag breathes, big over its button."""
    live = Image.new("RGB", (640, 360), (10, 120, 10))
    full = shooting_view(True, frames=10)
    pictures = [renderer.draw(full, t, live=live) for t in (0.0, 0.37, 0.75)]
    assert Action.GO not in lit(renderer, pictures[0])
    x, y = renderer.slot(Action.FINISH)
    size = renderer.button_size
    flags = {p.crop((x - 16, y - 16, x + size + 16, y + size + 16)).tobytes() for p in pictures}
    assert len(flags) > 1  # it breathes
    stage_h = renderer.stage[1]
    above = pictures[0].getpixel((x + size // 2, stage_h - stage_h // 30 - 12))
    assert above == COLOURS[Action.FINISH]  # and a big flag over its button
    assert renderer.draw(shooting_view(True), 0.0, live=live).getpixel(
        (x + size // 2, stage_h - stage_h // 30 - 12)) == (10, 120, 10)


def test_the_replay_shows_a_play_mark_and_how_far_it_got(renderer: Renderer) -> None:
    """The progress bar follows the frame shown; the play mark; green and blue lit."""
    view = View(Screen.PLAYING, 20, 40, True, False, acts=frozenset((Action.GO, Action.PLAY)))
    box = renderer.progress_box()
    for index in (0, 9, 19):
        picture = renderer.draw(view, 0.0, played=movie(), position=(index, 20))
        shown = fill(picture, box, COLOURS[Action.PLAY], head=INK)
        assert shown == pytest.approx((index + 1) / 20, abs=0.05)
    assert lit(renderer, picture) == {Action.GO, Action.PLAY}
    badge = {picture.getpixel((x, y)) for x in range(60, 140) for y in range(10, 90)}
    assert COLOURS[Action.PLAY] in badge


# --- the kiosk's pace -------------------------------------------------------------------


def test_the_movie_loops_at_kiosk_fps() -> None:
    """The loop's frame follows the time on the screen at kiosk.fps."""
    assert [loop_index(s / 10, 10, 4) for s in range(9)] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert loop_index(1.0, 5, 3) == 2 and loop_index(0.0, 10, 0) == 0
    for screen in MOVIE_SCREENS:
        assert tick_period(screen, 8) == pytest.approx(1 / 8)


def test_every_screen_has_the_background_where_nothing_is_drawn(renderer: Renderer) -> None:
    """The attract screen's corner is the kiosk's background colour."""
    view = View(Screen.ATTRACT, 0, 10, True, False, acts=frozenset(Action))
    assert renderer.draw(view, 0.0).getpixel((2, 2)) == BACKGROUND
