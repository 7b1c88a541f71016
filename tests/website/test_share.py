"""Sharing: the Open Graph and Twitter card tags of a movie page, the share button, the icons."""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

from processor.config import Settings
from tests.services import require_binary
from tests.website.conftest import StoreBuilder, make_record, poster_bytes
from tests.website.test_app import client_for

SITE = "https://movies.example.org"


class Head(HTMLParser):
    """The <meta> and <link> tags of a page, and the share button's attributes."""

    def __init__(self, page: str) -> None:
        """Parse page."""
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: dict[str, list[str]] = {}
        self.share: dict[str, str | None] = {}
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note a meta tag (once each), a link, or the share button."""
        found = dict(attrs)
        if tag == "meta" and (found.get("property") or found.get("name")):
            key = found.get("property") or found.get("name") or ""
            assert key not in self.meta, f"{key} twice"
            self.meta[key] = found.get("content") or ""
        elif tag == "link":
            self.links.setdefault(found.get("rel") or "", []).append(found.get("href") or "")
        elif tag == "button" and "share" in (found.get("class") or "").split():
            self.share = found


def probe(video: Path) -> tuple[int, int, float]:
    """Width, height and duration of a video, as ffprobe reads them."""
    done = subprocess.run([require_binary("ffprobe"), "-v", "error", "-select_streams", "v:0",
                           "-show_entries", "stream=width,height:format=duration", "-of", "json",
                           str(video)], capture_output=True, text=True, check=True, timeout=30)
    doc = json.loads(done.stdout)
    stream = doc["streams"][0]
    return stream["width"], stream["height"], float(doc["format"]["duration"])


def test_open_graph_tags_match_the_record_and_the_files(store: StoreBuilder) -> None:
    """The tags a crawler reads: absolute, lasting, true to the record and the files."""
    width, height = Image.open(io.BytesIO(poster_bytes((0, 0, 0)))).size  # what store.add writes
    # A v2 record says its size (the site's own default, 1280x720, would be wrong here).
    record = store.add(replace(make_record(5, title="הסרט של נועה"), width=width, height=height))
    poster = store.root / record.poster
    video = store.root / record.video
    assert Image.open(poster).size == (width, height)
    client = client_for(store, SITE_URL=SITE + "/",
                        FESTIVAL_NAME="Jerusalem Film Festival",
                        STATION_NAMES={"st-1": "Dragon table"})
    head = Head(client.get(f"/movies/{record.id}").get_data(as_text=True))
    meta = head.meta
    page_url = f"{SITE}/movies/{record.id}"
    assert (meta["og:type"], meta["og:url"], head.links["canonical"]) == (
        "video.other", page_url, [page_url])
    assert meta["og:title"] == meta["twitter:title"] == record.title
    assert meta["og:site_name"] == "Jerusalem Film Festival"
    assert meta["og:description"] == meta["twitter:description"] == meta["description"]
    assert "Jerusalem Film Festival" in meta["description"]
    assert "Dragon table" in meta["description"]
    # The poster: absolute, lasting, at its real size.
    assert meta["og:image"] == meta["twitter:image"] == f"{SITE}/media/{record.id}.jpg"
    assert (int(meta["og:image:width"]), int(meta["og:image:height"])) == (width, height)
    assert meta["og:image:type"] == "image/jpeg" and meta["og:image:alt"]
    assert meta["twitter:card"] == "summary_large_image"
    # The video: absolute, its type, its size and its length, as ffprobe reads the file.
    assert meta["og:video"] == meta["og:video:secure_url"] == f"{SITE}/media/{record.id}.mp4"
    assert meta["og:video:type"] == "video/mp4"
    video_width, video_height, seconds = probe(video)
    assert (int(meta["og:video:width"]), int(meta["og:video:height"])) == (
        video_width, video_height)
    assert int(meta["video:duration"]) == round(record.duration_s) == round(seconds)
    for key in ("og:url", "og:image", "og:video", "twitter:image"):
        parts = urlsplit(meta[key])
        assert parts.scheme == "https" and parts.netloc == "movies.example.org", key
    # What a crawler fetches from those addresses is the poster and the movie.
    fetched = client.get(urlsplit(meta["og:image"]).path)
    assert fetched.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(fetched.data)).size == (width, height)
    assert client.get(urlsplit(meta["og:video"]).path).data == video.read_bytes()
    # The share button shares the same address; the copy field holds it too.
    assert head.share["data-url"] == page_url and "hidden" in head.share
    assert head.share["data-title"] == record.title


def test_without_site_url_links_are_on_the_requested_host(store: StoreBuilder) -> None:
    """No SITE_URL: the request's host makes the links; the size is the processor's."""
    record = store.add(replace(make_record(6), title=None))  # as every kiosk movie is now
    client = client_for(store)
    page = client.get(f"/movies/{record.id}", base_url="http://festival.test:8000")
    meta = Head(page.get_data(as_text=True)).meta
    assert meta["og:url"] == f"http://festival.test:8000/movies/{record.id}"
    assert meta["og:image"] == f"http://festival.test:8000/media/{record.id}.jpg"
    assert "og:video:secure_url" not in meta  # plain http: no secure address to give
    assert meta["og:title"] == f"Movie {record.code}"
    # The default size is the processor's: what it publishes unless told otherwise.
    assert (int(meta["og:image:width"]), int(meta["og:image:height"])) == Settings().size


def test_every_page_has_a_description_and_real_icons(store: StoreBuilder) -> None:
    """A description on every page; the SVG, PNG and ICO icons are real and small."""
    store.add(make_record(1))
    client = client_for(store)
    head = Head(client.get("/").get_data(as_text=True))
    assert "Stop-motion movies" in head.meta["description"]
    icons = head.links["icon"] + head.links["apple-touch-icon"] + ["/favicon.ico"]
    assert icons[0].endswith(".svg")
    for href in icons:
        answer = client.get(href)
        assert answer.status_code == 200 and 0 < len(answer.data) < 8192, href
        if href.endswith(".svg"):
            assert answer.mimetype == "image/svg+xml" and b"<svg" in answer.data
            continue
        image = Image.open(io.BytesIO(answer.data))
        if href == "/favicon.ico":
            assert image.format == "ICO" and {(16, 16), (32, 32)} <= image.info["sizes"]
        else:
            assert image.format == "PNG" and image.size in ((32, 32), (180, 180))
