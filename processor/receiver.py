"""The forced command of a station's SSH key: take one delivery, refuse anything else.

sshd runs `processor receive --station ID --inbox DIR` for every connection made with
that key; the station's request is in `$SSH_ORIGINAL_COMMAND`. Served: an rsync upload
of one of the station's own packages into `DIR/.partial/<id>/` (validated with moviepkg,
flushed and renamed into `DIR/<id>` in one step once rsync ends well), and `status`, a
JSON heartbeat on stdin. Every request ends with one verdict line on stderr (stdout is
rsync's), `stopmo-receive: ok <id> sha256=<MANIFEST's sha256>`, `invalid ...`, `full: ...`,
`refused: ...` and so on (docs/delivery.md); the verdict, not an exit status, is the answer.
Nothing else reaches the station: no traceback, no path of ours (details go to the log).
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
import shutil
import threading
from pathlib import Path
from typing import IO

from moviepkg.atomic import fsync_dir, fsync_file, write_atomic
from moviepkg.delivery import PARTIAL_DIR, RECEIVED_BEFORE, STAGING, VERDICT_PREFIX
from moviepkg.environment import Environment
from moviepkg.errors import IncompletePackage, PackageError
from moviepkg.ids import is_station_id, split_package_id
from moviepkg.locks import try_lock
from moviepkg.logs import package_context, setup_logging
from moviepkg.reader import Limits, read_package
from moviepkg.times import format_utc, utc_now

from .errors import ExitStatus
from .heartbeat import MAX_STATUS_BYTES, BadStatus, parse_status
from .request import Refused, StatusReport, Upload, parse_request, shown
from .staging import Budget, max_file_bytes, remove, run_watched, usage

log = logging.getLogger("stopmo.receiver")
RECEIPTS = ".received"
REFUSALS = ".refused"  # why a staged copy was deleted: one line per package id
MAX_VERDICT_CHARS = 400


class Flushing(threading.Thread):
    """Flush every file of a folder to disk, in a thread; `wait` raises what it met, `stop`
    ends it early (a refused package is deleted, never written back first)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(name="flush", daemon=True)
        self.folder = folder
        self.error: OSError | None = None
        self.stopping = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            for name in os.listdir(self.folder):
                if self.stopping.is_set():
                    return
                fsync_file(self.folder / name)
        except OSError as exc:
            self.error = exc

    def wait(self) -> None:
        """Until every file is on disk; raise the first error."""
        self.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Flush no further file, and return once the one under way is done."""
        self.stopping.set()
        self.join()


class Receiver:
    """Serve one request of one station into one inbox."""

    def __init__(self, station_id: str, inbox: Path, status_dir: Path | None = None,
                 min_free_bytes: int = 0, rsync: str = "rsync", limits: Limits | None = None,
                 max_package_bytes: int | None = None) -> None:
        self.station_id = station_id
        self.inbox = inbox
        self.staging = inbox / STAGING
        self.receipts = inbox / RECEIPTS
        self.refusals = inbox / REFUSALS
        self.status_dir = status_dir or inbox / ".status"
        self.min_free_bytes = min_free_bytes
        self.rsync = rsync
        self.limits = limits or Limits()
        self.budget = Budget.for_limits(self.limits, min_free_bytes, max_package_bytes)

    def serve(self, command: str | None, stdin: IO[bytes]) -> tuple[ExitStatus, str]:
        """Answer one request (a heartbeat is read from stdin); return the exit status and
        the verdict (without prefix)."""
        try:
            request = parse_request(command, self.station_id)
        except Refused as exc:
            log.warning("refused %s: %s", shown(command or ""), exc)
            return ExitStatus.INVALID, f"refused: {exc}"
        if isinstance(request, StatusReport):
            return self.take_status(stdin.read(MAX_STATUS_BYTES + 1))
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
                return ExitStatus.OK, f"ok {package_id} sha256={receipt} {RECEIVED_BEFORE}"
            self._drop_others(package_id)
            free = shutil.disk_usage(self.inbox).free
            if free < self.min_free_bytes:
                return ExitStatus.FAILURE, (f"full: {free // 2**20} MB free in the inbox, "
                                            f"at least {self.min_free_bytes // 2**20} MB kept free")
            target = self.staging / package_id
            # --max-size: the receiving rsync skips a file larger than any a package may hold
            # before a byte of it is sent; the watcher catches the rest (many files, a
            # modified client that lies about sizes, the disk filling up).
            argv = [self.rsync, "--server", *request.options,
                    f"--max-size={max_file_bytes(self.limits)}", ".", f"{target}/"]
            outcome = run_watched(argv, lambda: usage(self._own_staged()),
                                  lambda: shutil.disk_usage(self.inbox).free, self.budget)
            code = outcome.returncode
            if outcome.stopped == "limit":
                return self._discard(package_id, "limit",
                                     f"invalid {package_id} limit: {outcome.detail}")
            if outcome.stopped == "full":
                log.warning("stopped rsync: %s; the staged part stays for a resume",
                            outcome.detail)
                return ExitStatus.FAILURE, f"full: {outcome.detail}; the staged part is kept"
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
        remove(staged / PARTIAL_DIR)  # leftovers of files no longer sent
        # The disk writes the files back while their hashes are checked: together about
        # 40 ms less than one after the other (300 frames of 1080p).
        flushing = Flushing(staged)
        try:
            package = read_package(staged, self.limits)
        except IncompletePackage as exc:  # rsync ended well: nothing more is coming
            flushing.stop()
            return self._discard(package_id, exc.reason, f"incomplete {package_id}: {exc}")
        except PackageError as exc:
            flushing.stop()
            return self._discard(package_id, exc.reason,
                                 f"invalid {package_id} {exc.reason}: {exc}")
        except BaseException:
            flushing.stop()
            raise
        claimed = package.manifest.station_id
        if claimed != self.station_id:  # the id's prefix is checked before rsync; this is not
            flushing.stop()
            return self._discard(package_id, "station",
                                 f"invalid {package_id} station: its MANIFEST says station_id "
                                 f"{claimed!r}, but the key is {self.station_id}'s")
        flushing.wait()  # validated: what it flushed is frames, MANIFEST and the flag only
        digest = _sha256(staged / "MANIFEST")
        fsync_dir(staged)
        target = self.inbox / package_id
        if target.exists():  # delivered before and not taken yet, receipt lost in a crash
            if (target / "MANIFEST").exists() and _sha256(target / "MANIFEST") == digest:
                self._drop_staging(package_id)
                return ExitStatus.OK, f"ok {package_id} sha256={digest} {RECEIVED_BEFORE}"
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
        with contextlib.suppress(OSError):
            (self.refusals / package_id).unlink()  # an earlier attempt's reason is moot now
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
        remove(self.staging / package_id)

    def _discard(self, package_id: str, reason: str, verdict: str) -> tuple[ExitStatus, str]:
        """Delete a staged copy that can never be committed; keep one line saying why."""
        remove(self.staging / package_id)
        log.warning("refused (%s), staged copy deleted: %s", reason, verdict,
                    extra={"reason": reason})
        try:  # the bytes go, the reason stays (for an operator asking what happened)
            self.refusals.mkdir(exist_ok=True)
            write_atomic(self.refusals / package_id,
                         f"{format_utc(utc_now())} {verdict}\n".encode())
        except OSError as exc:
            log.warning("could not keep the reason: %s", exc.strerror)
        return ExitStatus.INVALID, verdict

    def _own_staged(self) -> list[Path]:
        """This station's staging folders (its quota covers them all, however many ids)."""
        with os.scandir(self.staging) as entries:
            return [Path(entry.path) for entry in entries if _owner(entry.name) == self.station_id]

    def _drop_others(self, package_id: str) -> None:
        """Delete this station's other staged parts that no upload is using.

        A station sends one package at a time, oldest first, and resumes it before anything
        else: a part it left for another id is abandoned, and costs a resend at most.
        """
        for folder in self._own_staged():
            if folder.name == package_id:
                continue
            with try_lock(self.staging / f".{folder.name}.lock") as alone:
                if alone:
                    remove(folder)
                    log.info("dropped the abandoned staged part of %s", folder.name,
                             extra={"package_id": folder.name})

    def take_status(self, data: bytes) -> tuple[ExitStatus, str]:
        """Keep a station's status JSON (the latest only), stamped with when it arrived."""
        try:
            doc = parse_status(data, self.station_id)
        except BadStatus as exc:
            return ExitStatus.INVALID, f"refused: {exc}"
        doc["received_at"] = format_utc(utc_now())
        self.status_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.status_dir / f"{self.station_id}.json",
                     json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8"))
        return ExitStatus.OK, "ok status"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _owner(name: str) -> str | None:
    parts = None if name.startswith(".") else split_package_id(name)
    return parts[0] if parts else None


