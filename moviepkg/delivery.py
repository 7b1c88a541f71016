"""The delivery protocol's words: what a station and the processor's receiver say.

Stations and the processing unit are upgraded separately (ansible/upgrade-stations.yml),
so the protocol has a version. A station names it as the first word of every request
it sends over its SSH key (`stopmo/1 rsync --server ...`, `stopmo/1 status`); the
receiver speaks the versions in SPOKEN, takes a request without a version word as one
from a station older than versioning (it spoke what is now version 1), and refuses any
other version in one clear line. Every request ends with one verdict line on stderr:
`stopmo-receive: <word> ...` (docs/delivery.md lists the words).
"""

from __future__ import annotations

import re

VERSION = 1
PROTOCOL = f"stopmo/{VERSION}"  # the word a station puts first in its requests
SPOKEN = frozenset({1})  # the versions a receiver of this release understands
VERDICT_PREFIX = "stopmo-receive:"
STAGING = ".partial"  # inbox/.partial/<id>/: where an upload lands until it is checked
PARTIAL_DIR = ".rsync-partial"  # rsync's --partial-dir inside a staged package
RECEIVED_BEFORE = "received-before"  # after `ok <id> sha256=...`: it was there already
# Verdict words. ok: delivered; invalid/incomplete: this package is refused; full, busy,
# error: try again later; refused: the request itself is not allowed.
VERDICTS = ("ok", "invalid", "incomplete", "full", "busy", "error", "refused")
_VERSION_RE = re.compile(r"stopmo/(\d{1,6})")


def split_version(words: list[str]) -> tuple[int | None, list[str]]:
    """Take the version word off a request: (version or None when absent, the rest)."""
    if words:
        match = _VERSION_RE.fullmatch(words[0])
        if match:
            return int(match[1]), words[1:]
    return None, words


def upgrade_hint(said: str) -> str | None:
    """When a receiver's refusal quotes our version word, it predates it: say what to do."""
    if PROTOCOL in said:
        return (f"the processor's receiver does not speak {PROTOCOL}: upgrade the processor "
                "(ansible site.yml) before the stations")
    return None
