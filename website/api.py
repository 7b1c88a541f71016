"""JSON: /api/movies, /api/movies/<id>, and /healthz."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request

from .views import catalog, movie_view, page_of, public_movie, storage

bp = Blueprint("api", __name__)


@bp.get("/api/movies")
def movies() -> dict[str, Any]:
    """A page of public movies, newest first."""
    snapshot = catalog().snapshot()
    page_movies, page, pages = page_of(snapshot, request.args.get("page", 1, type=int),
                                       current_app.config["PAGE_SIZE"])
    return {"page": page, "pages": pages, "total": len(snapshot.movies),
            "movies": [movie_view(m) for m in page_movies]}


@bp.get("/api/movies/<movie_id>")
def movie(movie_id: str) -> dict[str, Any]:
    """One public movie."""
    return movie_view(public_movie(movie_id))


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    """Report Redis and the store; 503 only when movies cannot be listed at all."""
    report: dict[str, Any] = {}
    cache = catalog().cache
    if cache is None:
        report["redis"] = "off"
    else:
        try:
            cache.ping()
            report["redis"] = "ok"
        except Exception as exc:
            report["redis"] = f"down: {exc}"
    try:
        storage().check()
        report["storage"] = "ok"
    except Exception as exc:
        report["storage"] = f"down: {exc}"
    snapshot = catalog().snapshot()
    report["movies"] = len(snapshot.movies)
    healthy = report["storage"] == "ok" or bool(snapshot.version)
    report["status"] = "ok" if healthy else "down"
    return report, 200 if healthy else 503