def one_line(verdict: str, inbox: Path) -> str:
    """The verdict as the station may see it: one printable line, no path of ours."""
    text = verdict.replace(str(inbox), "INBOX") if len(inbox.parts) > 1 else verdict
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= MAX_VERDICT_CHARS else text[:MAX_VERDICT_CHARS - 3] + "..."


def main(args: argparse.Namespace, env: Environment) -> int:
    """Serve $SSH_ORIGINAL_COMMAND; print the verdict line on stderr; return the status."""
    try:
        _log_away_from_the_station(args.log)
        status, verdict = _serve(args, env)
    except OSError as exc:
        log.error("%s", exc)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        status, verdict = ExitStatus.FAILURE, (f"full: {exc.strerror}" if full
                                               else f"error: {exc.strerror or 'failed'}")
    except Exception as exc:  # a failsafe: one line for the station, the details in the log
        log.error("the receiver failed: %s", type(exc).__name__, exc_info=True)
        status, verdict = ExitStatus.FAILURE, "error: the receiver failed; its log says why"
    env.complain(f"{VERDICT_PREFIX} {one_line(verdict, args.inbox)}")
    return status


def _serve(args: argparse.Namespace, env: Environment) -> tuple[ExitStatus, str]:
    problems = []
    if not is_station_id(args.station):
        problems.append(f"--station: expected a station id, found {args.station!r}")
    if not args.inbox.is_absolute() or not args.inbox.is_dir():
        problems.append("--inbox: expected an existing absolute folder")
    if args.min_free_mb < 0:
        problems.append(f"--min-free-mb: expected 0 or more, found {args.min_free_mb}")
    if args.max_package_mb is not None and args.max_package_mb < 1:
        problems.append(f"--max-package-mb: expected 1 or more, found {args.max_package_mb}")
    if problems:
        return ExitStatus.CONFIG, "error: the receiver is misconfigured; " + "; ".join(problems)
    max_bytes = None if args.max_package_mb is None else args.max_package_mb * 2**20
    receiver = Receiver(args.station, args.inbox, args.status_dir, args.min_free_mb * 2**20,
                        args.rsync, max_package_bytes=max_bytes)
    return receiver.serve(env.env.get("SSH_ORIGINAL_COMMAND"), env.stdin)


