"""Real Chromium on a festival day of four stations, told by the test clock: the insight
page and a movie's story, screenshotted for a person to look at."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from moviepkg.ids import movie_code, new_package_id
from ops.app import create_app
from ops.console import Console
from ops.db import Database
from ops.insight import day_start
from tests.demo import demo_frame
from tests.ops.conftest import NOON, PASSWORD, Clock, log_in
from tests.ops.simulator import event, feed, state
from tests.ops.test_browser import shots_dir
from tests.services import chromium_page

ZONE = "Asia/Jerusalem"
NOW = NOON + 3.5 * 3600  # 15:30 in Jerusalem
OPENING = day_start(NOON, ZONE) + 9 * 3600
WIFI_TROUBLE = (OPENING + 4.5 * 3600, OPENING + 4.9 * 3600)  # st-3's delivery crawls
UPLINK_DOWN = (OPENING + 5.15 * 3600, OPENING + 5.6 * 3600)  # the 4G router is down


@dataclass
class Shot:
    """One movie of the day and when each thing happened to it."""

    station: str
    package_id: str
    finished: float
    publish: bool
    delivered: float
    times: dict[str, float]


def _local(hours: float) -> float:
    """The festival day's time at a local hour (9.5 is 09:30)."""
    return OPENING + (hours - 9) * 3600


