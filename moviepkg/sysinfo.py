"""The box itself, for the `system` state: temperature, throttling, load, memory, disk, IP.

Each reading is a small pure parser plus a reader that returns None (or null in the
state) where the machine does not expose it, so the same code runs on a Raspberry Pi,
the processing unit and a developer's PC. Nothing here sends a packet anywhere.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")
# The firmware's flags as a file (newer Raspberry Pi kernels); vcgencmd says the same.
THROTTLED_FILE = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
MEMINFO = Path("/proc/meminfo")
UPTIME = Path("/proc/uptime")
_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address

# get_throttled bits (Raspberry Pi firmware): now in the low half, since boot in the high.
_UNDER_VOLTAGE, _CAPPED, _THROTTLED, _SOFT_LIMIT = 0x1, 0x2, 0x4, 0x8
_SINCE_BOOT_SHIFT = 16  # bit 16 is under-voltage since boot, 18 throttling since boot


@dataclass(frozen=True, slots=True)
class Throttling:
    """The firmware's under-voltage and throttling flags, now and since boot."""

    under_voltage_now: bool
    throttled_now: bool
    under_voltage_since_boot: bool
    throttled_since_boot: bool


def parse_throttled(text: str) -> Throttling:
    """Read `throttled=0x50005` (vcgencmd) or `50005` (the sysfs file); ValueError else.

    "Throttled" covers every way the firmware slows the CPU: capped frequency,
    throttling proper, and the soft temperature limit.
    """
    value = int(text.strip().removeprefix("throttled=").removeprefix("0x"), 16)
    slowed = _CAPPED | _THROTTLED | _SOFT_LIMIT
    since = value >> _SINCE_BOOT_SHIFT
    return Throttling(under_voltage_now=bool(value & _UNDER_VOLTAGE),
                      throttled_now=bool(value & slowed),
                      under_voltage_since_boot=bool(since & _UNDER_VOLTAGE),
                      throttled_since_boot=bool(since & slowed))


def read_throttling(path: Path = THROTTLED_FILE,
                    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
                    ) -> Throttling | None:
    """The Pi's flags from the sysfs file, else from `vcgencmd get_throttled`; None elsewhere.

    The file comes first: reading it costs nothing, vcgencmd is a process every 10 s.
    """
    try:
        return parse_throttled(path.read_text())
    except (OSError, ValueError):
        pass
    if shutil.which("vcgencmd") is None:
        return None
    try:
        done = run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5)
        return parse_throttled(done.stdout) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def parse_temperature(text: str) -> float:
    """Degrees Celsius from a thermal zone's millidegrees (`48312`)."""
    return round(int(text.strip()) / 1000, 1)


def cpu_temperature(path: Path = THERMAL) -> float | None:
    """The CPU's temperature in °C, or None where no thermal zone exists."""
    try:
        return parse_temperature(path.read_text())
    except (OSError, ValueError):
        return None


def parse_meminfo(text: str) -> tuple[int, int]:
    """(available, total) bytes from /proc/meminfo; ValueError if either is missing."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    if "MemAvailable" not in values or "MemTotal" not in values:
        raise ValueError("no MemAvailable or MemTotal")
    return values["MemAvailable"], values["MemTotal"]


def memory(path: Path = MEMINFO) -> tuple[int, int]:
    """(available, total) bytes of memory; (0, 0) where /proc/meminfo cannot be read."""
    try:
        return parse_meminfo(path.read_text())
    except (OSError, ValueError):
        return 0, 0


def uptime(path: Path = UPTIME) -> float:
    """Seconds since the box booted (0 where unknown)."""
    try:
        return round(float(path.read_text().split()[0]), 1)
    except (OSError, ValueError, IndexError):
        return 0.0


def load1() -> float:
    """The one-minute load average (0 where unknown)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


def default_interface(route_table: str) -> str | None:
    """The interface of the default route in /proc/net/route's text, or None."""
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            return fields[0]
    return None


def primary_ip(route_file: Path = Path("/proc/net/route")) -> str | None:
    """The IPv4 address of the default route's interface, or None without one.

    Read from the routing table and the interface itself: nothing is sent anywhere.
    """
    try:
        interface = default_interface(route_file.read_text())
    except OSError:
        return None
    if interface is None:
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("256s", interface.encode()[:15])
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
    except OSError:
        return None
    return socket.inet_ntoa(reply[20:24])


def software_version() -> str:
    """The installed stopmo version, or "unknown" when running from a bare checkout."""
    try:
        return metadata.version("stopmo")
    except metadata.PackageNotFoundError:
        return "unknown"


def system_state(disk: Path) -> dict[str, Any]:
    """The `system` state's fields (moviepkg.telemetry.STATE_FIELDS["system"]), disk at disk."""
    throttling = read_throttling()
    available, total = memory()
    try:
        usage = shutil.disk_usage(disk)
        disk_free, disk_total = usage.free, usage.total
    except OSError:
        disk_free = disk_total = 0
    return {"cpu_temp_c": cpu_temperature(),
            "throttled_now": throttling.throttled_now if throttling else None,
            "under_voltage_now": throttling.under_voltage_now if throttling else None,
            "throttled_since_boot": throttling.throttled_since_boot if throttling else None,
            "under_voltage_since_boot": (throttling.under_voltage_since_boot
                                         if throttling else None),
            "load1": load1(), "mem_available_bytes": available, "mem_total_bytes": total,
            "disk_free_bytes": disk_free, "disk_total_bytes": disk_total,
            "uptime_s": uptime(), "ip": primary_ip(), "version": software_version()}
