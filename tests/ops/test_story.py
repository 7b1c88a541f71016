"""A movie's story: every step in order with its durations, errors in place, by code or id."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from flask.testing import FlaskClient

from moviepkg.ids import movie_code
from ops.app import create_app
from ops.console import Console
from tests.ops.conftest import NOON, Clock, log_in
from tests.ops.simulator import event, feed
from tests.ops.test_insight import inject, package


def troubled(console: Console) -> str:
    """A movie whose publish failed once, and which an operator sent on again."""
    package_id = inject(console.db, "st-3", NOON - 900, [14, 2, 1, 42, 0], 1)
    on_screen = NOON - 900 + 59
    feed(console.db, [
        event("processor", "processor", "publish_failed", package_id, on_screen + 30,
              "store: connection refused (will retry)"),
        event("processor", "processor", "retried", package_id, on_screen + 300, "by ana"),
        event("processor", "processor", "published", package_id, on_screen + 312)],
        on_screen + 312)
    console.db.query(
        "INSERT INTO commands (id, device, program, name, args, sender, sent, expires, movie, "
        "outcome, detail, answered) VALUES ('c1', 'processor', 'processor', 'publish-now', ?, "
        "'ana', ?, ?, ?, 'done', 'one movie tried again', ?)",
        (json.dumps({"package_id": package_id}), on_screen + 299, on_screen + 359,
         package_id, on_screen + 300))
    return package_id


def texts(html: str, css: str) -> list[str]:
    """The text of each element with a class, tags dropped."""
    found = re.findall(rf'<span class="{css}">(.*?)</span>', html, re.S)
    return [re.sub(r"<[^>]+>|\s+", " ", text).strip() for text in found]


def test_every_step_in_order_with_durations(client: FlaskClient, console: Console) -> None:
    """Each event in order, the time since the previous one, each step's duration."""
    package_id = troubled(console)
    html = client.get(f"/movies/{package_id}").get_data(as_text=True)
    what = [re.sub(r"\s+", " ", text) for text in re.findall(r"<strong>(.*?)</strong>", html)]
    assert what == ["Shot finished", "Delivered to the processing unit", "Received",
                    "Validated", "Encoded", "On the big screen", "Publishing failed",
                    "ana sent “publish-now”", "Retried", "Published on the website"]
    assert texts(html, "after") == ["", "+14 s", "+2.0 s", "+1.0 s", "+42 s", "+0.0 s",
                                    "+30 s", "", "+4 min 30 s", "+12 s"]
    assert texts(html, "time")[:2] == ["11:45:00", "11:45:14"]  # Jerusalem, not UTC
    tags = re.findall(r'<span class="steptag step-(\w+)">(.*?)</span>', html)
    assert tags == [("deliver", "deliver: 14 s"), ("receive", "receive: 2.0 s"),
                    ("validate", "validate: 1.0 s"), ("encode", "encode: 42 s"),
                    ("to_screen", "to screen: 0.0 s"), ("publish", "publish: 12 s")]
    assert movie_code(package_id) in html and "on the big screen and published" in html
    assert 'href="/devices/st-3"' in html


def test_an_error_shows_in_place(client: FlaskClient, console: Console) -> None:
    """Problems and operators' actions stand out where they happened, with their detail."""
    package_id = troubled(console)
    html = client.get(f"/movies/{package_id}").get_data(as_text=True)
    failed = html.index('class="line problem kind-publish_failed"')
    detail = html.index("store: connection refused (will retry)")
    assert html.index("On the big screen") < failed < detail < html.index("Retried")
    assert 'class="line action kind-retried"' in html and "by ana" in html
    assert '<span class="outcome done">Done</span>' in html
    assert "one movie tried again" in html
    stopped = package("st-1", NOON, 9)
    feed(console.db, [event("processor", "processor", "received", stopped, NOON, "PUBLISH"),
                      event("processor", "processor", "quarantined", stopped, NOON + 1,
                            "frame 0007.jpg does not decode")], NOON + 1)
    page = client.get(f"/movies/{stopped}").get_data(as_text=True)
    assert "quarantined: frame 0007.jpg does not decode" in page
    assert 'class="line problem kind-quarantined"' in page


def test_found_by_code_and_by_id(client: FlaskClient, console: Console) -> None:
    """By package id, by code (any case, a dash), through the find box; unknown: 404 in words."""
    package_id = troubled(console)
    code = movie_code(package_id)
    for key in (package_id, package_id.upper(), code, code.lower(), f"{code[:3]}-{code[3:]}"):
        page = client.get(f"/movies/{key}")
        assert page.status_code == 200, key
        assert package_id in page.get_data(as_text=True)
    found = client.get("/movies", query_string={"q": f" {code.lower()} "})
    assert found.status_code == 302 and found.headers["Location"] == f"/movies/{package_id}"
    missing = client.get("/movies", query_string={"q": "ZZZZZZ"})
    assert missing.status_code == 404
    assert "No movie found" in missing.get_data(as_text=True)
    unknown = client.get("/movies/st-9-20260501t090000z-0000")
    assert unknown.status_code == 404 and "has heard of no movie" in unknown.get_data(
        as_text=True)
    assert 'action="/movies"' in client.get("/").get_data(as_text=True)  # the overview's box


