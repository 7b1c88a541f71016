"""Pages rendered once per catalog version, kept in each worker; ETag and 304.

A gallery page costs a Jinja render with a date in the visitor's language and a dozen
url_for per card: milliseconds, every request. Their content changes only when the
catalog's version does (a publish, a take-down, a family's change), so each worker keeps
the bytes of the pages it rendered, keyed by the version and everything else a page
depends on (the address with its query, the host, the language, whether the store or
the cache is down; with presigned media links, the half link life it is in). A cached
page costs the catalog's one small Redis read and a dict lookup. Each page has an ETag,
so a browser's revalidation (`Cache-Control: no-cache`) is a bodiless 304; a phone that
accepts gzip gets the bytes compressed once per page.

Hand-written: Flask-Caching stores pages in Redis (a round trip and a body per hit)
or per process without a version in the key; this is a bounded dict and a decorator.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from .catalog import Catalog
from .languages import language
from .listing import Listing
from .storage import Storage

ENTRIES = 512  # pages per worker: a few hundred KB


@dataclass(frozen=True, slots=True)
class Page:
    """One rendered page: its bytes, type, status and ETag."""

    body: bytes
    mimetype: str
    status: int
    etag: str
    gzipped: bytes  # the same, compressed once (phones on a mobile link ask for it)


class PageCache:
    """The most recently used pages of this worker (least recently used go first)."""

    def __init__(self, entries: int = ENTRIES) -> None:
        self.entries = entries
        self._pages: OrderedDict[tuple[str, ...], Page] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[str, ...]) -> Page | None:
        """The page kept under key, or None."""
        with self._lock:
            page = self._pages.get(key)
            if page is None:
                self.misses += 1
                return None
            self._pages.move_to_end(key)
            self.hits += 1
            return page

    def put(self, key: tuple[str, ...], page: Page) -> None:
        """Keep page under key, forgetting the oldest beyond the limit."""
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.entries:
                self._pages.popitem(last=False)


def current_snapshot() -> Listing:
    """The catalog's movies for this request (its version asked once per request)."""
    if "stopmo_snapshot" not in g:
        found: Catalog = current_app.extensions["stopmo.catalog"]
        g.stopmo_snapshot = found.snapshot()
    listing: Listing = g.stopmo_snapshot
    return listing


def _link_period() -> str:
    """With presigned media links in the pages (S3 without public objects), pages are
    kept at most half a link's life: a page served is never holding an expired link."""
    storage: Storage = current_app.extensions["stopmo.storage"]
    life = storage.links_expire_after
    return "" if life is None else str(int(time.time() // max(1.0, life / 2)))


def cached(view: Callable[..., ResponseReturnValue]) -> Callable[..., Response]:
    """Serve view's page from this worker's cache while the catalog's version holds."""

    @functools.wraps(view)
    def serve(*args: Any, **kwargs: Any) -> Response:
        snapshot = current_snapshot()
        catalog: Catalog = current_app.extensions["stopmo.catalog"]
        pages: PageCache = current_app.extensions["stopmo.pages"]
        key = (snapshot.version, str(request.endpoint), request.full_path, request.host_url,
               language(), "degraded" if catalog.last_error else "", _link_period())
        squeezed = "gzip" in request.headers.get("Accept-Encoding", "")
        page = pages.get(key) if snapshot.version else None
        if page is None:
            made = current_app.make_response(view(*args, **kwargs))
            body = made.get_data()
            kept = made.status_code == 200 and bool(snapshot.version)
            # Compressed once for every phone that asks, or for this one alone.
            zipped = gzip.compress(body, compresslevel=6, mtime=0) if kept or squeezed else b""
            page = Page(body, made.mimetype or "text/html", made.status_code,
                        hashlib.sha256(b"%s\0%s" % ("\0".join(key).encode(), body))
                        .hexdigest()[:20], zipped)
            if kept:
                pages.put(key, page)
        response = current_app.response_class(page.gzipped if squeezed else page.body,
                                              status=page.status, mimetype=page.mimetype)
        response.set_etag(page.etag + ("-gz" if squeezed else ""))  # one per representation
        if squeezed:
            response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        response.headers["Cache-Control"] = "no-cache"  # revalidate: a 304 when unchanged
        return response.make_conditional(request)

    return serve
