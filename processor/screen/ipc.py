"""A small client for mpv's JSON IPC socket (`--input-ipc-server`).

One reader thread owns the socket's receiving side: replies are routed to the
waiting command by `request_id`, everything else is handed to `on_event`. When
the socket goes away, every waiting command fails with MpvDisconnected and
`on_disconnect` is called, so the owner can reconnect.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
Event = dict[str, Any]


class MpvError(Exception):
    """mpv answered a command with an error."""


class MpvDisconnected(MpvError):
    """The socket is closed: mpv quit, crashed or was never there."""


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: dict[str, Any] | None = None


class MpvIpc:
    """A connection to one mpv process."""

    def __init__(self, path: str, on_event: Callable[[Event], None] | None = None,
                 on_disconnect: Callable[[], None] | None = None) -> None:
        self.path = path
        self.on_event = on_event or (lambda event: None)
        self.on_disconnect = on_disconnect or (lambda: None)
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._reader: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        """Tell whether the socket is open."""
        return self._sock is not None

    def connect(self, timeout: float = 2.0) -> None:
        """Open the socket (raises OSError when mpv is not there) and start the reader."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        sock.settimeout(None)  # the reader blocks; waiting callers time out on their own
        self._sock = sock
        self._reader = threading.Thread(target=self._read, args=(sock,), name="mpv-ipc",
                                        daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Close the socket; the reader notices and fails what is still waiting."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)

    def command(self, *args: Any, timeout: float = 5.0) -> Any:
        """Send a command and return its `data`; raise MpvError or MpvDisconnected."""
        sock = self._sock
        if sock is None:
            raise MpvDisconnected(f"not connected to {self.path}")
        request_id = next(self._ids)
        pending = _Pending()
        with self._pending_lock:
            self._pending[request_id] = pending
        line = json.dumps({"command": list(args), "request_id": request_id}) + "\n"
        try:
            with self._send_lock:
                sock.sendall(line.encode())
            if not pending.done.wait(timeout):
                raise MpvError(f"{args[0]}: no answer within {timeout:.0f} s")
        except OSError as exc:
            raise MpvDisconnected(f"{args[0]}: {exc}") from None
        finally:
            with self._pending_lock:
                self._pending.pop(request_id, None)
        reply = pending.reply
        if reply is None:
            raise MpvDisconnected(f"{args[0]}: mpv went away")
        if reply.get("error") != "success":
            raise MpvError(f"{args[0]}: {reply.get('error')}")
        return reply.get("data")

    def _read(self, sock: socket.socket) -> None:
        buffer = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._route(line)
        except OSError:
            pass
        finally:
            if self._sock is sock:
                self._sock = None
                with contextlib.suppress(OSError):
                    sock.close()
            with self._pending_lock:
                waiting = list(self._pending.values())
            for pending in waiting:
                pending.done.set()  # reply stays None: disconnected
            self.on_disconnect()

    def _route(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            log.warning("mpv sent a line that is not JSON: %r", line[:200])
            return
        request_id = message.get("request_id")
        if request_id is not None and "event" not in message:
            with self._pending_lock:
                pending = self._pending.get(request_id)
            if pending is not None:
                pending.reply = message
                pending.done.set()
            return
        if "event" in message:
            try:
                self.on_event(message)
            except Exception:
                log.exception("handling mpv event %s failed", message.get("event"))