def test_the_story_api(client: FlaskClient, console: Console, clock: Clock) -> None:
    """/api/movies/<id or code>'s shape, a step in progress, and 404."""
    package_id = troubled(console)
    document = client.get(f"/api/movies/{movie_code(package_id)}").get_json()
    assert set(document) == {"package_id", "code", "station", "publish", "status", "stopped",
                             "in_step", "on_screen_after_s", "steps", "timeline"}
    assert (document["package_id"], document["station"], document["publish"]) == (
        package_id, "st-3", True)
    assert [(step["step"], step["seconds"]) for step in document["steps"]] == [
        ("deliver", 14.0), ("receive", 2.0), ("validate", 1.0), ("encode", 42.0),
        ("to_screen", 0.0), ("publish", 12.0)]
    assert document["on_screen_after_s"] == 59.0 and document["in_step"] is None
    failed = next(line for line in document["timeline"] if line["kind"] == "publish_failed")
    assert failed == {"at": "2026-05-01T08:46:29.000Z", "kind": "publish_failed",
                      "what": "Publishing failed", "device": "processor",
                      "program": "processor", "detail": "store: connection refused "
                      "(will retry)", "after_s": 30.0, "step": None, "step_s": None,
                      "tone": "problem", "sender": None, "outcome": None}
    command = next(line for line in document["timeline"] if line["kind"] == "command")
    assert (command["sender"], command["outcome"]) == ("ana", "done")
    waiting = inject(console.db, "st-1", NOON - 60, [5, 1], 2)
    clock.now = NOON
    in_step = client.get(f"/api/movies/{waiting}").get_json()["in_step"]
    assert in_step == {"step": "validate", "device": "processor", "running_s": 54.0}
    assert client.get("/api/movies/ZZZZZZ").status_code == 404


def test_the_poster_when_the_console_has_it(console: Console, tmp_path: Path) -> None:
    """The poster shows when the console has the file, and only then."""
    package_id = troubled(console)
    movies = tmp_path / "movies"
    movies.mkdir()
    (movies / f"{package_id}.jpg").write_bytes(b"\xff\xd8\xff\xe0 a poster \xff\xd9")
    console.settings = replace(console.settings, posters_dir=movies)
    client = create_app({"TESTING": True, "OPS_CONSOLE": console,
                         "SECRET_KEY": "test"}).test_client()
    log_in(client)
    html = client.get(f"/movies/{package_id}").get_data(as_text=True)
    assert f'src="/posters/{package_id}.jpg"' in html
    other = inject(console.db, "st-1", NOON, [5], 3)
    assert "/posters/" not in client.get(f"/movies/{other}").get_data(as_text=True)


def test_commands_read_the_same_on_the_story_and_in_the_log(
        client: FlaskClient, console: Console, clock: Clock) -> None:
    """A command about the movie says the same words on its story as in the device's audit
    log: its arguments (booleans as yes or no), and waiting, maybe running, expired.
    A quarantine entry named after the movie (`<id>-2`) is found too."""
    package_id = inject(console.db, "st-2", NOON - 100, [5, 1, 1, 30, 0], 4)
    code = movie_code(package_id)
    console.db.add_command("c0ffee000010", "processor", "processor", "take-down",
                           {"movie": code, "keep_on_screen": True}, "ana", clock.now,
                           clock.now + 600, movie=code)
    console.db.add_command("c0ffee000011", "processor", "processor", "release",
                           {"entry": f"{package_id}-2"}, "ben", clock.now - 50,
                           clock.now + 10, movie=f"{package_id}-2", outcome="refused",
                           detail="it is not in the quarantine any more")

    def both() -> tuple[str, str]:
        """The story page and the processing unit's audit log (its live part)."""
        return (client.get(f"/movies/{code}").get_data(as_text=True),
                client.get("/live/devices/processor").get_data(as_text=True))

    story, log = both()
    assert "ana sent “take-down” (keep on screen: yes)" in story
    assert f"take-down (movie: {code}, keep on screen: yes)" in log
    assert "ben sent “release”" in story and "it is not in the quarantine any more" in story
    for page in both():
        assert 'class="outcome waiting">waiting for an answer…<' in page
    clock.advance(601)  # past its expiry: a take-down may run for 10 min more
    for page in both():
        assert "no answer yet (it may still be running)" in page and "expired" not in page
    api = client.get(f"/api/movies/{code}").get_json()["timeline"]
    assert [line["outcome"] for line in api if line["kind"] == "command"] == [
        "refused", "late"]
    clock.advance(600)
    for page in both():
        assert "no answer (expired)" in page and "may still be running" not in page
