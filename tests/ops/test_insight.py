"""Insight's numbers against durations injected with a test clock: steps, windows, stations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from moviepkg.ids import movie_code, new_package_id
from ops.console import Console
from ops.db import Database
from ops.insight import day_start, insight, percentile
from ops.movies import build_movie, load_movies
from tests.ops.conftest import NOON, Clock
from tests.ops.simulator import event, feed, fleet_messages, processor_messages, state

ZONE = "Asia/Jerusalem"
# Each step's event and who sends it; a movie's way, in order.
WAY = (("shot_finished", "kiosk"), ("delivered", "sync"), ("received", "processor"),
       ("validated", "processor"), ("encoded", "processor"), ("on_screen", "processor"),
       ("published", "processor"))
STEP_NAMES = ("deliver", "receive", "validate", "encode", "to_screen", "publish")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A console's database of its own (insight reads nothing else)."""
    found = Database(tmp_path / "console.sqlite3")
    yield found
    found.close()


def package(station: str, when: float, nonce: int) -> str:
    """A station-built package id."""
    return new_package_id(station, datetime.fromtimestamp(when, UTC), f"{nonce:04x}")


def inject(db: Database, station: str, start: float, seconds: Sequence[float | None],
           nonce: int, publish: bool = True, late: float = 0.0) -> str:
    """A movie whose steps took `seconds` (deliver, receive, ...; None: not done yet),
    each event received when it happened (plus `late` seconds); return its package id."""
    package_id = package(station, start, nonce)
    now, steps = start, list(seconds)
    word = "PUBLISH" if publish else "NOPUBLISH"
    for index, (kind, program) in enumerate(WAY):
        if index > 0:
            if index > len(steps) or steps[index - 1] is None:
                break
            now += float(steps[index - 1] or 0)
        device = station if program in ("kiosk", "sync") else "processor"
        detail = word if kind in ("shot_finished", "received") else ""
        feed(db, [event(device, program, kind, package_id, now, detail)], now + late)
    return package_id


def test_events_carry_their_code_and_an_old_file_gets_one(tmp_path: Path) -> None:
    """New events get their code; an older file gets the column, filled, and the indexes."""
    path = tmp_path / "console.sqlite3"
    old = sqlite3.connect(path)  # the schema before codes
    old.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, device TEXT, program TEXT, "
                "kind TEXT, package_id TEXT, at TEXT, detail TEXT, received REAL)")
    old.execute("INSERT INTO events (device, program, kind, package_id, at, detail, received) "
                "VALUES ('st-1', 'kiosk', 'shot_finished', 'st-1-20260501t090000z-0001', "
                "'2026-05-01T09:00:00Z', 'PUBLISH', 1.0)")
    old.commit()
    old.close()
    db = Database(path)
    try:
        rows = db.query("SELECT code FROM events")
        assert rows == [{"code": movie_code("st-1-20260501t090000z-0001")}]
        feed(db, [event("st-2", "kiosk", "shot_finished", "st-2-20260501t090000z-0002",
                        NOON, "PUBLISH")], NOON)
        assert db.query("SELECT code FROM events WHERE device = 'st-2'")[0]["code"] == \
            movie_code("st-2-20260501t090000z-0002")
        indexes = {row["name"] for row in db.query("SELECT name FROM sqlite_master "
                                                   "WHERE type = 'index'")}
        assert {"events_by_package", "events_by_code"} <= indexes
        plan = db.query("EXPLAIN QUERY PLAN SELECT * FROM events WHERE code = 'X'")
        assert "events_by_code" in " ".join(str(row["detail"]) for row in plan)
    finally:
        db.close()
    Database(path).close()  # a second start changes nothing


def test_percentile_interpolates_between_ranks() -> None:
    """p95 and the median, interpolated between ranks."""
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile(list(map(float, range(1, 21))), 95) == pytest.approx(19.05)
    assert percentile([7.0], 95) == 7.0