def festival_day(db: Database, seed: int = 7) -> dict[str, str]:
    """Feed a day, 09:00 to 15:30, of four stations and the processing unit into db:
    events, the queues sampled each minute, three troubled movies and operators' commands.
    Return the troubled movies' package ids."""
    rng = random.Random(seed)
    shots: list[Shot] = []
    for n in range(1, 5):
        t, k = OPENING + rng.uniform(60, 500), 0
        while t < NOW - 40:  # the last ones are still on their way at 15:30
            package_id = new_package_id(f"st-{n}", datetime.fromtimestamp(t, UTC),
                                        f"{n:x}{k:03x}")
            deliver = rng.uniform(4, 14)
            if n == 3 and WIFI_TROUBLE[0] <= t <= WIFI_TROUBLE[1]:
                deliver = rng.uniform(150, 420)
            shots.append(Shot(f"st-{n}", package_id, t, rng.random() > 0.15, t + deliver, {}))
            lunch = _local(13) <= t <= _local(14)
            t += max(rng.expovariate(1 / (900 if lunch else 330)), 150 + 20 * n)
            k += 1
    late = new_package_id("st-1", datetime.fromtimestamp(NOW - 45, UTC), "1fff")
    shots.append(Shot("st-1", late, NOW - 45, True, NOW - 37, {}))  # encoding at 15:30
    shots.sort(key=lambda shot: shot.delivered)
    notable = {"quarantined": next(s for s in shots if s.station == "st-2"
                                   and s.finished > _local(11.3)).package_id,
               "failed": next(s for s in shots if s.station == "st-4" and s.publish
                              and s.finished > _local(12.6)).package_id,
               "taken_down": next(s for s in shots if s.station == "st-1" and s.publish
                                  and s.finished > _local(10.5)).package_id,
               "slow": next(s for s in shots if s.station == "st-2"
                            and s.finished > _local(15)).package_id}
    events: list[tuple[float, str, str, str, str, str]] = []
    commands: list[tuple[str, str, str, dict[str, object], str, float, str, str]] = []
    free = OPENING
    for shot in shots:
        word = "PUBLISH" if shot.publish else "NOPUBLISH"
        events += [(shot.finished - rng.uniform(100, 280), shot.station, "kiosk",
                    "shot_started", shot.package_id, ""),
                   (shot.finished, shot.station, "kiosk", "shot_finished", shot.package_id,
                    word),
                   (shot.delivered, shot.station, "sync", "delivered", shot.package_id, "")]
        received = max(shot.delivered + rng.uniform(0.5, 2.5), free)
        if shot.package_id == notable["quarantined"]:
            quarantined = received + 1
            events.append((quarantined, "processor", "processor", "quarantined",
                           shot.package_id, "frame 0042.jpg does not decode (truncated "
                                            "JPEG data)"))
            released = quarantined + 17 * 60
            commands.append(("release", "processor", "processor", {"entry": shot.package_id},
                             "dana", released - 2, "done", "back in the inbox"))
            events.append((released, "processor", "processor", "released", shot.package_id,
                           "by dana"))
            received = released + 2  # beside the queue: the processor took it at once
        events.append((received, "processor", "processor", "received", shot.package_id, word))
        validated = received + rng.uniform(0.4, 1.6)
        events.append((validated, "processor", "processor", "validated", shot.package_id, ""))
        encode = rng.uniform(28, 55) if rng.random() > 0.06 else rng.uniform(70, 110)
        if shot.package_id == notable["slow"]:
            encode = 246.0
        if shot.package_id == late:
            encode = 60.0
        start = validated
        if shot.package_id == notable["failed"]:
            failed = validated + 190
            events.append((failed, "processor", "processor", "failed", shot.package_id,
                           "ffmpeg exited with 1: Cannot allocate memory (3 tries)"))
            retried = failed + 24 * 60
            commands.append(("retry", "processor", "processor",
                             {"package_id": shot.package_id}, "ana", retried - 3, "done",
                             "queued again"))
            events.append((retried, "processor", "processor", "retried", shot.package_id,
                           "by ana"))
            start = retried
        encoded = start + encode
        on_screen = encoded + rng.uniform(0.1, 0.6)
        if start == validated and shot.package_id != notable["quarantined"]:
            free = on_screen  # one movie at a time
        events += [(encoded, "processor", "processor", "encoded", shot.package_id, ""),
                   (on_screen, "processor", "processor", "on_screen", shot.package_id, "")]
        shot.times = {"received": received, "on_screen": on_screen}
        if not shot.publish:
            continue
        attempt, wait = on_screen + rng.uniform(2, 6), 30.0
        while UPLINK_DOWN[0] <= attempt <= UPLINK_DOWN[1]:
            events.append((attempt + 8, "processor", "processor", "publish_failed",
                           shot.package_id, f"store: connection timed out (will retry in "
                                            f"{wait:.0f} s)"))
            attempt, wait = attempt + 8 + wait, min(wait * 2, 300)
        published = attempt + rng.uniform(4, 18)
        if published < NOW:
            events.append((published, "processor", "processor", "published",
                           shot.package_id, ""))
            shot.times["published"] = published
        if shot.package_id == notable["taken_down"]:
            asked = _local(13.1)
            commands.append(("take-down", "processor", "processor",
                             {"movie": movie_code(shot.package_id), "keep_on_screen": True},
                             "noa", asked, "done", "removed from the website and the store"))
            events.append((asked + 4, "processor", "processor", "taken_down",
                           shot.package_id, "a family asked (kept on the big screen)"))
    for at, device, program, kind, package_id, detail in sorted(events):
        if at < NOW:
            feed(db, [event(device, program, kind, package_id, at, detail)], at)
    for name, device, program, args, sender, sent, outcome, detail in commands:
        movie = str(args.get("movie") or args.get("package_id") or args.get("entry"))
        db.query("INSERT INTO commands (id, device, program, name, args, sender, sent, "
                 "expires, movie, outcome, detail, answered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                 "?, ?, ?, ?)", (f"c-{sent:.0f}", device, program, name, json.dumps(args),
                                 sender, sent, sent + 60, movie, outcome, detail, sent + 2))
    minute = OPENING
    while minute < NOW:
        for n in range(1, 5):
            waiting = [s for s in shots if s.station == f"st-{n}"
                       and s.finished <= minute < s.delivered]
            feed(db, [state(f"st-{n}", "sync", {
                "waiting": len(waiting), "oldest_waiting_s":
                    round(minute - min(s.finished for s in waiting)) if waiting else None},
                minute)], minute)
        working = sum(s.delivered <= minute < s.times["on_screen"] for s in shots)
        backlog = sum(s.publish and s.times["on_screen"] <= minute
                      < s.times.get("published", NOW) for s in shots)
        done = sum(s.times.get("published", s.times["on_screen"]) <= minute for s in shots)
        feed(db, [state("processor", "processor", {
            "steps": {"validated": working, "done": done, "waiting-to-publish": backlog},
            "publish_backlog": backlog}, minute)], minute)
        minute += 60
    return notable


