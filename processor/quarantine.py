"""The quarantine: invalid entries set aside with a REASON, released or deleted by an operator.

Each entry is a folder of `work/quarantine/`: a package folder with REASON added, or,
for a stray file or link, a folder holding it and REASON (pipeline.quarantine makes
them). Releasing one puts it back in the inbox as it arrived, without REASON, for
another try; its quarantined state file goes first, so the daemon looks at it afresh
instead of taking it for a duplicate (and never finds, then loses, a state of its own
making). Deleting removes it, and that state, for good. A take-down of the movie
outlives both on the take-down list (state.TakedownList): released, it arrives taken
down. Only names of the quarantine's own entries are accepted: nothing with a slash,
nothing starting with a dot, nothing outside the folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from moviepkg.atomic import fsync_dir, write_atomic
from moviepkg.ids import is_package_id

from .errors import ProcessorError
from .files import move_in
from .state import Listed, PackageState, StateStore, Step, TakedownList

log = logging.getLogger("stopmo.processor.quarantine")
REASON = "REASON"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # as moviepkg reads it


class NotQuarantined(ProcessorError):
    """The name is not an entry of the quarantine, or it cannot be released; in words."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One quarantined entry: its folder, what it was called in the inbox, and why."""

    path: Path
    original: str  # its name in the inbox
    reason: str
    single: Path | None  # the file or link it was, when it was not a folder

    @property
    def package_id(self) -> str | None:
        """The package id it claims by its name (None for a stray name)."""
        return self.original if is_package_id(self.original) else None


class Quarantine:
    """The quarantine folder of a work dir, and the inbox its entries came from."""

    def __init__(self, folder: Path, inbox: Path, states: StateStore,
                 takedowns: TakedownList) -> None:
        self.folder = folder
        self.inbox = inbox
        self.states = states
        self.takedowns = takedowns

    def entry(self, name: str) -> Entry:
        """The entry called name; NotQuarantined for anything else."""
        if not name or "/" in name or "\0" in name or name.startswith("."):
            raise NotQuarantined(f"{name[:80]!r} is not an entry of the quarantine (a name "
                                 f"without slashes that does not start with a dot)")
        if name not in os.listdir(self.folder):
            raise NotQuarantined(f"nothing called {name[:80]!r} is in the quarantine")
        path = self.folder / name
        if path.is_symlink() or not path.is_dir():
            raise NotQuarantined(f"{name!r} in the quarantine is not an entry stopmo made")
        try:
            reason = (path / REASON).read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            reason = "(no REASON file)"
        inside = [child for child in path.iterdir() if child.name != REASON]
        single = None
        if len(inside) == 1 and not (path / "MANIFEST").exists() and \
                (inside[0].name == name or name.startswith(f"{inside[0].name}-")):
            single = inside[0]  # a file or link from the inbox, in a folder of its own
        original = single.name if single is not None else _folder_name(path)
        return Entry(path, original, reason, single)

    def release(self, name: str) -> Entry:
        """Move an entry back into the inbox, as it arrived, for another try; its
        quarantined state goes first (a take-down in it onto the take-down list)."""
        entry = self.entry(name)
        target = self.inbox / entry.original
        if target.exists() or target.is_symlink():
            raise NotQuarantined(f"the inbox holds {entry.original} already: delete or "
                                 f"release that one first")
        known = self.states.load(entry.package_id) if entry.package_id is not None else None
        if known is not None and known.step is not Step.QUARANTINED:
            raise NotQuarantined(
                f"{known.package_id} is {known.status.replace('-', ' ')} already: this "
                f"copy would only be set aside as a duplicate; delete it instead")
        self.inbox.mkdir(parents=True, exist_ok=True)
        if known is not None:  # before the move: the daemon may take it in at once
            self._forget(known)  # looked at afresh, not as quarantined
        try:
            if entry.single is not None:
                move_in(entry.single, target)
            else:
                (entry.path / REASON).unlink(missing_ok=True)  # never into the inbox
                move_in(entry.path, target)
        except OSError:
            if entry.single is None:
                write_atomic(entry.path / REASON, (entry.reason + "\n").encode())
            if known is not None:  # still in the quarantine: still quarantined
                self.states.save(known, known.updated_at)
            raise
        if entry.single is not None:
            shutil.rmtree(entry.path)
        fsync_dir(self.folder)
        log.info("released from the quarantine into the inbox (it was: %s)", entry.reason,
                 extra={"package_id": entry.package_id or entry.original})
        return entry

    def delete(self, name: str) -> Entry:
        """Remove an entry for good (and its quarantined state)."""
        entry = self.entry(name)
        shutil.rmtree(entry.path)
        fsync_dir(self.folder)
        if entry.package_id is not None:
            known = self.states.load(entry.package_id)
            if known is not None and known.step is Step.QUARANTINED:
                self._forget(known)
        log.info("deleted from the quarantine (it was: %s)", entry.reason,
                 extra={"package_id": entry.package_id or entry.original})
        return entry

    def _forget(self, known: PackageState) -> None:
        """Remove a quarantined state file, its take-down kept on the take-down list."""
        if known.taken_down:
            with self.takedowns.held():
                self.takedowns.record(Listed.of(known))
        self.states.remove(known.package_id)


def _folder_name(path: Path) -> str:
    """A package folder's inbox name: the id its MANIFEST claims, if the folder's name is
    that id with a -2, -3 ... of a second copy; else the folder's own name."""
    manifest = path / "MANIFEST"
    if manifest.is_symlink() or not manifest.is_file():  # never read a FIFO or a device
        return path.name
    try:
        with open(manifest, "rb") as fh:
            claimed = json.loads(fh.read(MAX_MANIFEST_BYTES)).get("package_id")
    except (OSError, ValueError, AttributeError, RecursionError):
        return path.name
    if isinstance(claimed, str) and is_package_id(claimed) and \
            path.name.startswith(f"{claimed}-") and path.name[len(claimed) + 1:].isdigit():
        return claimed
    return path.name