def _log_away_from_the_station(path: Path | None) -> None:
    """Log to --log, else to syslog: stderr is the station's and carries only the verdict."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_stopmo", False)]:
        root.removeHandler(old)  # the program's own, on stderr
    problem = None
    if path is not None:
        try:
            setup_logging("processor", stream=path.open("a", encoding="utf-8"),
                          json_lines=True)
            _quiet(root)
            return
        except OSError as exc:  # a log problem must not stop a delivery
            problem = exc.strerror
    root.setLevel(logging.WARNING)
    from logging.handlers import SysLogHandler  # only here: it needs socket and pickle

    handler: logging.Handler = logging.NullHandler()
    with contextlib.suppress(OSError):
        handler = SysLogHandler("/dev/log")
        handler.setFormatter(logging.Formatter("stopmo-receive[%(process)d]: %(message)s"))
    handler._stopmo = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    _quiet(root)
    if problem is not None:
        log.warning("cannot log to %s: %s", path, problem)


def _quiet(root: logging.Logger) -> None:
    """A handler that fails (a full disk under --log, no syslog or one that went away)
    loses the line: logging's own report of it, a traceback naming our paths, would go to
    stderr, which is the station's."""
    for handler in root.handlers:
        handler.handleError = _lost  # type: ignore[method-assign]


def _lost(record: logging.LogRecord) -> None:
    """A log line that could not be written."""
