"""A code not online yet: the "being made" page, and the poll it makes, served from the cache."""

from __future__ import annotations

import re
import time

from moviepkg.ids import movie_code
from tests.services import RedisServer, wait_until
from tests.website.conftest import StoreBuilder, make_record, private_copy
from tests.website.test_app import client_for
from tests.website.test_catalog import CountingStorage
from website.app import create_app

CACHE_SECONDS = 1


def test_a_code_not_online_yet_gets_a_page_that_checks_again(store: StoreBuilder) -> None:
    """A code of no movie yet: 200, the reasons, the poll's settings, no inline script."""
    store.add(make_record(1))
    code = make_record(2).code  # its movie is not in the store yet
    client = client_for(store)
    response = client.get(f"/m/{code[:3].lower()}-{code[3:].lower()}")  # as typed
    assert response.status_code == 200 and "Location" not in response.headers
    assert response.headers["Cache-Control"] == "no-cache"
    page = response.get_data(as_text=True)
    assert "Your movie is on its way" in page and f"Code <strong>{code}</strong>" in page
    assert "big screen in the hall first" in page and "down for" in page  # why it takes longer
    assert "This page checks by itself" in page
    assert f'data-poll="/api/code/{code}" data-first="3.0"' in page
    assert 'data-longest="300.0" data-for="86400.0"' in page  # growing, for up to a day
    assert '<meta name="robots" content="noindex">' in page
    # No inline script (the CSP forbids it): the page's own script reads the data- attributes.
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/site.js">']
    script = client.get("/static/site.js").get_data(as_text=True)
    assert 'getAttribute("data-poll")' in script and "Retry-After" in script
    assert client.get(f"/api/code/{code.lower()}").get_json() == {"code": code,
                                                                  "status": "waiting"}


def test_a_malformed_code_stays_a_404(store: StoreBuilder) -> None:
    """Something that cannot be a code: the not-found page, and a 404 from the poll."""
    client = client_for(store)
    for typed in ("ZZZZ1Z", "ABC", "ABCDEFGH", "<b>hi"):
        page = client.get(f"/m/{typed}")
        assert page.status_code == 404, typed
        text = page.get_data(as_text=True)
        assert "That is not a movie code" in text and "<b>hi" not in text
        api = client.get(f"/api/code/{typed}")
        assert (api.status_code, api.get_json()) == (404, {"error": "not a movie code"})


def test_private_movies_codes_tell_nothing(store: StoreBuilder) -> None:
    """A private movie's code gets the same page and answer as a code never seen."""
    hidden = store.add(private_copy(make_record(3)))  # NOPUBLISH, as if it reached the store
    client = client_for(store)
    assert client.get(f"/api/code/{hidden.code}").get_json()["status"] == "waiting"
    page = client.get(f"/m/{hidden.code}").get_data(as_text=True)
    assert hidden.id not in page and "Your movie is on its way" in page


def test_the_poll_turns_ready_once_published_and_never_reads_the_store_itself(
        store: StoreBuilder, redis_server: RedisServer) -> None:
    """Polls are answered from the cache; past its max age a published movie is ready."""
    store.add(make_record(1))
    storage = CountingStorage(store.root)
    app = create_app({"TESTING": True, "STORAGE": storage, "REDIS_URL": redis_server.url,
                      "CACHE_SECONDS": CACHE_SECONDS})
    client = app.test_client()
    coming = make_record(2)
    assert coming.code == movie_code(coming.id)
    poll = f"/api/code/{coming.code}"
    assert client.get(poll).get_json() == {"code": coming.code, "status": "waiting"}
    reads, started = storage.reads, time.monotonic()
    for _ in range(100):  # a hall of phones polling: the worker's copy answers
        answer = client.get(poll)
        assert answer.get_json()["status"] == "waiting"
        assert answer.headers["Cache-Control"] == "no-cache"
    refreshes = 1 + int((time.monotonic() - started) / CACHE_SECONDS)
    assert storage.reads - reads <= refreshes, "the poll read the store"

    store.add(coming)  # the processor publishes it
    time.sleep(CACHE_SECONDS + 0.1)  # past the cache's max age: the next poll refreshes
    ready = {"code": coming.code, "status": "ready", "url": f"/movies/{coming.id}"}
    wait_until(lambda: client.get(poll).get_json() == ready, timeout=5, interval=0.05,
               message="the poll to say ready")
    assert client.get(f"/m/{coming.code}").headers["Location"] == f"/movies/{coming.id}"
    other_worker = create_app({"TESTING": True, "STORAGE": storage,
                               "REDIS_URL": redis_server.url}).test_client()
    assert other_worker.get(poll).get_json() == ready  # from Redis
