"""What the pages show: the fleet and its conditions turned into tiles and rows of text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from moviepkg.ids import is_package_id

from .fleet import Device, Fleet, Program
from .recorder import queued
from .rules import AMBER, RED, Condition, minutes, worst

LABELS = {"green": "OK", AMBER: "Attention", RED: "Down"}


@dataclass(slots=True)
class Tile:
    """One device's summary: a colour, a label, and lines of `(name, value)`."""

    name: str
    title: str
    colour: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    progress: tuple[str, float] | None = None  # an encode: (what, 0..1)
    poster: str | None = None  # the package id whose poster the tile shows

    @property
    def label(self) -> str:
        """The colour said in words (colour is never the only cue)."""
        return LABELS[self.colour]


def ago(then: float | None, now: float) -> str:
    """`never`, `just now`, `12 s ago`, `5 min ago`."""
    if then is None:
        return "never"
    seconds = max(0.0, now - then)
    return "just now" if seconds < 2 else f"{minutes(seconds)} ago"


def nbytes(value: Any) -> str:
    """`1.2 GB`, or a dash."""
    if not isinstance(value, int):
        return "—"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit in ("B", "kB") else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def yes_no(value: Any, yes: str = "yes", no: str = "no") -> str:
    """yes, no, or a dash when unknown."""
    return "—" if value is None else yes if value else no


def field_text(name: str, value: Any) -> str:
    """A state field as a person reads it: yes/no, sizes in GB, objects as `key: value`."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and (name.endswith("_bytes") or name.startswith("bytes_")):
        return nbytes(value)
    if isinstance(value, float):
        return f"{value:.1f}".removesuffix(".0")
    if isinstance(value, dict):
        return ", ".join(f"{key}: {field_text(str(key), item)}" for key, item in value.items()) \
            or "—"
    return str(value)


def clock_time(stamp: float, zone: str) -> str:
    """`14:03:27` in the festival's time zone."""
    return f"{datetime.fromtimestamp(stamp, ZoneInfo(zone)):%H:%M:%S}"


def short(condition: Condition) -> str:
    """A condition's message without the device's name (the tile already shows it)."""
    return condition.message.removeprefix(f"{condition.device}: ")


def _mine(device: Device, conditions: list[Condition]) -> list[Condition]:
    return [condition for condition in conditions if condition.device == device.name]


def _tile(device: Device, title: str, conditions: list[Condition], now: float) -> Tile:
    mine = _mine(device, conditions)
    tile = Tile(device.name, title, worst(mine), problems=[short(c) for c in mine])
    tile.rows.append(("Last seen", ago(device.last_seen, now)))
    return tile


def other_tile(device: Device, conditions: list[Condition], now: float) -> Tile:
    """A device that is neither a station nor the processing unit."""
    tile = _tile(device, device.name, conditions, now)
    tile.rows += _system_rows(device.program("system"))
    return tile


def _system_rows(system: Program) -> list[tuple[str, str]]:
    temperature = system.get("cpu_temp_c")
    voltage = yes_no(system.get("under_voltage_now"), "UNDER-VOLTAGE", "no")
    if voltage == "no" and system.get("under_voltage_since_boot"):
        voltage = "no (earlier since boot)"
    return [("Temperature", "—" if temperature is None else f"{temperature:.0f} °C"),
            ("Under-voltage", voltage)]


def station_tile(device: Device, conditions: list[Condition], now: float) -> Tile:
    """A station: screen, frames, outbox, temperature, under-voltage."""
    tile = _tile(device, device.name, conditions, now)
    kiosk, sync = device.program("kiosk"), device.program("sync")
    oldest = sync.get("oldest_waiting_s")
    outbox = "—" if sync.get("waiting") is None else str(sync.get("waiting"))
    if isinstance(oldest, int | float) and oldest > 0:
        outbox += f" (oldest {minutes(oldest)})"
    tile.rows += [("Screen", str(kiosk.get("screen", "—"))),
                  ("Frames", str(kiosk.get("frames", "—"))), ("Outbox", outbox),
                  *_system_rows(device.program("system"))]
    return tile


