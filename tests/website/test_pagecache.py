"""Pages rendered once per catalog version: the same bytes until a publish changes the
version, an ETag with 304, one page per language and address."""

from __future__ import annotations

import gzip

from flask.testing import FlaskClient

from tests.services import RedisServer, wait_until
from tests.website.conftest import StoreBuilder, make_record
from website.app import create_app
from website.pagecache import PageCache

CACHE_SECONDS = 1


def client_and_pages(store: StoreBuilder, server: RedisServer) -> tuple[FlaskClient, PageCache]:
    app = create_app({"TESTING": True, "STORAGE_URL": store.root.as_uri(),
                      "REDIS_URL": server.url, "CACHE_SECONDS": CACHE_SECONDS})
    return app.test_client(), app.extensions["stopmo.pages"]


def test_a_page_is_rendered_once_per_version_and_revalidated_with_304(
        store: StoreBuilder, redis_server: RedisServer) -> None:
    first = store.add(make_record(1, title="The cat who flew"))
    client, pages = client_and_pages(store, redis_server)
    for path in ("/", f"/movies/{first.id}", "/api/movies", f"/api/movies/{first.id}"):
        one = client.get(path)
        misses, hits = pages.misses, pages.hits
        two = client.get(path)
        assert (pages.misses, pages.hits) == (misses, hits + 1), path  # served from the cache
        assert two.data == one.data and two.status_code == 200, path
        assert one.headers["ETag"] == two.headers["ETag"] and one.headers["Cache-Control"] \
            == "no-cache", path
        again = client.get(path, headers={"If-None-Match": one.headers["ETag"]})
        assert again.status_code == 304 and again.data == b"", path
        assert "Content-Security-Policy" in again.headers, path
        if not path.startswith("/api/"):  # the pages' words follow the language
            assert "Accept-Language" in again.headers["Vary"], path


def test_a_publish_makes_new_pages(store: StoreBuilder, redis_server: RedisServer) -> None:
    store.add(make_record(1, title="The cat who flew"))
    client, _ = client_and_pages(store, redis_server)
    before = client.get("/")
    assert "Robots" not in before.get_data(as_text=True)
    store.add(make_record(2, title="Robots"))  # the processor publishes another

    def listed() -> bool:
        return "Robots" in client.get("/").get_data(as_text=True)

    wait_until(listed, timeout=CACHE_SECONDS + 5, message="the new movie on the gallery")
    after = client.get("/", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert [m["title"] for m in client.get("/api/movies").get_json()["movies"]] == [
        "Robots", "The cat who flew"]


def test_each_language_and_address_has_its_own_page(store: StoreBuilder,
                                                     redis_server: RedisServer) -> None:
    for n in range(30):
        store.add(make_record(n), index=False)
    store.write_index()
    client, _ = client_and_pages(store, redis_server)
    english = client.get("/", headers={"Accept-Language": "en"})
    hebrew = client.get("/", headers={"Accept-Language": "he"})
    assert 'lang="en"' in english.get_data(as_text=True)
    assert 'lang="he"' in hebrew.get_data(as_text=True)
    assert english.headers["ETag"] != hebrew.headers["ETag"]
    second = client.get("/?page=2", headers={"Accept-Language": "en"})
    assert second.data != english.data and second.headers["ETag"] != english.headers["ETag"]
    elsewhere = client.get("/", headers={"Accept-Language": "en"},
                           base_url="http://other.test")
    assert elsewhere.status_code == 200


def test_pages_are_compressed_once_for_those_who_ask(store: StoreBuilder,
                                                     redis_server: RedisServer) -> None:
    store.add(make_record(1, title="The cat who flew"))
    client, _ = client_and_pages(store, redis_server)
    plain = client.get("/")
    squeezed = client.get("/", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert squeezed.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain.headers
    assert gzip.decompress(squeezed.data) == plain.data and len(squeezed.data) < len(plain.data) / 2
    assert "Accept-Encoding" in squeezed.headers["Vary"]
    assert squeezed.headers["ETag"] != plain.headers["ETag"]
    again = client.get("/", headers={"Accept-Encoding": "gzip", "If-None-Match":
                                     squeezed.headers["ETag"]})
    assert again.status_code == 304
