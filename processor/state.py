"""Where each package stands, persisted atomically so a killed daemon resumes.

received -> validated -> encoded -> shown -> done, or quarantined. The big
screen never waits for the store: a movie is shown once encoded, then a PUBLISH
movie waits at `shown` in the publish queue, which retries transient errors
forever (the uplink comes back). An encode step that fails for the environment
is retried with backoff; after max_attempts the package is failed and waits for
an operator (`processor retry ID`). Content errors are quarantined at once.

A movie a family asked to take down (takedown.py) keeps its step and gets
`taken_down_at`/`taken_down_by`: it is never published again, whatever its step.

`published` is the step of the former order (publish, then show), kept so that a
state file written by an older daemon still resumes: it is shown, then done.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from moviepkg.atomic import unlink_durable, write_atomic


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
