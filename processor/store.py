"""Where published movies go: the Store interface and the local folder store."""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from moviepkg.atomic import fsync_dir, temp_name
from moviepkg.ids import is_package_id
from moviepkg.storage import key_problem

log = logging.getLogger(__name__)

PARTIAL_DIR = ".uploading"  # temporary files of puts in progress
JSON_TYPE = "application/json"
# Media never change under their key (the id is unique); records and the index do.
CACHE_IMMUTABLE = "max-age=31536000, immutable"
CACHE_REVALIDATE = "no-cache"
MIB = 1024 * 1024
S3_MIN_PART = 5 * MIB


class StoreError(Exception):
    """The store could not do what was asked; the message names the key and the problem."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


def key_package_id(key: str) -> str | None:
    """The package a key (or a temporary file of a put) belongs to: movies/<id>.mp4 ->
    <id>; None when its name says no package."""
    name = key.rsplit("/", 1)[-1].lstrip(".")
    stem = name.split(".", 1)[0]
    return stem if is_package_id(stem) else None


def cache_control(key: str) -> str:
    """Return the Cache-Control of a key: media forever, JSON revalidated on every use."""
    return CACHE_REVALIDATE if key.endswith(".json") else CACHE_IMMUTABLE


class Store(abc.ABC):
    """A place for published files, addressed by keys such as 'movies/<id>.mp4'.

    An implementation must:
    - make every put atomic: a reader sees the old object, or none, or the whole new one,
      never a partial one;
    - accept only '/'-separated relative keys without '', '.', '..' or hidden parts
      (key_problem), and raise StoreError for any other key;
    - leave no temporary object visible once a put has returned or raised, and remove the
      leftovers of puts interrupted by a crash in clean_up() (call it when no put runs);
    - raise StoreError, naming the key, for every failure of the storage itself.
    """

    url: str

    def where(self, key: str) -> str:
        """Name a key in messages, e.g. s3://bucket/prefix/movies/x.mp4."""
        return f"{self.url.rstrip('/')}/{key}"

    def _checked(self, key: str) -> str:
        problem = key_problem(key)
        if problem is not None:
            raise StoreError(f"{self.url} key {key!r}", problem)
        return key

    def _checked_prefix(self, prefix: str) -> str:
        if prefix and key_problem(prefix + "x") is not None:
            raise StoreError(f"{self.url} prefix {prefix!r}", "not a relative key prefix")
        return prefix

    @abc.abstractmethod
    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the content of the file at path under key."""

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store data under key."""

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes | None:
        """Return the content under key, or None when there is none."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Tell whether something is stored under key."""

    @abc.abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Return every key that starts with prefix, sorted."""

    @abc.abstractmethod
    def list_stamped(self, prefix: str) -> dict[str, str]:
        """Return every key that starts with prefix with a stamp that changes whenever
        the object does (an ETag, a size and time): a reader GETs only what changed."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove key; a missing key is fine."""

    @abc.abstractmethod
    def clean_up(self) -> int:
        """Remove what interrupted puts left behind; return how many leftovers went."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise StoreError unless the store can be reached and written to."""


class FileStore(Store):
    """A local folder; temporary files live in root/.uploading/ on the same filesystem.

    The root is created on first use if its parent exists, never with missing parents:
    a mistyped or unmounted path fails loudly instead of filling the SD card.
    Content types are not stored: a web server derives them from the file extension.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.partial = self.root / PARTIAL_DIR
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*self._checked(key).split("/"))

    def _put(self, key: str, write: Callable[[IO[bytes]], None]) -> None:
        final = self._path(key)
        try:
            self._make_dir(self.partial)
            tmp = temp_name(self.partial / final.name)
            try:
                with open(tmp, "xb") as fh:
                    write(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                self._make_dir(final.parent)
                os.replace(tmp, final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                raise
            fsync_dir(final.parent)
        except OSError as exc:
            raise StoreError(self.where(key), f"cannot write: {exc}") from exc

    def _make_dir(self, path: Path) -> None:
        """Create path and its missing parents up to root, each made durable."""
        if path.is_dir():
            return
        if path == self.root:
            if not path.parent.is_dir():
                raise FileNotFoundError(f"store root {path}: its parent folder does not exist")
        elif self.root in path.parents:
            self._make_dir(path.parent)
        else:
            raise ValueError(f"{path} is outside the store root {self.root}")  # a bug
        with contextlib.suppress(FileExistsError):
            path.mkdir()
        fsync_dir(path.parent)

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        def copy(fh: IO[bytes]) -> None:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, fh, MIB)

        self._put(key, copy)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        def write(fh: IO[bytes]) -> None:
            fh.write(data)

        self._put(key, write)

    def get_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(self.where(key), f"cannot read: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _walk(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, path) of every file under prefix."""
        prefix = self._checked_prefix(prefix)
        existing = next((p for p in (self.root, *self.root.parents) if p.exists()), self.root)
        if not existing.is_dir():  # as reading a key below a file would fail
            raise StoreError(self.where(prefix + "*"), f"cannot list: {existing} is not a folder")
        top = self.root.joinpath(*prefix.split("/")[:-1])
        for folder, dirs, files in os.walk(top):
            dirs[:] = [name for name in dirs if not name.startswith(".")]
            base = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                key = name if base == "." else f"{base}/{name}"
                if not name.startswith(".") and key.startswith(prefix):
                    yield key, os.path.join(folder, name)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(key for key, _ in self._walk(prefix))

    def list_stamped(self, prefix: str) -> dict[str, str]:
        stamped = {}
        for key, path in self._walk(prefix):
            with contextlib.suppress(FileNotFoundError):  # deleted since the walk
                info = os.stat(path)
                stamped[key] = f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"
        return stamped

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(self.where(key), f"cannot delete: {exc}") from exc
        fsync_dir(path.parent)

    def clean_up(self) -> int:
        try:
            leftovers = [entry for entry in self.partial.iterdir() if entry.is_file()]
        except FileNotFoundError:
            return 0
        for entry in leftovers:
            log.info("removing %s, left by an interrupted put", entry,
                     extra={"package_id": key_package_id(entry.name)})
            entry.unlink(missing_ok=True)
        if leftovers:
            fsync_dir(self.partial)
        return len(leftovers)

    def check(self) -> None:
        try:
            self._make_dir(self.partial)
            probe = temp_name(self.partial / "check")
            probe.write_bytes(b"ok\n")
            probe.unlink()
        except OSError as exc:
            raise StoreError(self.url, f"not writable: {exc}") from exc