def _encoding(value: Any) -> tuple[str, float] | None:
    if not isinstance(value, dict):
        return None
    progress = value.get("progress")
    if not isinstance(progress, int | float):
        done, total = value.get("done", value.get("frame")), value.get("total",
                                                                       value.get("frames"))
        progress = done / total if isinstance(done, int) and isinstance(total, int) \
            and total > 0 else 0.0
    fraction = progress / 100 if progress > 1 else progress
    return str(value.get("package_id", "a movie")), max(0.0, min(1.0, float(fraction)))


def processor_tile(device: Device, conditions: list[Condition], now: float) -> Tile:
    """The processing unit: its queues, the encode in progress, the publish backlog, disk."""
    mine = [c for c in conditions if c.subject not in ("screen",)]
    tile = _tile(device, "Processing unit", mine, now)
    processor, system = device.program("processor"), device.program("system")
    steps = processor.get("steps")
    if isinstance(steps, dict) and steps:
        tile.rows.append(("Queues", ", ".join(f"{name} {count}" for name, count
                                              in steps.items())))
    tile.rows.append(("In the pipeline", str(queued(steps) if steps is not None else "—")))
    tile.progress = _encoding(processor.get("encoding"))
    tile.rows.append(("Publish backlog", str(processor.get("publish_backlog", "—"))))
    free, total = system.get("disk_free_bytes"), system.get("disk_total_bytes")
    disk = nbytes(processor.get("disk_free_bytes", free))
    if isinstance(free, int) and isinstance(total, int) and total:
        disk += f" ({100 * free / total:.0f} %)"
    tile.rows += [("Free disk", disk),
                  ("Quarantined today", str(processor.get("quarantined_today", "—"))),
                  *_system_rows(system)]
    return tile


def screen_tile(device: Device, conditions: list[Condition], now: float) -> Tile:
    """The big screen: mpv connected, what plays, the playlist."""
    screen = device.program("screen")
    mine = [c for c in _mine(device, conditions) if c.subject in ("screen", "")]
    tile = Tile(device.name, "Big screen", worst(mine), problems=[short(c) for c in mine])
    tile.rows += [("Player", yes_no(screen.get("connected"), "connected", "NOT CONNECTED")),
                  ("Playing", str(screen.get("playing") or "nothing")),
                  ("Playlist", f"{screen.get('playlist', '—')} movies"),
                  ("Last report", ago(screen.state_received, now))]
    playing = screen.get("playing")
    if isinstance(playing, str) and is_package_id(playing):
        tile.poster = playing
    return tile


def uplink_tile(device: Device, conditions: list[Condition], now: float) -> Tile:
    """Can the processor reach the store: store_reachable and the publish backlog's age."""
    processor = device.program("processor")
    mine = [c for c in _mine(device, conditions) if c.rule == "publish"]
    colour = worst(mine)
    if processor.get("store_reachable") is False and colour == "green":
        colour = AMBER
    tile = Tile(device.name, "Uplink (the store)", colour, problems=[short(c) for c in mine])
    oldest = processor.get("publish_oldest_s")
    tile.rows += [("Store reachable", yes_no(processor.get("store_reachable"))),
                  ("Waiting to publish", str(processor.get("publish_backlog", "—"))),
                  ("Oldest waiting", minutes(oldest) if isinstance(oldest, int | float)
                   else "—")]
    if processor.get("publish_last_error"):
        tile.rows.append(("Last error", str(processor.get("publish_last_error"))[:120]))
    return tile


def overview(fleet: Fleet, conditions: list[Condition], now: float) -> dict[str, Any]:
    """Every tile of the overview page."""
    processor = fleet.processor
    stations = [station_tile(device, conditions, now) for device in fleet.stations]
    return {"stations": stations,
            "counts": {colour: sum(tile.colour == colour for tile in stations)
                       for colour in ("green", AMBER, RED)},
            "processor": processor_tile(processor, conditions, now),
            "screen": screen_tile(processor, conditions, now),
            "uplink": uplink_tile(processor, conditions, now),
            "others": [other_tile(device, conditions, now) for device in fleet.others]}
