"""What a store's indexes list (every hall's, and a v1 movies/index.json), for tests."""

from __future__ import annotations

from pathlib import Path

from moviepkg.record import MovieRecord
from processor.index import listed_records
from processor.store import FileStore, Store


def listed(store: Store | Path) -> list[MovieRecord]:
    """The movies the indexes of store (or of the folder store at a path) list, newest first."""
    return listed_records(store if isinstance(store, Store) else FileStore(store))


def listed_ids(store: Store | Path) -> list[str]:
    """Their ids, newest first."""
    return [record.id for record in listed(store)]
