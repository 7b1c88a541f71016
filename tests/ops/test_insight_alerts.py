"""The slow-step alert on a test clock: slower than usual, over its limit, stuck; resolving."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from moviepkg.ids import movie_code
from ops.config import Settings, load_settings
from ops.console import Console
from ops.rules import ADVICE
from tests.ops.conftest import Clock, make_console
from tests.ops.simulator import event, feed, processor_messages
from tests.ops.test_insight import inject, package


@pytest.fixture
def quiet_console(settings: Settings, clock: Clock) -> Iterator[Console]:
    """A console with no expected stations, its alerts only logged."""
    found = make_console(settings, clock, stations=())
    yield found
    found.db.close()


def slow_alerts(console: Console) -> list[tuple[str, str, str]]:
    """The open slow-step alerts: (device, step, message)."""
    return [(row["device"], row["subject"], row["message"]) for row in console.db.open_alerts()
            if row["rule"] == "slow_step"]


def tick(console: Console, clock: Clock, seconds: float = 1.0) -> None:
    """Move the clock on, keep the processing unit reporting, and run the rules once."""
    clock.advance(seconds)
    feed(console.db, processor_messages(clock.now), clock.now)
    console.engine.tick()


def encodes(console: Console, clock: Clock, durations: list[float], first: int = 0) -> str:
    """Movies from st-1, one a minute, whose encodes took durations; the last one's id."""
    package_id = ""
    for n, seconds in enumerate(durations):
        package_id = inject(console.db, "st-1", clock.now, [5, 1, 1, seconds, 0, 10],
                            first + n)
        clock.advance(seconds + 60)
    return package_id


def test_slower_than_usual_only_after_ten_completions(quiet_console: Console,
                                                      clock: Clock) -> None:
    """3 x the p95 alerts only once there are 10 finishes before it, and clears by itself."""
    console = quiet_console
    encodes(console, clock, [10.0] * 9)
    slow = encodes(console, clock, [40.0], first=9)  # 4 x the p95, but only 9 before it
    tick(console, clock)
    assert slow_alerts(console) == []
    slow = encodes(console, clock, [10.0, 80.0], first=10)  # now 11 before it
    tick(console, clock)
    assert slow_alerts(console) == [  # the p95 of ten 10 s and one 40 s: 25 s
        ("processor", "encode", f"processor: encode of movie {movie_code(slow)} ({slow}) "
                                f"took 80 s, more than 3 × the recent p95 of 25 s")]
    encodes(console, clock, [12.0], first=20)  # back to normal: it clears by itself
    tick(console, clock)
    assert slow_alerts(console) == []
    assert console.db.query("SELECT count(*) AS n FROM alerts WHERE rule = 'slow_step' "
                            "AND resolved IS NOT NULL")[0]["n"] == 1
    assert "slow_step" in ADVICE


def test_short_steps_are_never_slow(quiet_console: Console, clock: Clock) -> None:
    """A step under slow_floor_s never alerts as slower than usual."""
    console = quiet_console
    encodes(console, clock, [2.0] * 12)
    encodes(console, clock, [20.0], first=12)  # 10 x the p95, but under slow_floor_s (30 s)
    tick(console, clock)
    assert slow_alerts(console) == []


def test_only_the_last_window_counts(quiet_console: Console, clock: Clock) -> None:
    """The p95 comes from the last slow_window finishes only."""
    console = quiet_console
    encodes(console, clock, [30.0] * 10 + [5.0] * 10)
    encodes(console, clock, [40.0], first=20)  # the last 20 have a p95 of 30 s
    tick(console, clock)
    assert slow_alerts(console) == []
    console.settings = replace(console.settings, thresholds=replace(
        console.settings.thresholds, slow_window=10))
    tick(console, clock)  # the last 10 have a p95 of 5 s
    assert [step for _, step, _ in slow_alerts(console)] == ["encode"]


def test_the_limit_alone_and_its_hold(quiet_console: Console, clock: Clock) -> None:
    """Over its limit alerts on the first movie; the alert clears after slow_keep_s."""
    console = quiet_console
    first = inject(console.db, "st-3", clock.now, [700, 1, 1, 200, 0, 10], 1)
    clock.advance(1000)
    tick(console, clock)
    code = movie_code(first)
    assert slow_alerts(console) == [
        ("processor", "encode", f"processor: encode of movie {code} ({first}) took "
                                f"3 min 20 s (its limit is 3 min 00 s)"),
        ("st-3", "deliver", f"st-3: deliver of movie {code} ({first}) took 11 min 40 s "
                            f"(its limit is 10 min 00 s)")]
    tick(console, clock, 1200)
    assert len(slow_alerts(console)) == 2
    tick(console, clock, 600)  # slow_keep_s (30 min) after each slow step: both clear
    assert slow_alerts(console) == []


