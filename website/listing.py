"""What the pages ask of the public movies, whoever holds them (Redis, or this worker).

`Listing` is the one interface: a version (pages are cached by it), a total and a page
of a gallery's scope, a movie by id, the movies of a code, the festivals and halls.
`Snapshot` (website.index) holds every movie in memory; `RedisListing`
(website.redisindex) reads Redis on demand; `Overlaid` shows a family's change on the
worker that took it before the shared copy has it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from moviepkg.owner import OwnerChange
from moviepkg.record import MovieRecord

from .index import EVERYTHING, Scope


class Listing(Protocol):
    """The public movies of one version."""

    @property
    def version(self) -> str:
        """Changes whenever any movie does (empty: nothing known)."""

    @property
    def fetched_at(self) -> float:
        """When (epoch seconds) the store read behind it began."""

    def total(self, scope: Scope = ...) -> int:
        """How many movies the scope has."""

    def page(self, scope: Scope, offset: int, count: int) -> list[MovieRecord]:
        """count movies of the scope from offset, newest first."""

    def get(self, movie_id: str) -> MovieRecord | None:
        """The public movie with this id, or None."""

    def find_code(self, typed: str) -> list[MovieRecord]:
        """The movies whose code is what a person typed (usually one)."""

    def festivals(self) -> list[str]:
        """The festivals with public movies."""

    def halls(self) -> list[str]:
        """The halls with public movies."""


@dataclass(frozen=True, slots=True)
class Overlaid:
    """A listing with this worker's recent owner changes on top (names, removals)."""

    base: Listing
    changes: dict[str, OwnerChange]
    mark: str  # tells the changes apart in the version

    @property
    def version(self) -> str:
        """The base's version and the changes'."""
        return f"{self.base.version}+{self.mark}"

    @property
    def fetched_at(self) -> float:
        """As the base."""
        return self.base.fetched_at

    def _shown(self, movie: MovieRecord | None) -> MovieRecord | None:
        change = self.changes.get(movie.id) if movie is not None else None
        if movie is None or change is None:
            return movie
        return None if change.removed else replace(movie, title=change.title)

    def _removed(self) -> list[str]:
        return [movie_id for movie_id, change in self.changes.items() if change.removed]

    def total(self, scope: Scope = EVERYTHING) -> int:
        """The base's total, less the removed movies it still has in scope."""
        gone = [self.base.get(movie_id) for movie_id in self._removed()]
        return self.base.total(scope) - sum(1 for m in gone if m is not None and scope.holds(m))

    def page(self, scope: Scope, offset: int, count: int) -> list[MovieRecord]:
        """The base's page, without the removed ones (and as many more to fill it)."""
        gone = [self.base.get(movie_id) for movie_id in self._removed()]
        extra = sum(1 for m in gone if m is not None and scope.holds(m))
        before = self.base.page(scope, 0, offset + count + extra)
        shown = [m for m in (self._shown(movie) for movie in before) if m is not None]
        return shown[offset:offset + count]

    def get(self, movie_id: str) -> MovieRecord | None:
        """The base's movie as its family left it."""
        return self._shown(self.base.get(movie_id))

    def find_code(self, typed: str) -> list[MovieRecord]:
        """The base's movies of the code, as their families left them."""
        return [m for m in (self._shown(x) for x in self.base.find_code(typed)) if m is not None]

    def festivals(self) -> list[str]:
        """As the base."""
        return self.base.festivals()

    def halls(self) -> list[str]:
        """As the base."""
        return self.base.halls()
