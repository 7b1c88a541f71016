"""The family's own link: an owner key per published movie, and the changes it allows.

At the done screen the station shows a QR code of `<site>/m/<code>#k=<key>`. The key
is random (128 bits), made per movie, shown once and never stored: the MANIFEST (and
from it the record) holds only its SHA-256. The key travels in the address's fragment,
which browsers never send to a server, so it is in no log and no Referer.

With the key, the website lets the family name the movie or remove it from the
public site. It writes each movie's owner state as one object, `owner/<id>.json`
(the only prefix the website may write); the website's catalog and the processor's
index merge it into what they list. A removal is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .errors import RecordError
from .ids import is_package_id
from .manifest import title_problem
from .times import format_utc, parse_utc

OWNER_PREFIX = "owner/"
OWNER_VERSION = 1
KEY_BYTES = 16  # 128 bits: 22 URL-safe characters
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_KEYS = ("version", "id", "title", "removed", "changed_at")


def new_owner_key() -> str:
    """A fresh owner key (22 URL-safe characters)."""
    return secrets.token_urlsafe(KEY_BYTES)


def key_hash(key: str) -> str:
    """The SHA-256 (hex) of an owner key: all that is ever stored of it."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def is_key_hash(text: object) -> bool:
    """Whether text is a SHA-256 in lowercase hex."""
    return isinstance(text, str) and _SHA256_RE.fullmatch(text) is not None


def key_matches(key: object, stored_hash: str | None) -> bool:
    """Whether key is the owner key of a movie whose record holds stored_hash.

    In constant time for a well-formed key; a malformed key, or a movie without an
    owner key, never matches.
    """
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key) or not stored_hash:
        return False
    return hmac.compare_digest(key_hash(key), stored_hash)


def owner_url(movie_url: str, key: str) -> str:
    """The family's own link: the movie's public address with the key in its fragment."""
    return f"{movie_url}#k={key}"


def owner_key_of(package_id: str) -> str:
    """Where the owner state of a movie lives in the store."""
    return f"{OWNER_PREFIX}{package_id}.json"


@dataclass(frozen=True, slots=True)
class OwnerChange:
    """What the family decided about their movie: its name, and whether it is removed."""

    id: str
    title: str | None
    removed: bool
    changed_at: datetime

    def to_json(self) -> bytes:
        """The owner object's bytes."""
        doc = {"version": OWNER_VERSION, "id": self.id, "title": self.title,
               "removed": self.removed, "changed_at": format_utc(self.changed_at)}
        return (json.dumps(doc, ensure_ascii=False) + "\n").encode()


def _want(ok: bool, where: str, expected: str, found: object) -> None:
    if not ok:
        raise RecordError(where, expected, repr(found)[:60])


def parse_owner_change(data: bytes, key: str = "owner object") -> OwnerChange:
    """Read an owner object; raise RecordError naming the field."""
    try:
        doc: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RecordError(key, "UTF-8 JSON", "something else") from None
    _want(isinstance(doc, dict) and set(doc) == set(_KEYS), key,
          "an object with the keys " + ", ".join(_KEYS), doc)
    _want(doc["version"] == OWNER_VERSION and type(doc["version"]) is int,
          f"{key} version", str(OWNER_VERSION), doc["version"])
    movie_id = doc["id"]
    _want(isinstance(movie_id, str) and is_package_id(movie_id)
          and (not key.startswith(OWNER_PREFIX) or key == owner_key_of(movie_id)),
          f"{key} id", "the package id its key names", movie_id)
    title = doc["title"]
    _want(title is None or (isinstance(title, str) and title_problem(title) is None),
          f"{key} title", "null or a valid title", title)
    _want(type(doc["removed"]) is bool, f"{key} removed", "true or false", doc["removed"])
    try:
        changed_at = parse_utc(doc["changed_at"])
    except (TypeError, ValueError):
        raise RecordError(f"{key} changed_at", "a UTC timestamp",
                          repr(doc["changed_at"])) from None
    return OwnerChange(movie_id, title, doc["removed"], changed_at)


class OwnerObjects:
    """The owner objects of a store, read again only when their listing stamp changes.

    A program keeps one and calls `read` with the listing of `owner/` (key -> a stamp
    that changes with the object: an ETag, a size and time), so a refresh of hundreds
    of named movies costs one LIST and a GET per changed object. Hand-written: it is a
    dozen lines over the programs' own store classes.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, OwnerChange | None]] = {}
        self._lock = threading.Lock()

    def read(self, stamped: Mapping[str, str], get: Callable[[str], bytes | None],
             warn: Callable[[str, RecordError], None]) -> dict[str, OwnerChange]:
        """The owner changes by movie id; get(key) reads an object (None: gone since the
        listing); an unreadable one goes to warn(key, error) once and is skipped."""
        with self._lock:
            seen = {}
            for key, stamp in stamped.items():
                if not key.startswith(OWNER_PREFIX) or not key.endswith(".json"):
                    continue
                known = self._seen.get(key)
                if known is not None and known[0] == stamp:
                    seen[key] = known
                    continue
                data = get(key)
                if data is None:
                    continue
                try:
                    change = parse_owner_change(data, key)
                except RecordError as exc:
                    warn(key, exc)
                    seen[key] = (stamp, None)
                    continue
                before = known[1] if known is not None else None
                if before is not None and before.removed and not change.removed:
                    change = before  # a removal is final, whatever was written after it
                seen[key] = (stamp, change)
            self._seen = seen
            return {change.id: change for _, change in seen.values() if change is not None}


def apply_owner_changes(records: Iterable[Any], changes: Mapping[str, OwnerChange]) -> list[Any]:
    """The records as the families left them: removed ones gone, named ones renamed.

    Works on any frozen dataclass with `id` and `title` (a MovieRecord).
    """
    if not changes:
        return list(records)
    kept = []
    for record in records:
        change = changes.get(record.id)
        if change is None:
            kept.append(record)
        elif not change.removed:  # the family's name, or none: "Movie CODE" again
            kept.append(replace(record, title=change.title))
    return kept
