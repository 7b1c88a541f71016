"""Tell systemd how a stopmo program is doing (Type=notify, WatchdogSec=); no-op elsewhere."""

from __future__ import annotations

import os
import socket


def sd_notify(message: str) -> bool:
    """Send message (e.g. READY=1, WATCHDOG=1) to $NOTIFY_SOCKET; tell whether it was sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)  # a listener that does not read must never stall the caller
        try:
            sock.sendto(message.encode(), address)
        except OSError:
            return False
    return True
