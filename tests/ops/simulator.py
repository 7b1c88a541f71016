"""A simulated fleet for the console's tests: 12 stations and the processing unit.

`fleet_messages` builds the telemetry each device would send (with moviepkg.telemetry's
own serialisers); `Publisher` sends them to a real mosquitto with paho-mqtt, and
`feed` stores them straight into a console's database (for tests with a fake clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from moviepkg.telemetry import Event, Presence, State, topic
from ops.db import Database
from ops.recorder import record

GB = 1_000_000_000
Message = tuple[str, bytes, bool]  # topic, payload, retained


def at(now: float) -> datetime:
    """An aware UTC datetime for an epoch time."""
    return datetime.fromtimestamp(now, UTC)


def presence(device: str, program: str, online: bool, now: float) -> Message:
    """A retained presence message."""
    return topic(device, program, "online"), Presence(online, at(now)).to_json(), True


def state(device: str, program: str, fields: dict[str, Any], now: float) -> Message:
    """A retained state message."""
    return topic(device, program, "state"), State(program, at(now), fields).to_json(), True


def event(device: str, program: str, kind: str, package_id: str, now: float,
          detail: str = "") -> Message:
    """An event message (not retained)."""
    return (topic(device, program, "event"),
            Event(kind, package_id, at(now), detail).to_json(), False)


def system_fields(n: int, **over: Any) -> dict[str, Any]:
    """A healthy box."""
    return {"cpu_temp_c": 48.0 + n, "throttled_now": False, "under_voltage_now": False,
            "throttled_since_boot": False, "under_voltage_since_boot": False,
            "load1": 0.4, "mem_available_bytes": 2 * GB, "mem_total_bytes": 4 * GB,
            "disk_free_bytes": 20 * GB, "disk_total_bytes": 32 * GB, "uptime_s": 3600.0,
            "ip": f"192.168.50.{10 + n}", "version": "0.1.0", **over}


def station_messages(n: int, now: float, *, online: bool = True, screen: str = "attract",
                     frames: int = 0, waiting: int = 0, oldest: float | None = None,
                     qr_problem: str | None = None, **system: Any) -> list[Message]:
    """What station st-n sends: presence, the kiosk's, sync agent's and box's states."""
    name = f"st-{n}"
    found = [presence(name, program, online, now) for program in ("kiosk", "sync", "system")]
    kiosk = {"screen": screen, "frames": frames, "last_capture_at": None, "camera_ok": True,
             "last_error": None, "version": "0.1.0"}
    if qr_problem is not None:
        kiosk["website_url_problem"] = qr_problem
    found += [
        state(name, "kiosk", kiosk, now),
        state(name, "sync", {"waiting": waiting, "oldest_waiting_s": oldest,
                             "last_delivery_at": None, "bytes_sent": 12_345_678,
                             "last_error": None}, now),
        state(name, "system", system_fields(n, **system), now),
    ]
    return found


def processor_messages(now: float, *, backlog: int = 0, oldest: float | None = None,
                       reachable: bool | None = True, playing: str | None = None,
                       encoding: dict[str, Any] | None = None) -> list[Message]:
    """What the processing unit sends: the processor's, the screen's and the box's states."""
    found = [presence("processor", program, True, now)
             for program in ("processor", "screen", "system")]
    found += [
        state("processor", "processor", {
            "steps": {"inbox": 1, "encoding": 1 if encoding else 0, "shown": 40},
            "encoding": encoding, "publish_backlog": backlog, "publish_oldest_s": oldest,
            "publish_last_error": None if reachable else "store: connection refused",
            "store_reachable": reachable, "quarantined_today": 0,
            "last_durations": {"encode": 2.8}, "disk_free_bytes": 80 * GB}, now),
        state("processor", "screen", {"connected": True, "playing": playing,
                                      "playlist": 30}, now),
        state("processor", "system", system_fields(0, disk_total_bytes=256 * GB,
                                                    disk_free_bytes=80 * GB), now),
    ]
    return found


def fleet_messages(now: float, stations: int = 12, offline: Iterable[int] = (),
                   under_voltage: Iterable[int] = (), backlog: Iterable[int] = ()
                   ) -> list[Message]:
    """The whole festival: most stations fine, some offline, under-voltage or backed up."""
    offline, under_voltage, backlog = set(offline), set(under_voltage), set(backlog)
    found: list[Message] = []
    for n in range(1, stations + 1):
        found += station_messages(
            n, now, online=n not in offline, screen="shooting" if n % 3 == 0 else "attract",
            frames=n * 7 if n % 3 == 0 else 0, waiting=4 if n in backlog else 0,
            oldest=480.0 if n in backlog else None, under_voltage_now=n in under_voltage,
            throttled_now=n in under_voltage)
    found += processor_messages(now, backlog=2, oldest=95.0, playing="st-2-20260501t120000z-beef",
                                encoding={"package_id": "st-5-20260501t121500z-c0de",
                                          "done": 45, "total": 120})
    return found


def feed(db: Database, messages: Iterable[Message], now: float) -> None:
    """Store messages in a console's database as its subscriber would."""
    for name, payload, _ in messages:
        assert record(db, name, payload, now), name


class Publisher:
    """One paho client that publishes as any device (the tests' stand-in fleet)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-fleet")
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def send(self, messages: Iterable[Message]) -> None:
        """Publish each message with QoS 1 and wait until the broker has it."""
        infos = [self.client.publish(name, payload, qos=1, retain=retained)
                 for name, payload, retained in messages]
        for info in infos:
            info.wait_for_publish(timeout=5)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
