"""The telemetry contract: topics, messages round-trip, and every bad message is named."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from moviepkg.telemetry import (
    ROOT,
    Event,
    Presence,
    State,
    TelemetryError,
    parse_event,
    parse_presence,
    parse_state,
    split_topic,
    topic,
)

AT = datetime(2026, 7, 10, 12, 0, 5, tzinfo=UTC)
PACKAGE = "st-3-20260710t120000z-beef"


def test_topics_round_trip() -> None:
    name = topic("st-3", "kiosk", "state")
    assert name == f"{ROOT}/st-3/kiosk/state" == "stopmo/v1/st-3/kiosk/state"
    assert split_topic(name) == ("st-3", "kiosk", "state")
    assert split_topic(topic("processor", "processor", "cmd/result"))[2] == "cmd/result"
    for bad in ("stopmo/v2/st-3/kiosk/state", "stopmo/v1/ST-3/kiosk/state",
                "stopmo/v1/st-3/shell/state", "stopmo/v1/st-3/kiosk/secrets", "stopmo/v1"):
        with pytest.raises(TelemetryError):
            split_topic(bad)
    with pytest.raises(ValueError):
        topic("st 3", "kiosk", "state")


def test_messages_round_trip() -> None:
    assert parse_presence(Presence(True, AT).to_json()) == Presence(True, AT)
    assert parse_presence(Presence(False, AT).to_json()).online is False
    event = Event("quarantined", PACKAGE, AT, "0003.jpg: cannot decode")
    assert parse_event(event.to_json()) == event
    state = State("kiosk", AT, {"screen": "shooting", "frames": 12, "camera_ok": True,
                                "last_capture_at": None, "last_error": None,
                                "version": "1.2"})
    assert parse_state("kiosk", state.to_json()) == state


def test_a_newer_programs_extra_fields_are_kept_aside() -> None:
    payload = json.dumps({"v": 1, "at": "2026-07-10T12:00:05Z", "connected": True,
                          "playing": PACKAGE, "playlist": 7, "volume": 0.8}).encode()
    state = parse_state("screen", payload)
    assert state.fields == {"connected": True, "playing": PACKAGE, "playlist": 7}
    assert state.extra == {"volume": 0.8}


@pytest.mark.parametrize(("program", "doc", "words"), [
    ("kiosk", {"v": 2, "at": "2026-07-10T12:00:05Z"}, "kiosk.state.v: expected 1"),
    ("kiosk", {"v": 1, "at": "noon"}, "kiosk.state.at: expected a UTC timestamp"),
    ("kiosk", {"v": 1, "at": "2026-07-10T12:00:05Z", "frames": "12"},
     "kiosk.state.frames: expected an integer"),
    ("kiosk", {"v": 1, "at": "2026-07-10T12:00:05Z", "frames": True},
     "kiosk.state.frames: expected an integer"),
    ("kiosk", {"v": 1, "at": "2026-07-10T12:00:05Z", "screen": "dancing"},
     "kiosk.state.screen: expected attract"),
    ("system", {"v": 1, "at": "2026-07-10T12:00:05Z", "cpu_temp_c": "hot"},
     "system.state.cpu_temp_c: expected an integer or a number or null"),
    ("shell", {"v": 1, "at": "2026-07-10T12:00:05Z"}, "state: expected one of"),
])
def test_bad_states_name_the_field(program: str, doc: dict[str, object], words: str) -> None:
    with pytest.raises(TelemetryError, match=words.replace("(", r"\(")):
        parse_state(program, json.dumps(doc).encode())


@pytest.mark.parametrize(("payload", "words"), [
    (b"[1]", "event: expected a JSON object"),
    (b"{" * 5000, "event: expected a JSON object"),
    (b'{"v":1,"at":"2026-07-10T12:00:05Z","kind":"exploded","package_id":"x"}',
     "event.kind: expected shot_started"),
    (b'{"v":1,"at":"2026-07-10T12:00:05Z","kind":"published","package_id":"../x"}',
     "event.package_id: expected a package id"),
    (b"x" * 70000, "event: expected at most 64 KiB"),
])
def test_bad_events_name_the_field(payload: bytes, words: str) -> None:
    with pytest.raises(TelemetryError, match=words):
        parse_event(payload)


def test_bad_presence() -> None:
    with pytest.raises(TelemetryError, match=r"online\.status: expected online or offline"):
        parse_presence(b'{"v":1,"at":"2026-07-10T12:00:05Z","status":"maybe"}')
