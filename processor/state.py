"""Where each package stands, persisted atomically so a killed daemon resumes.

received -> validated -> encoded -> shown -> done, or quarantined. The big
screen never waits for the store: a movie is shown once encoded, then a PUBLISH
movie waits at `shown` in the publish queue, which retries transient errors
forever (the uplink comes back). An encode step that fails for the environment
is retried with backoff; after max_attempts the package is failed and waits for
an operator (`processor retry ID`). Content errors are quarantined at once.

A movie a family asked to take down (takedown.py) keeps its step and gets
`taken_down_at`/`taken_down_by`: it is never published again, whatever its step.
Every take-down is also on the take-down list (`work/takedowns.json`, TakedownList),
by package id, or by code when that is all the operator gave: a movie that has not
arrived yet, or whose state file goes (released from the quarantine), gets its
take-down from the list when it arrives. For a movie that is here, its state file
is the truth.

`published` is the step of the former order (publish, then show), kept so that a
state file written by an older daemon still resumes: it is shown, then done.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from moviepkg.atomic import unlink_durable, write_atomic
from moviepkg.ids import movie_code
from moviepkg.locks import exclusive


class Step(StrEnum):
    """The last step a package completed."""

    RECEIVED = "received"
    VALIDATED = "validated"
    ENCODED = "encoded"
    SHOWN = "shown"  # on the big screen; a PUBLISH movie waits here to be published
    PUBLISHED = "published"  # older daemons only: published, not yet shown
    DONE = "done"
    QUARANTINED = "quarantined"


FINAL = frozenset({Step.DONE, Step.QUARANTINED})


@dataclass(slots=True)
class PackageState:
    """One package's progress, its failures and how long each step took."""

    package_id: str
    step: Step
    publish: bool = False
    created_at: str = ""
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str = ""
    gave_up: bool = False
    durations: dict[str, float] = field(default_factory=dict)
    updated_at: float = 0.0
    waiting_since: float = 0.0  # when it joined the publish queue (0: not waiting)
    published_at: float = 0.0
    taken_down_at: float = 0.0  # when a take-down was asked (0: never)
    taken_down_by: str = ""  # the operator who took it down
    keep_on_screen: bool = False  # taken down from the website only, still in the hall
    unpublished_at: float = 0.0  # when the store was last seen without it (0: not yet)

    @property
    def taken_down(self) -> bool:
        """Taken down at a family's request: never published (again)."""
        return self.taken_down_at > 0

    @property
    def waiting_to_publish(self) -> bool:
        """On the screen, in the publish queue."""
        return self.step is Step.SHOWN and self.publish and not self.taken_down

    @property
    def status(self) -> str:
        """The step, `failed` once retries are used up, `waiting-to-publish` in the queue,
        `taken-down` once a family asked."""
        if self.gave_up:
            return "failed"
        if self.taken_down:
            return "taken-down"
        return "waiting-to-publish" if self.waiting_to_publish else self.step.value

    def to_json(self) -> bytes:
        """Serialise for the state file."""
        doc = asdict(self)
        doc["step"] = self.step.value
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> PackageState:
        """Load from a state file."""
        doc: dict[str, Any] = json.loads(data)
        doc["step"] = Step(doc["step"])
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in doc.items() if key in known})


class StateStore:
    """State files, one per package, in a folder of the work dir."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, package_id: str) -> Path:
        """The state file of package_id."""
        return self.folder / f"{package_id}.json"

    def load(self, package_id: str) -> PackageState | None:
        """Return the state of package_id, or None if it was never seen."""
        try:
            return PackageState.from_json(self._path(package_id).read_bytes())
        except FileNotFoundError:
            return None

    def save(self, state: PackageState, now: float) -> None:
        """Write the state atomically."""
        state.updated_at = now
        write_atomic(self._path(state.package_id), state.to_json())

    def remove(self, package_id: str) -> None:
        """Forget package_id (a quarantined entry released or deleted); missing is fine."""
        path = self._path(package_id)
        if path.exists():
            unlink_durable(path)

    def all(self) -> list[PackageState]:
        """Every known package's state, by package id."""
        states = []
        for name in sorted(os.listdir(self.folder)):
            if name.endswith(".json") and not name.startswith("."):
                loaded = self.load(name[:-5])
                if loaded is not None:
                    states.append(loaded)
        return states


