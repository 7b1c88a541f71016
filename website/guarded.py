"""A Redis listing whose every answer falls back to the store: never a 500 for the cache.

website.catalog hands out a `Guarded` around the version in Redis. When a question finds
Redis down or holding something it cannot read, the catalog (the `Fallback`) hears why,
and the answer comes from its own read of the store instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import redis

from moviepkg.record import MovieRecord

from .index import EVERYTHING, Scope, Unreadable
from .listing import Listing
from .redisindex import RedisListing


class Fallback(Protocol):
    """Where a Guarded listing turns when Redis cannot answer (website.catalog.Catalog)."""

    def unreadable(self, exc: Exception, generation: int | None = None) -> None:
        """Redis holds something this worker cannot read."""

    def redis_failed(self, exc: Exception) -> None:
        """Redis failed a question."""

    def direct(self) -> Listing:
        """The movies read from the store by this worker."""


class Guarded:
    """A RedisListing whose every answer falls back to the store when Redis cannot give
    it (down, or holding garbage): a page is never a 500 because of the cache."""

    def __init__(self, inner: RedisListing, fallback: Fallback) -> None:
        self.inner = inner
        self.fallback = fallback

    @property
    def version(self) -> str:
        """The version in Redis."""
        return self.inner.version

    @property
    def fetched_at(self) -> float:
        """When the store read behind it began."""
        return self.inner.fetched_at

    def _ask(self, question: Callable[[Listing], Any]) -> Any:
        try:
            return question(self.inner)
        except Unreadable as exc:
            self.fallback.unreadable(exc, self.inner.keys.generation)
        except redis.RedisError as exc:
            self.fallback.redis_failed(exc)
        return question(self.fallback.direct())

    def total(self, scope: Scope = EVERYTHING) -> int:
        """How many movies the scope has."""
        found: int = self._ask(lambda listing: listing.total(scope))
        return found

    def page(self, scope: Scope, offset: int, count: int) -> list[MovieRecord]:
        """count movies of the scope from offset, newest first."""
        found: list[MovieRecord] = self._ask(lambda listing: listing.page(scope, offset, count))
        return found

    def get(self, movie_id: str) -> MovieRecord | None:
        """The public movie with this id, or None."""
        found: MovieRecord | None = self._ask(lambda listing: listing.get(movie_id))
        return found

    def find_code(self, typed: str) -> list[MovieRecord]:
        """The movies whose code is what a person typed."""
        found: list[MovieRecord] = self._ask(lambda listing: listing.find_code(typed))
        return found

    def festivals(self) -> list[str]:
        """The festivals with public movies."""
        found: list[str] = self._ask(lambda listing: listing.festivals())
        return found

    def halls(self) -> list[str]:
        """The halls with public movies."""
        found: list[str] = self._ask(lambda listing: listing.halls())
        return found

    @property
    def movies(self) -> tuple[MovieRecord, ...]:
        """Every movie, newest first (tools and tests)."""
        return tuple(self.page(Scope(), 0, max(1, self.total())))
