"""Pages and API through the Flask test client, on a real folder store."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from moviepkg.record import INDEX_KEY
from tests.services import free_port, wait_until
from tests.website.conftest import StoreBuilder, make_record, private_copy
from website.app import create_app

ROOT = Path(__file__).resolve().parents[2]


def client_for(store: StoreBuilder, **config: object) -> FlaskClient:
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(), "REDIS": None,
                      "PAGE_SIZE": 4, **config})
    return app.test_client()


def test_gallery_is_newest_first_and_paginated(store: StoreBuilder) -> None:
    for n in range(6):
        store.add(make_record(n))
    client = client_for(store)
    page1 = client.get("/").get_data(as_text=True)
    titles = re.findall(r'<span class="title" dir="auto">([^<]+)</span>', page1)
    assert titles == ["Movie number 5", "Movie number 4", "Movie number 3", "Movie number 2"]
    assert "Page 1 of 2" in page1
    page2 = client.get("/?page=2").get_data(as_text=True)
    assert re.findall(r'<span class="title" dir="auto">([^<]+)</span>', page2) == [
        "Movie number 1", "Movie number 0"]
    assert client.get("/?page=99").status_code == 200  # clamped, not an error


def test_titles_are_escaped_and_any_script_shows(store: StoreBuilder) -> None:
    store.add(make_record(1, title='<script>alert("x")</script>'))
    store.add(make_record(2, title="הסרט של נועה"))
    page = client_for(store).get("/").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert '<span class="title" dir="auto">הסרט של נועה</span>' in page


def test_movie_page_download_and_media_with_range(store: StoreBuilder) -> None:
    record = store.add(make_record(7, title="Our cat"))
    client = client_for(store)
    page = client.get(f"/movies/{record.id}").get_data(as_text=True)
    assert f'src="/media/{record.id}.mp4"' in page and record.code in page
    assert 'class="video-error" hidden' in page
    ranged = client.get(f"/media/{record.id}.mp4", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.data) == 100
    assert ranged.headers["Content-Range"].startswith("bytes 0-99/")
    download = client.get(f"/movies/{record.id}/download")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == 'attachment; filename="Our cat.mp4"'


def test_missing_video_says_so(store: StoreBuilder) -> None:
    record = store.add(make_record(3))
    (store.root / "movies" / f"{record.id}.mp4").unlink()
    page = client_for(store).get(f"/movies/{record.id}").get_data(as_text=True)
    assert "<video" not in page and "cannot be reached right now" in page


def test_find_by_code(store: StoreBuilder) -> None:
    record = store.add(make_record(4))
    client = client_for(store)
    typed = f" {record.code[:3].lower()}-{record.code[3:].lower()} "
    found = client.get("/find", query_string={"code": typed})
    assert found.status_code == 302 and found.headers["Location"] == f"/m/{record.code}"
    movie = client.get(f"/m/{record.code}")
    assert movie.headers["Location"] == f"/movies/{record.id}"
    not_a_code = client.get("/m/ZZZZ1Z")  # 1 is never in a code
    assert not_a_code.status_code == 404
    assert "That is not a movie code" in not_a_code.get_data(as_text=True)


def test_private_records_are_never_shown(store: StoreBuilder) -> None:
    shown = store.add(make_record(1))
    hidden = private_copy(make_record(2))
    store.add(hidden, index=False)
    # A private record forced into the index, as a bug or a hand edit might do.
    index = (store.root / INDEX_KEY).read_text()
    (store.root / INDEX_KEY).write_text(index.replace('"movies":[', '"movies":[' +
                                                      hidden.to_json().decode().strip() + ","))
    client = client_for(store)
    assert client.get(f"/movies/{hidden.id}").status_code == 404
    assert client.get(f"/media/{hidden.id}.mp4").status_code == 404
    assert client.get(f"/api/movies/{hidden.id}").status_code == 404
    assert [m["id"] for m in client.get("/api/movies").get_json()["movies"]] == [shown.id]
    gallery = client.get("/").get_data(as_text=True)
    assert shown.id in gallery and hidden.id not in gallery and hidden.code not in gallery
    assert client.get(f"/api/code/{hidden.code}").get_json()["status"] == "waiting"
    (store.root / INDEX_KEY).unlink()  # the fallback lists the records: still hidden
    fresh = client_for(store)
    assert [m["id"] for m in fresh.get("/api/movies").get_json()["movies"]] == [shown.id]


def test_ids_and_keys_are_validated(store: StoreBuilder) -> None:
    store.add(make_record(1))
    client = client_for(store)
    for path in ("/movies/..%2F..%2Fetc%2Fpasswd", "/movies/UPPER", "/media/index.json",
                 "/media/..%2Fsecret.mp4", "/api/movies/%00"):
        assert client.get(path).status_code == 404, path


def test_api(store: StoreBuilder) -> None:
    for n in range(5):
        store.add(make_record(n))
    client = client_for(store)
    first = client.get("/api/movies").get_json()
    assert (first["page"], first["pages"], first["total"]) == (1, 2, 5)
    one = client.get(f"/api/movies/{first['movies'][0]['id']}").get_json()
    assert one["code"] == first["movies"][0]["code"] and one["video_url"].endswith(".mp4")
    assert client.get("/api/movies/nope-nope").get_json() == {"error": "not found"}


def test_security_headers(store: StoreBuilder) -> None:
    store.add(make_record(1))
    response = client_for(store).get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_healthz(store: StoreBuilder) -> None:
    store.add(make_record(1))
    assert client_for(store).get("/healthz").get_json() == {
        "redis": "off", "storage": "ok", "movies": 1, "status": "ok"}


@pytest.mark.parametrize("debug", ["", "1"])
def test_procfile_command_serves_under_gunicorn(store: StoreBuilder, debug: str) -> None:
    store.add(make_record(1))
    line = (ROOT / "Procfile").read_text().strip()
    assert line.startswith("web: gunicorn ")
    port = free_port()
    args = [a.strip('"') for a in line.removeprefix("web: ").split()]
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT,
                            env={"PORT": str(port), "WEB_CONCURRENCY": "1", "PATH": "/usr/bin:/bin",
                                 "STORAGE_URL": store.root.as_uri(), "REDIS_URL": "",
                                 "FLASK_DEBUG": debug},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/healthz"

        def up() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_until(up, timeout=20, message="gunicorn answers /healthz")
        try:  # never a debugger in production, whatever FLASK_DEBUG says
            urllib.request.urlopen(f"http://127.0.0.1:{port}/movies/x", timeout=2)
        except urllib.error.HTTPError as error:
            assert error.code == 404 and b"Traceback" not in error.read()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