def test_each_step_exact_over_the_hour_and_the_day(db: Database) -> None:
    """Exact min, avg, p95 and max of known durations, per window."""
    morning = NOON - 3 * 3600  # 09:00 local
    for n in range(1, 21):  # this morning: encodes of 1..20 s, the rest fixed
        inject(db, "st-1", morning + n * 300, [12, 2, 1, n, 0, 30], n)
    for n in range(1, 5):  # in the last hour: encodes of 100..400 s
        inject(db, "st-2", NOON - 3000 + n * 60, [20, 3, 1, 100 * n, 1, 60], 100 + n)
    found = insight(db, NOON + 600, ZONE)
    day, hour = found.day, found.hour
    encodes = [*range(1, 21), 100, 200, 300, 400]
    assert day["encode"].count == 24
    assert (day["encode"].min, day["encode"].max) == (1, 400)
    assert day["encode"].avg == pytest.approx(sum(encodes) / 24)
    assert day["encode"].p95 == pytest.approx(percentile(list(map(float, encodes)), 95))
    assert (hour["encode"].count, hour["encode"].min, hour["encode"].avg,
            hour["encode"].max) == (4, 100, 250, 400)
    assert hour["encode"].p95 == pytest.approx(300 + 0.85 * 100)  # rank 2.85 of 0..3
    assert (day["deliver"].min, day["deliver"].max, hour["deliver"].avg) == (12, 20, 20)
    assert (day["to_screen"].min, day["to_screen"].max) == (0, 1)
    assert day["publish"].count == 24 and hour["publish"].min == 60
    document = found.to_json()
    encode = next(step for step in document["steps"] if step["step"] == "encode")
    assert encode["hour"] == {"count": 4, "min_s": 100.0, "avg_s": 250.0, "p95_s": 385.0,
                              "max_s": 400.0}
    assert [step["step"] for step in document["steps"]] == list(STEP_NAMES)


def test_the_day_starts_at_local_midnight(db: Database) -> None:
    """Today begins at midnight in the console's time zone, not UTC."""
    midnight = day_start(NOON, ZONE)
    assert datetime.fromtimestamp(midnight, UTC).hour == 21  # 00:00 in Jerusalem (UTC+3)
    inject(db, "st-1", midnight - 600, [5, 1, 1, 30, 0, 10], 1)  # yesterday, 23:50
    inject(db, "st-1", midnight + 600, [7, 1, 1, 40, 0, 10], 2)  # today, 00:10
    found = insight(db, NOON, ZONE)
    assert found.day["encode"].count == 1 and found.day["encode"].max == 40
    assert found.hour["encode"].count == 0 and found.hour["encode"].avg is None
    assert found.to_json()["steps"][3]["hour"]["p95_s"] is None


def test_movies_finished_per_station_per_hour(db: Database) -> None:
    """shot_finished events counted per station and local hour."""
    nine = NOON - 3 * 3600  # 09:00 local
    for n, (station, offset) in enumerate([("st-1", 60), ("st-1", 1200), ("st-2", 1800),
                                           ("st-1", 3600 + 60), ("st-3", 2 * 3600 + 100),
                                           ("st-10", 2 * 3600 + 200)]):
        inject(db, station, nine + offset, [], n)
    inject(db, "st-1", nine - 86400, [], 99)  # yesterday: not today's
    found = insight(db, NOON + 120, ZONE)
    assert found.hours == ["09:00", "10:00", "11:00", "12:00"]
    assert found.per_station == {"st-1": [2, 1, 0, 0], "st-2": [1, 0, 0, 0],
                                 "st-3": [0, 0, 1, 0], "st-10": [0, 0, 1, 0]}
    assert found.to_json()["finished_per_hour"]["total"] == [3, 1, 2, 0]


def test_nopublish_has_no_publish_step(db: Database) -> None:
    """A NOPUBLISH movie ends on the big screen; a PUBLISH one waits to publish."""
    shown = inject(db, "st-1", NOON - 600, [5, 1, 1, 30, 0], 1, publish=False)
    waiting = inject(db, "st-2", NOON - 600, [5, 1, 1, 30, 0], 2, publish=True)
    movies = load_movies(db, 0)
    assert [p.step.name for p in movies[shown].passages] == list(STEP_NAMES[:-1])
    assert movies[shown].open is None and movies[shown].publish is False
    assert movies[waiting].open is not None and movies[waiting].open.step.name == "publish"
    assert insight(db, NOON, ZONE).day["publish"].count == 0


