"""The fleet as the console last heard it: devices, their programs' presence and state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .db import Database

# The programs each kind of device runs; a missing one is "not reporting".
EXPECTED: dict[str, tuple[str, ...]] = {
    "station": ("kiosk", "sync", "system"),
    "processor": ("processor", "screen", "system"),
    "other": (),
}


@dataclass(frozen=True, slots=True)
class Program:
    """One program on one device: its presence and its latest state."""

    name: str
    online: bool | None = None  # None: no presence message yet
    presence_received: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    state_at: str | None = None  # the sender's timestamp, for display
    state_received: float | None = None  # the console's clock

    def get(self, name: str, default: Any = None) -> Any:
        """A state field, or default."""
        return self.fields.get(name, default)


@dataclass(frozen=True, slots=True)
class Device:
    """A box: a station, the processing unit, or something else that reports."""

    name: str
    role: str
    first_seen: float | None = None
    last_seen: float | None = None
    programs: dict[str, Program] = field(default_factory=dict)
    last_finished: float | None = None  # the last shot_finished event, console clock

    def program(self, name: str) -> Program:
        """One program (empty when it never reported)."""
        return self.programs.get(name) or Program(name)

    @property
    def expected(self) -> tuple[str, ...]:
        """The programs this kind of device runs, then any other it reports."""
        known = EXPECTED[self.role]
        return known + tuple(sorted(name for name in self.programs if name not in known))


@dataclass(frozen=True, slots=True)
class Fleet:
    """Every device, read at one moment."""

    devices: dict[str, Device]
    processor_name: str

    @property
    def stations(self) -> list[Device]:
        """The stations, in natural order (st-2 before st-10)."""
        found = [device for device in self.devices.values() if device.role == "station"]
        return sorted(found, key=lambda device: natural_key(device.name))

    @property
    def processor(self) -> Device:
        """The processing unit (empty when it never reported)."""
        return self.devices.get(self.processor_name) or Device(self.processor_name, "processor")

    @property
    def others(self) -> list[Device]:
        """Devices that are neither a station nor the processing unit."""
        return [device for device in self.devices.values() if device.role == "other"]


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort st-2 before st-10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in name.split("-"))


def _role(name: str, programs: set[str], stations: tuple[str, ...], processor: str) -> str:
    if name == processor:
        return "processor"
    if name in stations or programs & {"kiosk", "sync"}:
        return "station"
    return "other"


def load_fleet(db: Database, stations: tuple[str, ...], processor: str) -> Fleet:
    """Read every device's latest presence and state from the database."""
    programs: dict[str, dict[str, dict[str, Any]]] = {}
    for row in db.query("SELECT * FROM presence WHERE program != 'console'"):
        programs.setdefault(row["device"], {}).setdefault(row["program"], {}).update(
            online=bool(row["online"]), presence_received=row["received"])
    for row in db.query("SELECT * FROM state WHERE program != 'console'"):
        programs.setdefault(row["device"], {}).setdefault(row["program"], {}).update(
            fields=json.loads(row["fields"]), extra=json.loads(row["extra"]),
            state_at=row["at"], state_received=row["received"])
    seen = {row["device"]: row for row in db.query("SELECT * FROM devices")}
    finished = {row["device"]: row["received"] for row in
                db.query("SELECT * FROM last_event WHERE kind = 'shot_finished'")}
    devices: dict[str, Device] = {}
    for name in {*stations, processor, *programs}:
        mine = programs.get(name, {})
        devices[name] = Device(
            name, _role(name, set(mine), stations, processor),
            first_seen=seen[name]["first_seen"] if name in seen else None,
            last_seen=seen[name]["last_seen"] if name in seen else None,
            programs={program: Program(program, **values) for program, values in mine.items()},
            last_finished=finished.get(name))
    return Fleet(devices, processor)
