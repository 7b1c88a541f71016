"""The box's readings: pure parsers on sample inputs, and the whole state on this machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from moviepkg.sysinfo import (
    Throttling,
    default_interface,
    parse_meminfo,
    parse_temperature,
    parse_throttled,
    primary_ip,
    read_throttling,
    system_state,
)
from moviepkg.telemetry import STATE_FIELDS, State, parse_state
from moviepkg.times import utc_now

MEMINFO = """MemTotal:        3884376 kB
MemFree:          250000 kB
MemAvailable:    2000000 kB
Buffers:           12345 kB
HugePages_Total:       0
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("throttled=0x50005\n", Throttling(True, True, True, True)),
    ("throttled=0x0", Throttling(False, False, False, False)),
    ("throttled=0x50000", Throttling(False, False, True, True)),
    ("10001", Throttling(True, False, True, False)),  # the sysfs file: hex, no prefix
    ("80008", Throttling(False, True, False, True)),  # the soft temperature limit
    ("20000", Throttling(False, False, False, True)),  # frequency capped since boot
])
def test_throttled_flags(text: str, expected: Throttling) -> None:
    assert parse_throttled(text) == expected


def test_throttled_from_the_file_then_vcgencmd(tmp_path: Path) -> None:
    flags = tmp_path / "get_throttled"
    flags.write_text("50005\n")
    assert read_throttling(flags) == Throttling(True, True, True, True)

    def vcgencmd(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        assert argv == ["vcgencmd", "get_throttled"]
        return subprocess.CompletedProcess(argv, 0, "throttled=0x0\n", "")

    missing = tmp_path / "none"
    found = read_throttling(missing, run=vcgencmd)
    # Where vcgencmd is not installed (any PC), there is nothing to say.
    assert found in (None, Throttling(False, False, False, False))
    with pytest.raises(ValueError):
        parse_throttled("throttled=bogus")


def test_memory_and_temperature() -> None:
    assert parse_meminfo(MEMINFO) == (2000000 * 1024, 3884376 * 1024)
    with pytest.raises(ValueError):
        parse_meminfo("MemTotal: 1 kB\n")
    assert parse_temperature("48312\n") == 48.3


ROUTES = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
          "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
          "wlan0\t00000000\t0100000A\t0003\t0\t0\t600\t00000000\t0\t0\t0\n")


def test_the_ip_needs_no_traffic(tmp_path: Path) -> None:
    assert default_interface(ROUTES) == "wlan0"
    assert default_interface(ROUTES.splitlines()[0] + "\n") is None
    routes = tmp_path / "route"
    routes.write_text("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
                      "lo\t00000000\t00000000\t0001\t0\t0\t0\t00000000\n")
    assert primary_ip(routes) == "127.0.0.1"  # read from the interface, nothing sent
    assert primary_ip(tmp_path / "missing") is None
    found = primary_ip()
    assert found is None or found.count(".") == 3


def test_the_system_state_fits_the_contract(tmp_path: Path) -> None:
    fields = system_state(tmp_path)
    assert set(fields) == set(STATE_FIELDS["system"])
    assert parse_state("system", State("system", utc_now(), fields).to_json()).fields == fields
    assert fields["disk_total_bytes"] >= fields["disk_free_bytes"] > 0
    assert fields["mem_total_bytes"] > 0 and fields["uptime_s"] > 0
