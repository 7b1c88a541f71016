"""The pages: gallery, movie, download, find by code (or "being made"), media, privacy."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import format_date, format_time, gettext
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from moviepkg.ids import is_package_id, normalize_code
from moviepkg.record import MovieRecord, is_name

from .catalog import Catalog
from .festival import Festival, length_text, length_words, movie_title, whole_seconds
from .index import Scope
from .listing import Listing
from .pagecache import cached, current_snapshot
from .sharing import Shared, shared
from .storage import Storage, check_key

bp = Blueprint("pages", __name__)
log = logging.getLogger("stopmo.website.views")
# The "being made" page checks again after this many seconds, then ever less often (up to
# the longest gap), for a day at most. Tests shorten them with POLL_FIRST_SECONDS.
FIRST_POLL_SECONDS = 3.0
LONGEST_POLL_SECONDS = 300.0
POLL_FOR_SECONDS = 86400.0
STATIC = Path(__file__).parent / "static"


def catalog() -> Catalog:
    """The app's catalog of public movies."""
    found: Catalog = current_app.extensions["stopmo.catalog"]
    return found


def storage() -> Storage:
    """The app's read-only store."""
    found: Storage = current_app.extensions["stopmo.storage"]
    return found


def festival() -> Festival:
    """The festival's name, logo, station names and public address."""
    found: Festival = current_app.extensions["stopmo.festival"]
    return found


@bp.app_context_processor
def festival_look() -> dict[str, Any]:
    """Every page shows the festival's name and logo."""
    return {"festival": festival(), "hall_name": festival().hall_name}


def site_media_url(key: str) -> str:
    """This app's path of a poster or video (served, or sent on to the store)."""
    return url_for("pages.media", name=key.removeprefix("movies/"))


def media_url(key: str) -> str:
    """Where the browser fetches a poster or a video: the store, or this app."""
    return storage().media_url(key) or site_media_url(key)


def when_text(when: datetime) -> str:
    """When a movie was made, as the visitor's language writes it, in the festival's time
    zone (Flask-Babel's): `1 May 2026, 12:00`, `1 במאי 2026, 12:00`."""
    # Translators: a movie's date and time, such as "1 May 2026, 12:00".
    return str(gettext("%(date)s, %(time)s", date=format_date(when, "long"),
                       time=format_time(when, "HH:mm")))


def movie_view(movie: MovieRecord) -> dict[str, Any]:
    """What templates and the API show of a movie, in the visitor's language."""
    return {"id": movie.id, "code": movie.code, "title": movie.title,
            "display_title": movie_title(movie.title, movie.code),
            "untitled": movie_title(None, movie.code),
            "station": movie.station_id, "station_name": festival().station_name(movie.station_id),
            "created_at": movie.created_at.isoformat(),
            "date": when_text(movie.created_at), "duration_s": movie.duration_s,
            "length": length_text(movie.duration_s),
            "length_words": length_words(movie.duration_s),
            "length_iso": f"PT{whole_seconds(movie.duration_s)}S",
            "frames": movie.frames, "fps": movie.fps,
            "url": url_for("pages.movie", movie_id=movie.id),
            "poster_url": media_url(movie.poster), "video_url": media_url(movie.video),
            "download_url": url_for("pages.download", movie_id=movie.id)}


def scope_asked() -> Scope:
    """The gallery's scope from ?festival= and ?hall= (anything else: every movie)."""
    festival, hall = request.args.get("festival"), request.args.get("hall")
    return Scope(festival if is_name(festival) else None, hall if is_name(hall) else None)


def page_of(listing: Listing, scope: Scope, page: int,
            size: int) -> tuple[list[MovieRecord], int, int, int]:
    """One page of the scope's movies: (its movies, the page, how many pages, how many
    movies); only that page is read."""
    total = listing.total(scope)
    pages = max(1, math.ceil(total / size))
    page = min(max(1, page), pages)
    return listing.page(scope, (page - 1) * size, size), page, pages, total


def told(what: str, movie: MovieRecord) -> None:
    """One INFO line per movie page or video request, with the package id and the code,
    so one grep of the logs follows a movie from the station to the family."""
    log.info(what, extra={"package_id": movie.id, "code": movie.code})


def public_movie(movie_id: str) -> MovieRecord:
    """The public movie with this id, or a 404."""
    if not is_package_id(movie_id):
        abort(404)
    movie = current_snapshot().get(movie_id)
    if movie is None:
        abort(404)
    return movie


@bp.get("/")
@cached
def gallery() -> str:
    """Every public movie, newest first, a page at a time."""
    listing, scope = current_snapshot(), scope_asked()
    movies, page, pages, total = page_of(listing, scope, request.args.get("page", 1, type=int),
                                         current_app.config["PAGE_SIZE"])
    festivals, halls = listing.festivals(), listing.halls()
    return render_template("gallery.html", movies=[movie_view(m) for m in movies], page=page,
                           pages=pages, total=total, scope=scope,
                           festivals=festivals if len(festivals) > 1 else [],
                           halls=halls if len(halls) > 1 else [],
                           degraded=bool(catalog().last_error))


