"""Access to the published movies: a local folder or an S3 bucket.

The website reads `movies/` and writes only the families' owner objects under
`owner/` (moviepkg.owner): its credentials need s3:GetObject and s3:ListBucket, and
s3:PutObject on `owner/*` (docs/website.md has the policy). Video bytes never pass
through the app from S3: the browser gets a public object URL or a short-lived
presigned one.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from moviepkg.atomic import write_atomic
from moviepkg.owner import OwnerChange, owner_key_of
from moviepkg.storage import storage_location

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pragma: no cover

_KEY_RE = re.compile(r"^movies/[a-z0-9][a-z0-9-]{0,62}\.(mp4|jpg|json)$|^movies/index\.json$"
                     r"|^movies/index/[a-z0-9][a-z0-9-]{0,40}/\d{4}-\d{2}-\d{2}\.json$"
                     r"|^owner/[a-z0-9][a-z0-9-]{0,62}\.json$")


class StorageDown(Exception):
    """The store cannot be reached or refused a read; the message says which key."""


def check_key(key: str) -> str:
    """Allow only the keys the website reads (movies/<id>.mp4|jpg|json, the index, the
    owner objects)."""
    if not _KEY_RE.fullmatch(key):
        raise ValueError(f"not a movie key: {key!r}")
    return key


class Storage(abc.ABC):
    """Where the website reads records and finds media; it writes only owner objects."""

    url: str

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes | None:
        """Return the object's bytes, None if it does not exist; raise StorageDown."""

    @abc.abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Return the keys under prefix, sorted; raise StorageDown."""

    @abc.abstractmethod
    def list_stamped(self, prefix: str) -> dict[str, str]:
        """Return the keys under prefix, each with a stamp that changes with the object;
        raise StorageDown."""

    @abc.abstractmethod
    def put_owner(self, change: OwnerChange) -> None:
        """Write a family's owner object (owner/<id>.json), whole or not at all; raise
        StorageDown."""

    @abc.abstractmethod
    def media_url(self, key: str, download_name: str | None = None) -> str | None:
        """Return a URL the browser can fetch key from (None: the app serves it itself)."""

    def local_path(self, key: str) -> Path | None:
        """Return the file of key for a local folder store, else None."""
        return None

    def lasting_url(self, key: str) -> str | None:
        """Return an absolute URL of key that does not expire, or None if there is none."""
        return None

    @property
    def media_origin(self) -> str | None:
        """The origin media URLs point at (for the Content-Security-Policy), if not ours."""
        return None

    @property
    def links_expire_after(self) -> float | None:
        """How long the media URLs it gives stay valid (presigned), or None (forever)."""
        return None

    def check(self) -> None:
        """Raise StorageDown if the store cannot be read."""
        self.list_keys("movies/index")


class FolderStorage(Storage):
    """A local folder laid out like the bucket; the app serves media with Range support."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def local_path(self, key: str) -> Path | None:
        """Return the file of key."""
        return self.root.joinpath(*check_key(key).split("/"))

    def get_bytes(self, key: str) -> bytes | None:
        """Read a file of the store."""
        path = self.local_path(key)
        assert path is not None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageDown(f"{self.url}/{key}: {exc.strerror}") from None

    def list_keys(self, prefix: str) -> list[str]:
        """List the files under prefix."""
        if not self.root.is_dir():
            raise StorageDown(f"{self.url}: no such folder")
        folder, _, start = prefix.rpartition("/")
        base = self.root / folder
        if not base.is_dir():
            return []
        keys = []
        for entry in os.scandir(base):  # only the names that start right, then all below
            if entry.name.startswith(".") or not entry.name.startswith(start):
                continue
            if entry.is_file():
                keys.append(f"{folder}/{entry.name}" if folder else entry.name)
                continue
            for top, dirs, files in os.walk(entry.path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                here = Path(top).relative_to(self.root).as_posix()
                keys += [f"{here}/{name}" for name in files if not name.startswith(".")]
        return sorted(keys)

    def list_stamped(self, prefix: str) -> dict[str, str]:
        """The files under prefix with their size, time and inode."""
        stamped = {}
        for key in self.list_keys(prefix):
            with contextlib.suppress(FileNotFoundError):
                info = self.root.joinpath(*key.split("/")).stat()
                stamped[key] = f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"
        return stamped

    def put_owner(self, change: OwnerChange) -> None:
        """Write the owner object with a crash-safe rename."""
        path = self.local_path(owner_key_of(change.id))
        assert path is not None
        try:
            path.parent.mkdir(exist_ok=True)
            write_atomic(path, change.to_json())
        except OSError as exc:
            raise StorageDown(f"{self.url}/{owner_key_of(change.id)}: {exc.strerror}") from None

    def media_url(self, key: str, download_name: str | None = None) -> str | None:
        """The app serves local media itself."""
        return None


class S3Storage(Storage):
    """An S3 (or S3-compatible) bucket, read with the standard AWS variables."""

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None,
                 public_base_url: str | None = None, presign_seconds: int = 900) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign_seconds = presign_seconds
        self.client = client or _client_from_env()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def get_bytes(self, key: str) -> bytes | None:
        """Read one object."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(check_key(key)))
            data: bytes = response["Body"].read()
            return data
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StorageDown(f"{self.url}/{key}: {exc}") from None
        except BotoCoreError as exc:
            raise StorageDown(f"{self.url}/{key}: {exc}") from None

    def list_keys(self, prefix: str) -> list[str]:
        """List the objects under prefix."""
        return sorted(self.list_stamped(prefix))

    def list_stamped(self, prefix: str) -> dict[str, str]:
        """List the objects under prefix with their ETag and time."""
        from botocore.exceptions import BotoCoreError, ClientError

        stamped: dict[str, str] = {}
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                stamped.update((item["Key"][strip:],
                                f"{item.get('ETag', '')}:{item.get('LastModified', '')}")
                               for item in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise StorageDown(f"{self.url}/{prefix}: {exc}") from None
        return stamped

    def put_owner(self, change: OwnerChange) -> None:
        """Put the owner object (a PUT is atomic in S3)."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = owner_key_of(change.id)
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(check_key(key)),
                                   Body=change.to_json(), ContentType="application/json",
                                   CacheControl="no-cache")
        except (BotoCoreError, ClientError) as exc:
            raise StorageDown(f"{self.url}/{key}: {exc}") from None

    def media_url(self, key: str, download_name: str | None = None) -> str | None:
        """A public URL, or a presigned one (SigV4); downloads always presigned (attachment)."""
        key = check_key(key)
        lasting = self.lasting_url(key)
        if lasting and download_name is None:
            return lasting
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if download_name is not None:
            params["ResponseContentDisposition"] = content_disposition(download_name)
        url: str = self.client.generate_presigned_url("get_object", Params=params,
                                                      ExpiresIn=self.presign_seconds)
        return url

    @property
    def links_expire_after(self) -> float | None:
        """Presigned URLs live presign_seconds; public ones forever."""
        return None if self.public_base_url else float(self.presign_seconds)

    def lasting_url(self, key: str) -> str | None:
        """The public object URL (PUBLIC_BASE_URL); presigned ones expire: None."""
        if not self.public_base_url:
            return None
        return f"{self.public_base_url}/{quote(self._key(check_key(key)))}"

    @property
    def media_origin(self) -> str | None:
        """Where the browser fetches media from."""
        sample = self.media_url("movies/index.json") or ""
        parts = urlsplit(sample)
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else None


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    ascii_name = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\/' else "_"
                         for ch in name) or "movie.mp4"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def _client_from_env() -> S3Client:
    import boto3
    from botocore.config import Config

    config = Config(signature_version="s3v4", connect_timeout=2, read_timeout=5,
                    retries={"max_attempts": 2, "mode": "standard"})
    client: S3Client = boto3.session.Session().client("s3", config=config)
    return client


def open_storage(url: str, public_base_url: str | None = None,
                 presign_seconds: int = 900) -> Storage:
    """Open STORAGE_URL (parsed by moviepkg.storage): a folder or an S3 bucket."""
    where = storage_location(url)
    return FolderStorage(where.folder) if where.folder is not None else S3Storage(
        where.bucket, where.prefix, public_base_url=public_base_url,
        presign_seconds=presign_seconds)
