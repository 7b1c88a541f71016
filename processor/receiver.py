"""The forced command of a station's SSH key: take one delivery, refuse anything else.

sshd runs `processor receive --station ID --inbox DIR` for every connection made with
that key; the station's request is in `$SSH_ORIGINAL_COMMAND`. Served: an rsync upload
of one of the station's own packages into `DIR/.partial/<id>/` (validated with moviepkg,
flushed and renamed into `DIR/<id>` in one step once rsync ends well), and `status`, a
JSON heartbeat on stdin. Every request ends with one verdict line on stderr (stdout is
rsync's), `stopmo-receive: ok <id> sha256=<MANIFEST's sha256>`, `invalid ...`, `full: ...`,
`refused: ...` and so on (docs/delivery.md); the verdict, not an exit status, is the answer.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from moviepkg.atomic import fsync_dir, fsync_file, write_atomic
from moviepkg.errors import IncompletePackage, PackageError
from moviepkg.ids import is_station_id, split_package_id
from moviepkg.logs import package_context, setup_logging
from moviepkg.reader import read_package
from moviepkg.times import format_utc, utc_now

from .errors import ExitStatus
from .locks import try_lock

log = logging.getLogger("stopmo.receiver")
PREFIX = "stopmo-receive:"
STAGING = ".partial"
RECEIPTS = ".received"
PARTIAL_DIR = ".rsync-partial"  # rsync's --partial-dir inside a staged package
MAX_STATUS_BYTES = 64 * 1024

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


def _shown(command: str) -> str:
    return repr(command if len(command) <= 80 else command[:77] + "...")


def parse_request(command: str | None, station_id: str) -> Request:
    """Turn $SSH_ORIGINAL_COMMAND into a request this station may make, or raise Refused."""
    if not command:
        raise Refused("no command: this key only delivers packages (no shell)")
    try:
        words = shlex.split(command)
    except ValueError:
        raise Refused(f"cannot parse the command {_shown(command)}") from None
    if words == ["status"]:
        return StatusReport()
    if words[:2] != ["rsync", "--server"] or len(words) < 5:
        raise Refused(f"only rsync uploads and status are allowed, not {_shown(command)}")
    *options, dot, dest = words[2:]
    if dot != ".":
        raise Refused(f"expected one destination after '.', found {_shown(command)}")
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


class Receiver:
    """Serve one request of one station into one inbox."""

    def __init__(self, station_id: str, inbox: Path, status_dir: Path | None = None,
                 min_free_bytes: int = 0, rsync: str = "rsync") -> None:
        self.station_id = station_id
        self.inbox = inbox
        self.staging = inbox / STAGING
        self.receipts = inbox / RECEIPTS
        self.status_dir = status_dir or inbox / ".status"
        self.min_free_bytes = min_free_bytes
        self.rsync = rsync

    def serve(self, command: str | None) -> tuple[ExitStatus, str]:
        """Answer one request; return the exit status and the verdict (without prefix)."""
        try:
            request = parse_request(command, self.station_id)
        except Refused as exc:
            log.warning("refused %s: %s", _shown(command or ""), exc)
            return ExitStatus.INVALID, f"refused: {exc}"
        if isinstance(request, StatusReport):
            return self.take_status(sys.stdin.buffer.read(MAX_STATUS_BYTES + 1))
        with package_context(request.package_id):
            return self.upload(request)

    def upload(self, request: Upload) -> tuple[ExitStatus, str]:
        """Run rsync into the staging folder, then commit what arrived."""
        package_id = request.package_id
        for folder in (self.staging, self.receipts):
            folder.mkdir(parents=True, exist_ok=True)
        with try_lock(self.staging / f".{package_id}.lock") as alone:
            if not alone:
                return ExitStatus.FAILURE, f"busy {package_id}: another delivery of it runs"
            receipt = self._receipt(package_id)
            if receipt is not None:  # the station missed our answer last time
                self._drop_staging(package_id)
                return ExitStatus.OK, f"ok {package_id} sha256={receipt} received-before"
            free = shutil.disk_usage(self.inbox).free
            if free < self.min_free_bytes:
                return ExitStatus.FAILURE, (f"full: {free // 2**20} MB free in the inbox, "
                                            f"at least {self.min_free_bytes // 2**20} MB kept free")
            target = self.staging / package_id
            argv = [self.rsync, "--server", *request.options, ".", f"{target}/"]
            code = subprocess.run(argv, check=False).returncode  # stdin/stdout: the channel
            if code != 0:
                log.warning("rsync ended with status %d; the staged part stays for a resume",
                            code)
                if shutil.disk_usage(self.inbox).free < max(self.min_free_bytes, 2**20):
                    return ExitStatus.FAILURE, f"full: no space left in the inbox for {package_id}"
                return ExitStatus.FAILURE, (f"error {package_id}: transfer stopped (rsync "
                                            f"status {code}); the staged part is kept")
            return self.commit(package_id)

    def commit(self, package_id: str) -> tuple[ExitStatus, str]:
        """Validate the staged package, flush it, rename it into the inbox, keep a receipt."""
        staged = self.staging / package_id
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staged / PARTIAL_DIR)  # leftovers of files no longer sent
        try:
            package = read_package(staged)
        except IncompletePackage as exc:
            return ExitStatus.INVALID, f"incomplete {package_id}: {exc}"
        except PackageError as exc:
            log.warning("invalid (%s): %s", exc.reason, exc)
            return ExitStatus.INVALID, f"invalid {package_id} {exc.reason}: {exc}"
        digest = _sha256(staged / "MANIFEST")
        for name in os.listdir(staged):  # validated: frames, MANIFEST and the flag only
            fsync_file(staged / name)
        fsync_dir(staged)
        target = self.inbox / package_id
        if target.exists():  # delivered before and not taken yet, receipt lost in a crash
            if (target / "MANIFEST").exists() and _sha256(target / "MANIFEST") == digest:
                self._drop_staging(package_id)
                return ExitStatus.OK, f"ok {package_id} sha256={digest} received-before"
            return ExitStatus.FAILURE, f"error {package_id}: the inbox holds a different copy"
        os.rename(staged, target)
        fsync_dir(self.inbox)
        fsync_dir(self.staging)
        # After the rename: a crash before the receipt costs a resend, never a lost package.
        try:
            self.receipts.mkdir(exist_ok=True)
            write_atomic(self.receipts / package_id, f"{digest}\n".encode())
        except OSError as exc:  # the package is in the inbox all the same
            log.warning("could not keep the receipt: %s", exc)
        log.info("received %d frames (%s)", len(package.frames),
                 "PUBLISH" if package.publish else "NOPUBLISH")
        return ExitStatus.OK, f"ok {package_id} sha256={digest}"

    def _receipt(self, package_id: str) -> str | None:
        try:
            text = (self.receipts / package_id).read_text().strip()
        except FileNotFoundError:
            return None
        return text if re.fullmatch(r"[0-9a-f]{64}", text) else None

    def _drop_staging(self, package_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.staging / package_id)

    def take_status(self, data: bytes) -> tuple[ExitStatus, str]:
        """Keep a station's status JSON (the latest only), stamped with when it arrived."""
        if len(data) > MAX_STATUS_BYTES:
            return ExitStatus.INVALID, f"refused: status is larger than {MAX_STATUS_BYTES} bytes"
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return ExitStatus.INVALID, f"refused: status is not JSON ({exc})"
        if not isinstance(doc, dict) or doc.get("station_id") != self.station_id:
            return ExitStatus.INVALID, (f"refused: status must be a JSON object with "
                                        f"station_id {self.station_id!r}")
        doc["received_at"] = format_utc(utc_now())
        self.status_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.status_dir / f"{self.station_id}.json",
                     json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8"))
        return ExitStatus.OK, "ok status"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `receive` options (all fixed by the forced command, none by the station)."""
    parser.add_argument("--station", required=True, help="the station this key belongs to")
    parser.add_argument("--inbox", required=True, type=Path, help="the processor's inbox")
    parser.add_argument("--status-dir", type=Path, help="where heartbeats go "
                        "(default INBOX/.status)")
    parser.add_argument("--min-free-mb", type=int, default=100, help="refuse uploads while "
                        "the inbox has less free space (default 100)")
    parser.add_argument("--rsync", default=shutil.which("rsync") or "/usr/bin/rsync",
                        help="the rsync binary")
    parser.add_argument("--log", type=Path, help="append JSON log lines to this file")


def main(args: argparse.Namespace) -> int:
    """Serve $SSH_ORIGINAL_COMMAND; print the verdict line on stderr; return the status."""
    logging.getLogger().setLevel(logging.WARNING)  # stderr goes back to the station
    if args.log is not None:
        try:
            setup_logging("processor", stream=args.log.open("a", encoding="utf-8"),
                          json_lines=True)
        except OSError as exc:  # a log problem must not stop a delivery
            log.warning("cannot log to %s: %s", args.log, exc.strerror)
    problems = []
    if not is_station_id(args.station):
        problems.append(f"--station: expected a station id, found {args.station!r}")
    if not args.inbox.is_absolute() or not args.inbox.is_dir():
        problems.append(f"--inbox: expected an existing absolute folder, found {str(args.inbox)!r}")
    if args.min_free_mb < 0:
        problems.append(f"--min-free-mb: expected 0 or more, found {args.min_free_mb}")
    if problems:
        print(f"{PREFIX} error: the receiver is misconfigured; " + "; ".join(problems),
              file=sys.stderr)
        return ExitStatus.CONFIG
    receiver = Receiver(args.station, args.inbox, args.status_dir,
                        args.min_free_mb * 2**20, args.rsync)
    try:
        status, verdict = receiver.serve(os.environ.get("SSH_ORIGINAL_COMMAND"))
    except OSError as exc:
        log.error("%s", exc)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        status, verdict = ExitStatus.FAILURE, (f"full: {exc.strerror}" if full
                                               else f"error: {exc.strerror or exc}")
    print(f"{PREFIX} {verdict}", file=sys.stderr, flush=True)
    return status