@bp.get("/movies/<movie_id>")
@cached
def movie(movie_id: str) -> str:
    """One movie: the player, its code, a download link."""
    found = public_movie(movie_id)
    available = True
    local = storage().local_path(found.video)
    if local is not None and not local.is_file():
        available = False
    told("movie page" if available else "movie page, video missing", found)
    return render_template("movie.html", movie=movie_view(found), available=available,
                           share=share_facts(found))


def share_facts(movie: MovieRecord) -> Shared:
    """The absolute, lasting addresses and sizes a shared link of movie shows."""
    return shared(movie, festival(), storage(), url_for("pages.movie", movie_id=movie.id),
                  (site_media_url(movie.poster), site_media_url(movie.video)),
                  request.host_url)


def download_name(movie: MovieRecord) -> str:
    """The file name a download gets: the title (any script), or the code."""
    name = (movie.title or f"stopmo-{movie.code}").replace("/", "-").replace("\\", "-")
    return f"{name}.mp4"


@bp.get("/movies/<movie_id>/download")
def download(movie_id: str) -> Response:
    """Send the movie as a file: a presigned URL (S3), or the file itself (folder store)."""
    found = public_movie(movie_id)
    told("video download", found)
    url = storage().media_url(found.video, download_name=download_name(found))
    if url is not None:
        return redirect(url, code=302)
    path = storage().local_path(found.video)
    if path is None or not path.is_file():
        abort(404)
    return send_file(path, mimetype="video/mp4", as_attachment=True,
                     download_name=download_name(found), conditional=True)


@bp.get("/media/<name>")
def media(name: str) -> Response:
    """Serve a poster or a video of a public movie from a folder store (with Range); for
    S3, send the visitor on to it (shared links point here: presigned URLs expire)."""
    key = f"movies/{name}"
    try:
        check_key(key)
    except ValueError:
        abort(404)
    movie_id, _, kind = name.rpartition(".")
    if kind not in ("mp4", "jpg"):
        abort(404)
    found = public_movie(movie_id)
    if kind == "mp4":  # posters are many per gallery page: only the video is worth a line
        told("video request", found)
    path = storage().local_path(key)
    if path is None:
        moved = redirect(media_url(key), code=302)
        moved.headers["Cache-Control"] = "private, max-age=60"  # well within a presigned life
        return moved
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="video/mp4" if kind == "mp4" else "image/jpeg",
                         conditional=True, max_age=86400)
    response.headers["Accept-Ranges"] = "bytes"
    return response


@bp.get("/m/<code>")
def by_code(code: str) -> Response | tuple[str, int] | tuple[str, int, dict[str, str]] | str:
    """Find a movie by the code the station showed (or its QR code led to); a code of a
    movie not online yet gets the "being made" page, which checks again by itself."""
    normal = normalize_code(code)
    if normal is None:
        return render_template("notfound.html", what="code", code=code[:12]), 404
    matches = current_snapshot().find_code(normal)
    if len(matches) == 1:
        return redirect(url_for("pages.movie", movie_id=matches[0].id))
    if matches:
        return render_template("choose.html", code=normal,
                               movies=[movie_view(m) for m in matches])
    config = current_app.config
    poll = {"url": url_for("api.code", code=normal),
            "first": config.get("POLL_FIRST_SECONDS", FIRST_POLL_SECONDS),
            "longest": config.get("POLL_LONGEST_SECONDS", LONGEST_POLL_SECONDS),
            "for": config.get("POLL_FOR_SECONDS", POLL_FOR_SECONDS)}
    return render_template("waiting.html", code=normal, poll=poll), 200, {
        "Cache-Control": "no-cache"}


@bp.get("/find")
def find() -> Response:
    """The search box: go to /m/<code>."""
    typed = request.args.get("code", "").strip()[:40]
    if not typed:
        return redirect(url_for("pages.gallery"))
    return redirect(url_for("pages.by_code", code=normalize_code(typed) or typed))


@bp.get("/privacy")
def privacy() -> str:
    """What the site publishes, and how a family has a movie removed."""
    return render_template("privacy.html")


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The icon browsers and link previews ask for at the root."""
    return send_file(STATIC / "favicon.ico", mimetype="image/x-icon", max_age=86400)


@bp.app_errorhandler(404)
def not_found(error: HTTPException) -> tuple[str, int] | tuple[dict[str, str], int]:
    """A helpful page (or JSON for the API) instead of a bare 404."""
    if request.path.startswith("/api/"):
        return {"error": "not found"}, 404
    return render_template("notfound.html", what="page", code=None), 404
