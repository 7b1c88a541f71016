"""JSON: /api/movies, /api/movies/<id>, and /api/code/<code> for the "being made" page.

The answers are the same in every language: words in English, times in ISO 8601.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, request, url_for
from flask_babel import force_locale

from moviepkg.ids import normalize_code
from moviepkg.record import MovieRecord

from .languages import SOURCE_LOCALE
from .pagecache import cached, current_snapshot
from .views import movie_view, page_of, public_movie, scope_asked

bp = Blueprint("api", __name__)


def movie_facts(movie: MovieRecord) -> dict[str, Any]:
    """A movie as the API gives it to everyone: its words in English, and `date`, when it
    was made, in ISO 8601 in the festival's time zone (`created_at` is UTC)."""
    with force_locale(SOURCE_LOCALE):
        view = movie_view(movie)
    view["date"] = movie.created_at.astimezone(ZoneInfo(current_app.config["TIMEZONE"])
                                               ).isoformat()
    return view


@bp.get("/api/movies")
@cached
def movies() -> dict[str, Any]:
    """A page of public movies, newest first."""
    page_movies, page, pages, total = page_of(current_snapshot(), scope_asked(),
                                              request.args.get("page", 1, type=int),
                                              current_app.config["PAGE_SIZE"])
    return {"page": page, "pages": pages, "total": total,
            "movies": [movie_facts(m) for m in page_movies]}


@bp.get("/api/movies/<movie_id>")
@cached
def movie(movie_id: str) -> dict[str, Any]:
    """One public movie."""
    return movie_facts(public_movie(movie_id))


@bp.get("/api/code/<code>")
def code(code: str) -> tuple[dict[str, str], int, dict[str, str]]:
    """Whether the movie of a code is online: `waiting`, or `ready` with where to go.

    Polled by every "being made" page, so it is answered from the catalog's cache (no
    store read) and says no more than the page would: a private or removed movie's
    code is `waiting`, like one that never existed.
    """
    headers = {"Cache-Control": "no-cache"}
    normal = normalize_code(code)
    if normal is None:
        return {"error": "not a movie code"}, 404, headers
    matches = current_snapshot().find_code(normal)
    if not matches:
        return {"code": normal, "status": "waiting"}, 200, headers
    where = (url_for("pages.movie", movie_id=matches[0].id) if len(matches) == 1
             else url_for("pages.by_code", code=normal))
    return {"code": normal, "status": "ready", "url": where}, 200, headers