def test_skewed_clocks_clamp_at_zero_and_a_retry_restarts_a_step(db: Database) -> None:
    """Two clocks never make a step negative; a retry starts a step again; quarantine stops."""
    skewed = package("st-1", NOON, 1)  # the station's clock is 3 s ahead of the processor's
    feed(db, [event("st-1", "kiosk", "shot_finished", skewed, NOON, "PUBLISH"),
              event("st-1", "sync", "delivered", skewed, NOON + 10),
              event("processor", "processor", "received", skewed, NOON + 7, "PUBLISH")],
         NOON + 10)
    assert build_movie(skewed, load_movies(db, 0)[skewed].moments).step("receive").seconds == 0
    again = package("st-1", NOON, 2)
    feed(db, [event("processor", "processor", kind, again, NOON + t, detail)
              for kind, t, detail in [("received", 0, "PUBLISH"), ("validated", 1, ""),
                                      ("failed", 60, "ffmpeg: out of memory"),
                                      ("retried", 900, "by ana"), ("encoded", 940, "")]],
         NOON + 940)
    movie = load_movies(db, 0)[again]
    assert movie.step("encode").seconds == 40  # from the retry, not from validated
    assert movie.open is not None and movie.open.step.name == "to_screen"
    stopped = package("st-1", NOON, 3)
    feed(db, [event("processor", "processor", "received", stopped, NOON, "PUBLISH"),
              event("processor", "processor", "quarantined", stopped, NOON + 1, "bad frame")],
         NOON + 1)
    movie = load_movies(db, 0)[stopped]
    assert movie.open is None and movie.stopped is not None


def test_late_events_keep_their_own_times(db: Database) -> None:
    """Events buffered through a broker outage arrive together: durations still come
    from their `at` times."""
    inject(db, "st-1", NOON - 1800, [8, 2, 1, 45, 0, 20], 1, late=1200)
    day = insight(db, NOON, ZONE).day
    assert (day["deliver"].max, day["encode"].max, day["publish"].max) == (8, 45, 20)


def test_slowest_and_the_queues(db: Database) -> None:
    """The slowest movies with their steps, the queues from the samples, the movies on their way."""
    slow = inject(db, "st-2", NOON - 3000, [40, 5, 1, 300, 1, 10], 1)
    quick = inject(db, "st-1", NOON - 2000, [5, 1, 1, 30, 0, 10], 2)
    inject(db, "st-3", NOON - 1000, [5, 1, 1], 3)  # still encoding: not on screen yet
    for minute in range(5):
        t = NOON - 300 + minute * 60
        feed(db, [state("st-1", "sync", {"waiting": minute % 2}, t),
                  *[m for m in processor_messages(t, backlog=minute) if "/state" in m[0]]], t)
    found = insight(db, NOON, ZONE)
    assert [movie.package_id for movie in found.slowest] == [slow, quick]
    document = found.to_json()
    assert document["slowest"][0] == {
        "package_id": slow, "code": movie_code(slow), "station": "st-2", "total_s": 347.0,
        "on_screen": document["slowest"][0]["on_screen"],
        "steps": {"deliver": 40.0, "receive": 5.0, "validate": 1.0, "encode": 300.0,
                  "to_screen": 1.0}}
    assert [value for _, value in document["queues"]["outbox"]["st-1"]] == [0, 1, 0, 1, 0]
    assert [value for _, value in document["queues"]["publish_backlog"]] == [0, 1, 2, 3, 4]
    assert document["queues"]["pipeline"][0][1] == 41  # the simulator's steps: 1 + 0 + 40
    assert [(m["step"], m["running_s"]) for m in document["on_the_way"]] == [("encode", 993.0)]


def test_the_insight_api_and_page(client: FlaskClient, console: Console, clock: Clock) -> None:
    """/api/insight's shape, the page's charts and links, and a login first."""
    for n in range(3):
        inject(console.db, f"st-{n + 1}", NOON - 1500 + n * 100, [10, 2, 1, 40, 0, 15], n)
    feed(console.db, fleet_messages(NOON - 600, stations=3), NOON - 600)
    feed(console.db, fleet_messages(NOON, stations=3, backlog=[2]), NOON)
    document = client.get("/api/insight").get_json()
    assert set(document) == {"now", "timezone", "hour", "day", "steps", "finished_per_hour",
                             "queues", "slowest", "on_the_way"}
    assert document["timezone"] == ZONE and document["day"]["since"] == "2026-04-30T21:00:00Z"
    assert document["steps"][0] == {
        "step": "deliver", "label": "deliver", "from": "shot_finished", "to": "delivered",
        "hour": {"count": 3, "min_s": 10.0, "avg_s": 10.0, "p95_s": 10.0, "max_s": 10.0},
        "day": {"count": 3, "min_s": 10.0, "avg_s": 10.0, "p95_s": 10.0, "max_s": 10.0}}
    html = client.get("/insight").get_data(as_text=True)
    assert html.count("<svg") == 6 and "How long each step takes" in html
    assert 'href="/insight"' in html and 'action="/movies"' in html
    anonymous = client.application.test_client()
    assert anonymous.get("/api/insight").status_code == 302  # a login first
    assert anonymous.get("/insight").status_code == 302
