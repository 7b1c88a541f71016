"""Open the store STORAGE_URL names (moviepkg.storage parses it): a folder or S3."""

from __future__ import annotations

from pathlib import Path

from moviepkg.storage import storage_location

from .store import FileStore, Store


def open_store(url: str, *, default_root: Path | None = None) -> Store:
    """Open the store url names; an empty url means FileStore(default_root) if given."""
    if not url.strip() and default_root is not None:
        return FileStore(default_root)
    where = storage_location(url)
    if where.scheme == "s3":
        from .s3store import S3Store  # boto3 is slow to import: only when needed

        return S3Store(where.bucket, where.prefix)
    assert where.folder is not None
    return FileStore(where.folder)
