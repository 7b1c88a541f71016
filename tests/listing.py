"""What a store's indexes list (every hall's, and a v1 movies/index.json), for tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moviepkg.record import INDEX_KEY, MovieRecord, record_key
from processor.index import listed_records
from processor.store import JSON_TYPE, FileStore, Store


def listed(store: Store | Path) -> list[MovieRecord]:
    """The movies the indexes of store (or of the folder store at a path) list, newest first."""
    return listed_records(store if isinstance(store, Store) else FileStore(store))


def listed_ids(store: Store | Path) -> list[str]:
    """Their ids, newest first."""
    return [record.id for record in listed(store)]


def v1_record(record: MovieRecord) -> dict[str, Any]:
    """record as stopmo wrote it before the owner key and halls (record version 1)."""
    later = ("owner_key_sha256", "width", "height", "festival", "hall")
    return {**{k: v for k, v in record.to_dict().items() if k not in later}, "version": 1}


def write_v1_store(store: Store, records: list[MovieRecord]) -> None:
    """v1 records and one movies/index.json (newest first), as a store of before halls."""
    v1s = [v1_record(record) for record in records]
    for doc in v1s:
        store.put_bytes(record_key(doc["id"]), json.dumps(doc).encode(), JSON_TYPE)
    newest_first = sorted(v1s, key=lambda doc: (doc["created_at"], doc["id"]), reverse=True)
    store.put_bytes(INDEX_KEY, json.dumps({"version": 1, "generated_at": "2025-07-01T12:00:00Z",
                                           "movies": newest_first}).encode(), JSON_TYPE)
