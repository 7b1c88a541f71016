"""The kiosk's state machine, headless, with an injected clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from moviepkg.reader import read_package
from moviepkg.writer import PackageWriter
from stations.flow import Action, Command, Flow, Screen
from tests.demo import demo_frame
from tests.stations.conftest import Clock, T


def shoot(flow: Flow, frames: int) -> None:
    for i in range(frames):
        assert flow.handle(Action.GO) is Command.CAPTURE
        assert flow.captured(demo_frame(i, frames, 64, 48)) == flow.frames - 1


def test_a_whole_movie(flow: Flow, clock: Clock) -> None:
    assert flow.screen is Screen.ATTRACT
    assert flow.handle(Action.PLAY) is None and flow.screen is Screen.SHOOTING  # any button
    shoot(flow, 3)
    assert flow.handle(Action.PLAY) is Command.PLAY and flow.screen is Screen.PLAYING
    flow.playback_over()
    assert flow.screen is Screen.SHOOTING
    flow.handle(Action.FINISH)
    assert flow.screen is Screen.FINISH
    package_id = flow.view().package_id
    flow.handle(Action.GO)  # yes, publish
    view = flow.view()
    assert view.screen is Screen.DONE and view.code and len(view.code) == 6
    package = read_package(flow.outbox / str(package_id))
    assert package.publish and len(package.frames) == 3 and package.code == view.code
    assert view.publish is True
    clock.now += T.done_guard
    flow.handle(Action.GO)
    assert flow.screen is Screen.ATTRACT


def test_undo_onion_and_no_publish(flow: Flow) -> None:
    flow.handle(Action.GO)
    shoot(flow, 2)
    flow.handle(Action.UNDO)
    assert flow.frames == 1
    assert flow.view().onion
    flow.handle(Action.ONION)
    assert not flow.view().onion
    flow.handle(Action.FINISH)
    flow.handle(Action.UNDO)  # no: keep it at the festival
    package = read_package(flow.outbox / str(flow.last_package))
    assert not package.publish and len(package.frames) == 1
    view = flow.view()  # the done screen says "on the big screen": no code to show
    assert view.screen is Screen.DONE and view.publish is False and view.code is None


def test_no_double_capture_while_busy(flow: Flow) -> None:
    flow.handle(Action.GO)
    assert flow.handle(Action.GO) is Command.CAPTURE
    assert flow.view().busy
    assert flow.handle(Action.GO) is None  # pressed again while the camera works
    assert flow.handle(Action.UNDO) is None and flow.handle(Action.FINISH) is None
    flow.captured(demo_frame(0, 1, 64, 48))
    assert not flow.view().busy and flow.frames == 1 and flow.screen is Screen.SHOOTING


def test_frame_limit(flow: Flow) -> None:
    flow.handle(Action.GO)
    shoot(flow, 5)
    assert flow.handle(Action.GO) is None and flow.frames == 5


def test_still_there_then_back(flow: Flow, clock: Clock) -> None:
    flow.handle(Action.GO)
    shoot(flow, 1)
    clock.now += 89
    flow.tick()
    assert flow.screen is Screen.SHOOTING
    clock.now += 2
    flow.tick()
    assert flow.screen is Screen.STILL_THERE
    assert flow.view().seconds_left == pytest.approx(30)
    flow.handle(Action.ONION)  # somebody is there: carry on, nothing else happens
    assert flow.screen is Screen.SHOOTING and flow.onion and flow.frames == 1


def test_nobody_comes_back_the_movie_is_kept_unpublished(flow: Flow, clock: Clock) -> None:
    flow.handle(Action.GO)
    shoot(flow, 2)
    clock.now += 91
    flow.tick()
    clock.now += 31
    flow.tick()
    assert flow.screen is Screen.DONE
    package = read_package(flow.outbox / str(flow.last_package))
    assert not package.publish and len(package.frames) == 2
    clock.now += 46
    flow.tick()
    assert flow.screen is Screen.ATTRACT


def test_finish_question_unanswered_is_nopublish(flow: Flow, clock: Clock) -> None:
    flow.handle(Action.GO)
    shoot(flow, 1)
    flow.handle(Action.FINISH)
    clock.now += 61
    flow.tick()
    assert flow.screen is Screen.DONE
    assert not read_package(flow.outbox / str(flow.last_package)).publish


def test_finish_with_no_frames_leaves_nothing_behind(flow: Flow) -> None:
    flow.handle(Action.GO)
    flow.handle(Action.FINISH)
    assert flow.screen is Screen.ATTRACT
    assert list(flow.outbox.iterdir()) == []


def test_an_error_shows_the_helper_screen_and_recovers(flow: Flow, clock: Clock) -> None:
    flow.handle(Action.GO)
    shoot(flow, 2)
    assert flow.handle(Action.GO) is Command.CAPTURE
    flow.captured(b"not a jpeg from a broken camera")
    assert flow.screen is Screen.HELP and "bad JPEG" in flow.error
    assert not flow.view().busy
    clock.now += 9
    flow.tick()  # recovers by itself: the movie carries on with its frames
    assert flow.screen is Screen.SHOOTING and flow.frames == 2


def test_resume_after_a_crash(tmp_path: Path, clock: Clock) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    cut_off = PackageWriter.start(outbox, "st-1")
    for i in range(3):
        cut_off.add_frame(demo_frame(i, 3, 64, 48))
    other_station = PackageWriter.start(outbox, "st-2")
    other_station.add_frame(demo_frame(0, 1, 64, 48))
    flow = Flow(outbox, "st-1", timeouts=T, clock=clock)
    assert flow.resume()
    assert flow.screen is Screen.SHOOTING and flow.frames == 3
    assert flow.view().package_id == cut_off.package_id
    assert len(flow.frame_paths()) == 3


def test_view_for_the_ui(flow: Flow) -> None:
    view = flow.view()
    assert (view.screen, view.frames, view.limit, view.busy) == (Screen.ATTRACT, 0, 5, False)


def test_the_lit_buttons_are_the_ones_that_act(flow: Flow, clock: Clock) -> None:
    """Every screen: a press of a button outside `acts` changes nothing."""
    every = frozenset(Action)
    assert flow.view().acts == every  # attract: any button starts
    flow.handle(Action.GO)
    assert flow.acts() == {Action.ONION, Action.FINISH, Action.GO}  # nothing to undo or play
    assert flow.handle(Action.UNDO) is None and flow.handle(Action.PLAY) is None
    assert flow.screen is Screen.SHOOTING
    assert flow.handle(Action.GO) is Command.CAPTURE
    assert flow.acts() == {Action.ONION}  # capturing: only the onion skin answers
    flow.captured(demo_frame(0, 1, 64, 48))
    assert flow.acts() == every
    assert flow.handle(Action.PLAY) is Command.PLAY
    assert flow.view().acts == {Action.GO, Action.PLAY}  # the replay: back to the camera
    for ignored in (Action.UNDO, Action.ONION, Action.FINISH):
        flow.handle(ignored)
        assert flow.screen is Screen.PLAYING and flow.frames == 1 and flow.onion
    flow.handle(Action.PLAY)
    assert flow.screen is Screen.SHOOTING
    flow.handle(Action.FINISH)
    assert flow.view().acts == {Action.GO, Action.UNDO}  # the question: the two answers
    for ignored in (Action.PLAY, Action.ONION, Action.FINISH):
        assert flow.handle(ignored) is None and flow.screen is Screen.FINISH
    flow.handle(Action.GO)
    assert flow.view().acts == frozenset()  # done, just now: a double press is ignored
    flow.handle(Action.GO)
    assert flow.screen is Screen.DONE
    clock.now += T.done_guard
    assert flow.view().acts == {Action.GO}
    flow.handle(Action.UNDO)
    assert flow.screen is Screen.DONE
    flow.handle(Action.GO)
    assert flow.screen is Screen.ATTRACT


def test_at_the_frame_limit_only_green_stops(flow: Flow) -> None:
    """At the limit green does nothing (and is dim); the rest still act."""
    flow.handle(Action.GO)
    shoot(flow, 5)
    assert flow.acts() == {Action.UNDO, Action.PLAY, Action.ONION, Action.FINISH}


def test_presses_on_the_done_screen_do_not_stretch_its_countdown(flow: Flow,
                                                                 clock: Clock) -> None:
    """The done screen's time is the code's: presses that do nothing do not reset it."""
    flow.handle(Action.GO)
    shoot(flow, 1)
    flow.handle(Action.FINISH)
    flow.handle(Action.GO)
    clock.now += 20
    flow.handle(Action.ONION)  # does nothing here, and keeps nothing up longer
    view = flow.view()
    assert view.seconds_left == pytest.approx(T.done - 20) and view.seconds_total == T.done


def test_every_countdown_starts_full(flow: Flow, clock: Clock) -> None:
    """Each timed screen's time left is its whole time when it begins."""
    flow.handle(Action.GO)
    shoot(flow, 1)
    clock.now += T.still_there
    flow.tick()
    view = flow.view()
    assert (view.seconds_left, view.seconds_total) == (T.give_up, T.give_up)
    flow.handle(Action.GO)
    flow.handle(Action.FINISH)
    view = flow.view()
    assert (view.seconds_left, view.seconds_total) == (T.finish_choice, T.finish_choice)