def test_a_stuck_movie_then_slow_then_normal(quiet_console: Console, clock: Clock) -> None:
    """Stuck, then finished too slowly, then a normal one: one alert all along, then cleared."""
    console = quiet_console
    stuck = inject(console.db, "st-2", clock.now, [5, 1, 1], 7)  # validated: now encoding
    others = [inject(console.db, "st-4", clock.now + 20, [5, 1, 1], n) for n in (8, 9)]
    tick(console, clock, 7 + 179)
    assert slow_alerts(console) == []
    tick(console, clock, 2)  # 181 s in encode: over its 180 s limit
    assert slow_alerts(console) == [
        ("processor", "encode", f"processor: movie {movie_code(stuck)} ({stuck}) is stuck in "
                                f"encode since 12:00:07, longer than its limit of 3 min 00 s")]
    tick(console, clock, 30)  # the other two are stuck too now
    assert slow_alerts(console)[0][2].endswith("; 2 more waiting")
    for package_id in (stuck, *others):
        feed(console.db, [event("processor", "processor", kind, package_id, clock.now)
                          for kind in ("encoded", "on_screen", "published")], clock.now)
    tick(console, clock)  # finished, but too slowly: the same alert says so
    assert slow_alerts(console) == [
        ("processor", "encode", f"processor: encode of movie {movie_code(others[-1])} "
                                f"({others[-1]}) took 3 min 11 s (its limit is 3 min 00 s)")]
    inject(console.db, "st-2", clock.now, [5, 1, 1, 30, 0, 10], 10)
    clock.advance(60)
    tick(console, clock)
    assert slow_alerts(console) == []
    opened = console.db.query("SELECT count(*) AS n FROM alerts WHERE rule = 'slow_step'")
    assert opened[0]["n"] == 1  # one alert all along, its message kept up to date


def test_a_movie_that_never_moves_on_stops_counting_as_stuck(quiet_console: Console,
                                                              clock: Clock) -> None:
    """Stuck for stuck_keep_s (2 h) past its limit, then not any more: the alert clears by
    itself; a movie stuck since in the same step still alerts."""
    console = quiet_console
    lost = inject(console.db, "st-2", clock.now, [5, 1, 1], 7)  # validated, never encoded
    tick(console, clock, 7 + 181)
    assert [(device, step) for device, step, _ in slow_alerts(console)] == [
        ("processor", "encode")]
    tick(console, clock, 7200 - 2)  # 2 h past its 3 min limit: still stuck
    assert lost in slow_alerts(console)[0][2]
    tick(console, clock, 2)
    assert slow_alerts(console) == []
    resolved = console.db.query("SELECT * FROM alerts WHERE rule = 'slow_step'")
    assert len(resolved) == 1 and resolved[0]["resolved"] == clock.now
    later = inject(console.db, "st-4", clock.now, [5, 1, 1], 8)
    tick(console, clock, 7 + 181)
    assert len(slow_alerts(console)) == 1 and later in slow_alerts(console)[0][2]
    assert lost not in slow_alerts(console)[0][2]  # not counted among the others either
    console.settings = replace(console.settings, thresholds=replace(
        console.settings.thresholds, stuck_keep_s=60))  # alerts.stuck_keep_s
    tick(console, clock, 58)
    assert len(slow_alerts(console)) == 1
    tick(console, clock, 2)  # a minute past its limit
    assert slow_alerts(console) == []


def test_a_nopublish_movie_is_never_stuck_in_publish(quiet_console: Console,
                                                     clock: Clock) -> None:
    """Only the PUBLISH movie waits to publish."""
    console = quiet_console
    inject(console.db, "st-1", clock.now, [5, 1, 1, 30, 0], 1, publish=False)
    waiting = inject(console.db, "st-1", clock.now, [5, 1, 1, 30, 0], 2, publish=True)
    tick(console, clock, 37 + 901)
    assert [(device, step) for device, step, _ in slow_alerts(console)] == [
        ("processor", "publish")]
    assert waiting in slow_alerts(console)[0][2]


def test_stuck_is_judged_on_the_consoles_clock(quiet_console: Console, clock: Clock) -> None:
    """A station whose clock is an hour behind does not make its movies look stuck."""
    console = quiet_console
    package_id = package("st-5", clock.now, 5)
    feed(console.db, [event("st-5", "kiosk", "shot_finished", package_id, clock.now - 3600,
                            "PUBLISH")], clock.now)
    tick(console, clock, 5)
    assert slow_alerts(console) == []


def test_the_step_limits_are_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The limits and the slow-step settings come from ops.toml, checked."""
    config = tmp_path / "ops.toml"
    config.write_text("[alerts]\nstep_encode_s = 300\nslow_factor = 4\nslow_window = 30\n"
                      "stuck_keep_s = 3600\n")
    thresholds = load_settings(config, environ={}).thresholds
    assert (thresholds.step_encode_s, thresholds.slow_factor, thresholds.slow_window,
            thresholds.stuck_keep_s) == (300, 4, 30, 3600)
    assert load_settings(None, environ={}).thresholds.stuck_keep_s == 7200
    assert (thresholds.step_deliver_s, thresholds.step_to_screen_s,
            thresholds.step_publish_s) == (600, 60, 900)
    config.write_text("[alerts]\nslow_window = 5\nslow_factor = 1\n")
    from ops.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})
    assert "alerts.slow_window: expected an integer from 10 to 1000" in str(error.value)
    assert "alerts.slow_factor: expected more than 1" in str(error.value)