@pytest.fixture
def day_site(console: Console, clock: Clock,
             tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The console's pages, on a day's data, served on loopback; the clock at 15:30."""
    clock.now = NOW
    notable = festival_day(console.db)
    posters = tmp_path / "movies"
    posters.mkdir()
    (posters / f"{notable['failed']}.jpg").write_bytes(demo_frame(12, 20, 256, 144))
    console.settings = replace(console.settings, posters_dir=posters, stations=())
    app = create_app({"TESTING": True, "OPS_CONSOLE": console})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", notable
    finally:
        server.shutdown()


def test_a_day_in_numbers(console: Console, clock: Clock) -> None:
    """The day's data is what the screenshots show: plausible, and all of it counted."""
    clock.now = NOW
    notable = festival_day(console.db)
    client = create_app({"TESTING": True, "OPS_CONSOLE": console,
                         "SECRET_KEY": "test"}).test_client()
    log_in(client)
    document = client.get("/api/insight").get_json()
    steps = {step["step"]: step["day"] for step in document["steps"]}
    assert 150 <= steps["deliver"]["count"] <= 300  # about 9 movies an hour a station
    assert steps["encode"]["max_s"] == 246.0
    assert 28 <= steps["encode"]["avg_s"] <= 60 and steps["publish"]["max_s"] > 900
    assert len(document["finished_per_hour"]["stations"]) == 4
    assert document["finished_per_hour"]["hours"][0] == "09:00"
    story = client.get(f"/api/movies/{notable['failed']}").get_json()
    kinds = [line["kind"] for line in story["timeline"]]
    assert kinds.index("failed") < kinds.index("command") < kinds.index("retried")


@pytest.mark.slow  # real Chromium
@pytest.mark.parametrize(("name", "viewport"), [("desktop", {"width": 1400, "height": 900}),
                                                ("phone", {"width": 390, "height": 844})])
def test_insight_and_a_story_in_chromium(day_site: tuple[str, dict[str, str]], name: str,
                                         viewport: dict[str, int]) -> None:
    """Log in, look at /insight, click the slowest movie, find one by code; screenshots."""
    site, notable = day_site
    problems: list[str] = []
    with chromium_page(viewport, name == "phone", problems) as page:
        page.goto(site + "/insight")
        page.fill("#user", "ana")
        page.fill("#password", PASSWORD)
        page.click("form.login button")
        page.wait_for_url(site + "/insight")
        assert page.locator("figure.chart svg").count() == 6
        assert page.locator("figure.movies svg a").count() == 10
        assert "encode" in page.locator("table.moving").inner_text()
        page.screenshot(path=str(shots_dir() / f"insight-{name}.png"), full_page=True)
        page.locator("figure.movies svg a").first.click()
        page.wait_for_url("**/movies/*")
        assert "Shot finished" in page.locator("ol.timeline").inner_text()
        page.fill("#find-q", movie_code(notable["failed"]).lower())
        page.click("form.find button")
        page.wait_for_url(f"**/movies/{notable['failed']}")
        timeline = page.locator("ol.timeline").inner_text()
        assert "Failed (its retries used up)" in timeline and "ana sent" in timeline
        assert page.locator("li.line.problem").count() >= 1
        assert page.locator("img.poster").evaluate("img => img.naturalWidth") == 256
        page.screenshot(path=str(shots_dir() / f"story-{name}.png"), full_page=True)
        page.goto(site + f"/movies/{notable['quarantined']}")
        page.screenshot(path=str(shots_dir() / f"story-quarantined-{name}.png"),
                        full_page=True)
        assert problems == [], problems  # no CSP violations, no script errors
