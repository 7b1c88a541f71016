"""The family's own link: name the movie, or remove it from the public site.

The station's QR code carries an owner key in the address's fragment
(moviepkg.owner); the movie page's script reads it there, keeps it on the phone and
sends it with each change. Only its SHA-256 is in the record, compared in constant
time. Every refusal reads the same ("this link cannot change this movie") whatever the
reason: an unknown or removed movie, no key, a wrong one, a key of another movie.

A change is written as `owner/<id>.json`, the only prefix this site writes. The worker
that wrote it stops showing a removed movie at once (the catalog's overlay) and
refreshes the shared cache, so the other workers follow at their next request, and
within the cache's max age at worst. The processor later takes a removed movie's files
out of the store. A removal is final: a rename after it is refused.

Rate limits (Flask-Limiter, counters in the site's Redis, so every dyno counts
together): every try per client address, and the changes per movie.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, current_app, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from moviepkg.errors import RecordError
from moviepkg.ids import is_package_id
from moviepkg.owner import OwnerChange, key_matches, owner_key_of, parse_owner_change
from moviepkg.writer import clean_title

from .storage import StorageDown
from .views import catalog, storage

bp = Blueprint("owner", __name__)
log = logging.getLogger("stopmo.website.owner")
REFUSED = "This link cannot change this movie."
# Tries per client address (a wrong key costs one like a right one), and changes per movie.
CLIENT_LIMIT = "10 per minute; 60 per day"
MOVIE_LIMIT = "10 per hour"


def client_address() -> str:
    """The visitor's address: behind PROXY_HOPS trusted proxies (Heroku's router: 1), the
    one they saw in X-Forwarded-For; else the connection's."""
    hops = int(current_app.config.get("PROXY_HOPS", 0))
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")
                 if part.strip()]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.remote_addr or "unknown"


def _movie_scope() -> str:
    return "movie:" + str((request.view_args or {}).get("movie_id", ""))[:80]


def _changed(response: Response) -> bool:
    return response.status_code == 200


def limits(app: Flask, storage_uri: str, options: dict[str, Any]) -> Limiter:
    """Put the owner actions' rate limits on app, counted in storage_uri (Redis, or memory
    when the site runs without Redis). A Redis that fails does not block the families:
    each worker counts in memory meanwhile."""
    limiter = Limiter(client_address, app=app, storage_uri=storage_uri,
                      storage_options=options, strategy="moving-window",
                      key_prefix="stopmo:limits", swallow_errors=True,
                      in_memory_fallback_enabled=True, headers_enabled=True)
    limiter.limit(app.config.get("OWNER_CLIENT_LIMIT", CLIENT_LIMIT))(bp)
    limiter.limit(app.config.get("OWNER_MOVIE_LIMIT", MOVIE_LIMIT), key_func=_movie_scope,
                  deduct_when=_changed)(bp)
    return limiter


def _refused() -> tuple[dict[str, str], int]:
    return {"error": REFUSED}, 403


def _asked() -> dict[str, Any]:
    doc = request.get_json(silent=True)
    return doc if isinstance(doc, dict) else request.form.to_dict()


def _current(movie_id: str) -> OwnerChange | None:
    """The owner object in the store (the truth a stale cache cannot hide)."""
    data = storage().get_bytes(owner_key_of(movie_id))
    if data is None:
        return None
    try:
        return parse_owner_change(data, owner_key_of(movie_id))
    except RecordError as exc:
        log.warning("the owner object is unreadable, writing it anew: %s", exc,
                    extra={"package_id": movie_id})
        return None


def _change(movie_id: str, title: str | None, removed: bool) -> ResponseReturnValue:
    """Check the key, then write the change; every refusal says the same."""
    asked = _asked()
    movie = catalog().snapshot().get(movie_id) if is_package_id(movie_id) else None
    if movie is None or not key_matches(asked.get("key"), movie.owner_key_sha256):
        log.info("owner change refused", extra={"package_id": movie_id[:80]})
        return _refused()
    try:
        before = _current(movie_id)
    except StorageDown as exc:
        log.warning("owner change: the store does not answer: %s", exc)
        return {"error": "The movie cannot be changed right now. Please try again later."}, 503
    if before is not None and before.removed:  # final, even while a cache still shows it
        return _refused()
    change = OwnerChange(movie_id, title, removed, datetime.now(UTC).replace(microsecond=0))
    try:
        storage().put_owner(change)
    except StorageDown as exc:
        log.warning("owner change not written: %s", exc, extra={"package_id": movie_id})
        return {"error": "The movie cannot be changed right now. Please try again later."}, 503
    catalog().owner_changed(change)
    log.info("removed by its family" if removed else "named by its family",
             extra={"package_id": movie_id, "code": movie.code})
    return {"status": "removed" if removed else "named", "title": title}


@bp.post("/api/movies/<movie_id>/name")
def name(movie_id: str) -> ResponseReturnValue:
    """Give the movie a name (empty: back to "Movie <code>")."""
    typed = _asked().get("title")
    if not isinstance(typed, str) or len(typed) > 400:
        return {"error": "A name is at most 80 characters."}, 400
    return _change(movie_id, clean_title(typed), removed=False)


@bp.post("/api/movies/<movie_id>/remove")
def remove(movie_id: str) -> ResponseReturnValue:
    """Remove the movie from the public site, for good."""
    return _change(movie_id, None, removed=True)


@bp.app_errorhandler(429)
def too_many(error: TooManyRequests) -> ResponseReturnValue:
    """Too many tries: say so plainly (the Retry-After header says when to try again)."""
    response = error.get_response()
    body = {"error": "Too many tries. Please wait a little and try again."}
    return body, 429, {key: value for key, value in response.headers.items()
                       if key.startswith(("Retry-After", "X-RateLimit"))}
