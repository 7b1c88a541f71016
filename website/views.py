"""The pages: gallery, movie, download, find by code, local media, not-found."""

from __future__ import annotations

import logging
import math
from typing import Any
from zoneinfo import ZoneInfo

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
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from moviepkg.ids import is_package_id, normalize_code
from moviepkg.record import MovieRecord

from .catalog import Catalog
from .index import Snapshot
from .storage import Storage, check_key

bp = Blueprint("pages", __name__)
log = logging.getLogger("stopmo.website.views")


def catalog() -> Catalog:
    """The app's catalog of public movies."""
    found: Catalog = current_app.extensions["stopmo.catalog"]
    return found


def storage() -> Storage:
    """The app's read-only store."""
    found: Storage = current_app.extensions["stopmo.storage"]
    return found


def media_url(key: str) -> str:
    """Where the browser fetches a poster or a video: the store, or this app."""
    return storage().media_url(key) or url_for("pages.media", name=key.removeprefix("movies/"))


def movie_view(movie: MovieRecord) -> dict[str, Any]:
    """What templates and the API show of a movie."""
    local = movie.created_at.astimezone(ZoneInfo(current_app.config["TIMEZONE"]))
    return {"id": movie.id, "code": movie.code, "title": movie.title,
            "display_title": movie.title or f"Movie {movie.code}",
            "station": movie.station_id, "created_at": movie.created_at.isoformat(),
            "date": f"{local.day} {local:%B %Y, %H:%M}", "duration_s": movie.duration_s,
            "frames": movie.frames, "fps": movie.fps,
            "url": url_for("pages.movie", movie_id=movie.id),
            "poster_url": media_url(movie.poster), "video_url": media_url(movie.video),
            "download_url": url_for("pages.download", movie_id=movie.id)}


def page_of(snapshot: Snapshot, page: int, size: int) -> tuple[list[MovieRecord], int, int]:
    """Cut the movies into pages; return (movies of the page, page, number of pages)."""
    pages = max(1, math.ceil(len(snapshot.movies) / size))
    page = min(max(1, page), pages)
    return list(snapshot.movies[(page - 1) * size: page * size]), page, pages


def told(what: str, movie: MovieRecord) -> None:
    """One INFO line per movie page or video request, with the package id and the code,
    so one grep of the logs follows a movie from the station to the family."""
    log.info(what, extra={"package_id": movie.id, "code": movie.code})


def public_movie(movie_id: str) -> MovieRecord:
    """The public movie with this id, or a 404."""
    if not is_package_id(movie_id):
        abort(404)
    movie = catalog().snapshot().by_id.get(movie_id)
    if movie is None:
        abort(404)
    return movie


@bp.get("/")
def gallery() -> str:
    """Every public movie, newest first, a page at a time."""
    snapshot = catalog().snapshot()
    movies, page, pages = page_of(snapshot, request.args.get("page", 1, type=int),
                                  current_app.config["PAGE_SIZE"])
    return render_template("gallery.html", movies=[movie_view(m) for m in movies], page=page,
                           pages=pages, total=len(snapshot.movies),
                           degraded=bool(catalog().last_error))


@bp.get("/movies/<movie_id>")
def movie(movie_id: str) -> str:
    """One movie: the player, its code, a download link."""
    found = public_movie(movie_id)
    available = True
    local = storage().local_path(found.video)
    if local is not None and not local.is_file():
        available = False
    told("movie page" if available else "movie page, video missing", found)
    return render_template("movie.html", movie=movie_view(found), available=available)


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
    """Serve a poster or a video of a public movie from a folder store (with Range)."""
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
    if path is None or not path.is_file():
        abort(404)
    response = send_file(path, mimetype="video/mp4" if kind == "mp4" else "image/jpeg",
                         conditional=True, max_age=86400)
    response.headers["Accept-Ranges"] = "bytes"
    return response


@bp.get("/m/<code>")
def by_code(code: str) -> Response | tuple[str, int] | str:
    """Find a movie by the code the station showed (or its QR code led to)."""
    matches = catalog().snapshot().find_code(code)
    if len(matches) == 1:
        return redirect(url_for("pages.movie", movie_id=matches[0].id))
    if matches:
        return render_template("choose.html", code=matches[0].code,
                               movies=[movie_view(m) for m in matches])
    shown = normalize_code(code) or code[:12]
    return render_template("notfound.html", code=shown,
                           message=f"No movie has the code {shown} (yet)."), 404


@bp.get("/find")
def find() -> Response:
    """The search box: go to /m/<code>."""
    typed = request.args.get("code", "").strip()[:40]
    if not typed:
        return redirect(url_for("pages.gallery"))
    return redirect(url_for("pages.by_code", code=normalize_code(typed) or typed))


@bp.app_errorhandler(404)
def not_found(error: HTTPException) -> tuple[str, int] | tuple[dict[str, str], int]:
    """A helpful page (or JSON for the API) instead of a bare 404."""
    if request.path.startswith("/api/"):
        return {"error": "not found"}, 404
    return render_template("notfound.html", code=None,
                           message="This page or movie does not exist."), 404
