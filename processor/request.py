"""What a station's key may ask of the processing unit, read from $SSH_ORIGINAL_COMMAND."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from moviepkg.delivery import PARTIAL_DIR, PROTOCOL, SPOKEN, STAGING, split_version
from moviepkg.ids import split_package_id

# What an rsync client may ask of the server: letters of the one short-option bundle
# (recursive, times, verbose, compress, checksum) and a few long options without paths.
# Everything else (ownership, devices, links, --sender, -s, --log-file...) is refused.
_SHORT = re.compile(r"-(?P<flags>[a-zA-Z]+?)(?P<caps>e\.[A-Za-z]*)?")
_SHORT_ALLOWED = frozenset("trvzc")
_LONG = re.compile(r"--(?:timeout=\d{1,5}|bwlimit=\d{1,9}|delete(?:-during|-delay|-after)?"
                   r"|stats|partial|fsync|log-format=%i|partial-dir=" + re.escape(PARTIAL_DIR)
                   + ")")
_DEST = re.compile(re.escape(STAGING) + r"/(?P<id>[a-z0-9][a-z0-9-]{0,62})/?")


class Refused(Exception):
    """The request is not one this station's key may make."""


@dataclass(frozen=True, slots=True)
class Upload:
    """An rsync upload of one package into its staging folder."""

    package_id: str
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A heartbeat: status JSON on stdin."""


Request = Upload | StatusReport


def shown(command: str) -> str:
    """The command as a log line or verdict may quote it: short, in quotes."""
    return repr(command if len(command) <= 80 else command[:77] + "...")


def parse_request(command: str | None, station_id: str) -> Request:
    """Turn $SSH_ORIGINAL_COMMAND into a request this station may make, or raise Refused."""
    if not command:
        raise Refused("no command: this key only delivers packages (no shell)")
    try:
        words = shlex.split(command)
    except ValueError:
        raise Refused(f"cannot parse the command {shown(command)}") from None
    version, words = split_version(words)  # none: a station from before versioning (1)
    if version is not None and version not in SPOKEN:
        raise Refused(f"this receiver speaks {PROTOCOL}, the station stopmo/{version}: "
                      "upgrade the processor, or install the same release on the station")
    if words == ["status"]:
        return StatusReport()
    if words[:2] != ["rsync", "--server"] or len(words) < 5:
        raise Refused(f"only rsync uploads and status are allowed, not {shown(command)}")
    *options, dot, dest = words[2:]
    if dot != ".":
        raise Refused(f"expected one destination after '.', found {shown(command)}")
    options = _join_partial_dir(options)
    bundles = 0
    for option in options:
        short = _SHORT.fullmatch(option)
        if short and set(short["flags"]) <= _SHORT_ALLOWED:
            bundles += 1
        elif not _LONG.fullmatch(option):
            raise Refused(f"rsync option {option!r} is not allowed")
    if bundles != 1:
        raise Refused("expected exactly one bundle of short rsync options")
    match = _DEST.fullmatch(dest)
    if match is None:
        raise Refused(f"only {STAGING}/<package id>/ may be written, not {dest!r}")
    parts = split_package_id(match["id"])
    if parts is None or parts[0] != station_id:
        raise Refused(f"{match['id']!r} is not a package id of station {station_id}")
    return Upload(match["id"], tuple(options))


def _join_partial_dir(options: list[str]) -> list[str]:
    """rsync sends `--partial-dir .rsync-partial` as two words: make it one."""
    joined: list[str] = []
    words = iter(options)
    for option in words:
        if option == "--partial-dir":
            option = f"--partial-dir={next(words, '')}"
        joined.append(option)
    return joined
