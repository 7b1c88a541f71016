"""The pages without a browser: what the overview and a device page say."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from ops.console import Console
from tests.ops.conftest import Clock, form_token
from tests.ops.simulator import feed, fleet_messages


def test_the_overview_of_a_quiet_start(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    assert html.count('<article class="tile') == 15  # 12 expected stations, unit, screen, uplink
    assert "never" in html and "No open alerts." in html
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_a_device_page_and_its_fragment(client: FlaskClient, console: Console,
                                        clock: Clock) -> None:
    feed(console.db, fleet_messages(clock.now, under_voltage=[7]), clock.now)
    page = client.get("/devices/st-7").get_data(as_text=True)
    assert "UNDER-VOLTAGE" in page and "Attention" in page and "Mute alerts" in page
    live = client.get("/live/devices/st-7").get_data(as_text=True)
    assert "<html" not in live and "under voltage now" in live
    processor = client.get("/devices/processor").get_data(as_text=True)
    assert '<progress id="enc-processor" max="100" value="38">' in processor
    assert client.get("/devices/st-99").status_code == 404
    assert client.get("/devices/ST..1").status_code == 404


def test_mute_needs_a_known_duration(client: FlaskClient) -> None:
    token = form_token(client.get("/devices/st-1").get_data(as_text=True))
    assert client.post("/devices/st-1/mute", data={"minutes": "99999",
                                                   "csrf_token": token}).status_code == 400


def test_titles_typed_by_devices_are_escaped(client: FlaskClient, console: Console,
                                             clock: Clock) -> None:
    from tests.ops.simulator import state

    feed(console.db, [state("st-1", "kiosk", {"screen": "attract", "frames": 0,
                                              "camera_ok": True, "version": "<script>x"},
                            clock.now)], clock.now)
    html = client.get("/devices/st-1").get_data(as_text=True)
    assert "<script>x" not in html and "&lt;script&gt;x" in html


def test_the_big_screen_shows_the_poster_of_what_plays(
        console: Console, clock: Clock, tmp_path: Path) -> None:
    from dataclasses import replace

    from ops.app import create_app
    from tests.ops.conftest import log_in

    playing = "st-2-20260501t120000z-beef"  # what the simulated screen plays
    movies = tmp_path / "movies"
    movies.mkdir()
    (movies / f"{playing}.jpg").write_bytes(b"\xff\xd8\xff\xe0 a poster \xff\xd9")
    console.settings = replace(console.settings, posters_dir=movies)
    app = create_app({"TESTING": True, "OPS_CONSOLE": console, "SECRET_KEY": "test"})
    anonymous = app.test_client()
    assert anonymous.get(f"/posters/{playing}.jpg").status_code == 302  # login first
    client = app.test_client()
    log_in(client)
    feed(console.db, fleet_messages(clock.now), clock.now)
    assert f'src="/posters/{playing}.jpg"' in client.get("/").get_data(as_text=True)
    poster = client.get(f"/posters/{playing}.jpg")
    assert poster.status_code == 200 and poster.mimetype == "image/jpeg"
    assert poster.data.startswith(b"\xff\xd8")
    assert client.get("/posters/st-2-20260501t120000z-dead.jpg").status_code == 404
    assert client.get("/posters/..%2Fsecret.jpg").status_code == 404