@dataclass(frozen=True, slots=True)
class Listed:
    """One take-down on the list: the movie's code, its package id when known, who, when."""

    code: str
    package_id: str  # "" when the operator gave only the code
    at: float  # when it was first asked
    by: str  # who first asked
    keep_on_screen: bool  # taken off the website only, may be shown in the hall
    unpublished_at: float = 0.0  # when the store was last seen without it (0: not yet)

    @classmethod
    def of(cls, state: PackageState) -> Listed:
        """The take-down a state records, as a list entry."""
        return cls(movie_code(state.package_id), state.package_id, state.taken_down_at,
                   state.taken_down_by, state.keep_on_screen, state.unpublished_at)

    @property
    def named(self) -> str:
        """The movie as the operator named it: `with code 7AXKMY`, or its package id."""
        return self.package_id or f"with code {self.code}"

    def matches(self, package_id: str) -> bool:
        """Whether this take-down is for package_id: by id, or by code when no id was given."""
        if self.package_id:
            return self.package_id == package_id
        return self.code == movie_code(package_id)

    def apply(self, state: PackageState) -> None:
        """Record this take-down in state (a state taken down already keeps its own)."""
        if state.taken_down:
            return
        state.taken_down_at, state.taken_down_by = self.at, self.by
        state.keep_on_screen, state.unpublished_at = self.keep_on_screen, self.unpublished_at


class TakedownList:
    """Every take-down asked on this unit, in `work/takedowns.json`.

    Read it any time (it is written atomically); change it only inside `held()`, which
    also keeps a package from being taken in while a take-down looks for it.
    """

    def __init__(self, work_dir: Path) -> None:
        self.path = work_dir / "takedowns.json"
        self.lock = work_dir / "locks" / "takedowns.lock"

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the list's lock, waiting for it."""
        with exclusive(self.lock):
            yield

    def entries(self) -> list[Listed]:
        """Every take-down on the list, oldest first.

        A file that is not a take-down list raises ValueError: a family's request must
        not be skipped silently, so nothing is taken in until it is fixed.
        """
        try:
            doc = json.loads(self.path.read_bytes())
            known = set(Listed.__dataclass_fields__)
            return [Listed(**{key: value for key, value in entry.items() if key in known})
                    for entry in doc["takedowns"]]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not a take-down list ({exc}); restore it from a "
                             f"backup or fix it by hand") from None

    def find(self, package_id: str) -> Listed | None:
        """The take-down for package_id: the one by its id, else one by its code."""
        matching = [entry for entry in self.entries() if entry.matches(package_id)]
        return min(matching, key=lambda entry: (not entry.package_id, entry.at), default=None)

    def get(self, package_id: str, code: str) -> Listed | None:
        """The entry for this package id ("" for none) and code, exactly as recorded."""
        return next((entry for entry in self.entries()
                     if (entry.package_id, entry.code) == (package_id, code)), None)

    def record(self, entry: Listed) -> Listed:
        """Put entry on the list, or merge it into the one there for the same movie; call it
        inside `held()`. The first keeps its time and operator, keep_on_screen only ever
        goes off, and the latest check of the store stays. Returns what the list holds."""
        entries = self.entries()
        for n, earlier in enumerate(entries):
            if (earlier.package_id, earlier.code) == (entry.package_id, entry.code):
                entry = Listed(earlier.code, earlier.package_id, earlier.at, earlier.by,
                               earlier.keep_on_screen and entry.keep_on_screen,
                               max(earlier.unpublished_at, entry.unpublished_at))
                if entry == earlier:
                    return entry
                entries[n] = entry
                break
        else:
            entries.append(entry)
        doc = {"takedowns": [asdict(listed) for listed in entries]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
        return entry
