"""JSON: /api/movies and /api/movies/<id>."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request

from .views import catalog, movie_view, page_of, public_movie

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

