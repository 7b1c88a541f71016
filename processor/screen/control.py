"""The daemon's control socket: operators ask the running daemon, never mpv directly.

One JSON line in, one JSON line out, over a Unix socket in the work dir:
{"command": "status" | "next" | "reload" | "play", "id": "..."} ->
{"ok": true, "result": ...} or {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from .base import Screen

log = logging.getLogger("stopmo.processor.control")


def answer(screen: Screen, request: dict[str, Any]) -> Any:
    """Carry out one operator request against the screen."""
    command = request.get("command")
    if command == "status":
        return screen.status()
    if command == "next":
        screen.next()
        return "ok"
    if command == "reload":
        return {"movies": screen.reload()}
    if command == "play":
        package_id = request.get("id")
        if not isinstance(package_id, str):
            raise ValueError("play: expected a package id")
        screen.play(package_id)
        return "ok"
    raise ValueError(f"unknown command {command!r}: expected status, next, reload or play")


class ControlServer:
    """Serve operator requests on a Unix socket while the daemon runs."""

    def __init__(self, path: Path, screen: Screen) -> None:
        self.path = path
        screen_ref = screen

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    request = json.loads(self.rfile.readline())
                    reply = {"ok": True, "result": answer(screen_ref, request)}
                except Exception as exc:  # the operator gets the reason, the daemon goes on
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                self.wfile.write((json.dumps(reply, ensure_ascii=False) + "\n").encode())

        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a daemon that was killed
        self._server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        os.chmod(path, 0o660)
        self._thread = threading.Thread(target=self._server.serve_forever, name="control",
                                        daemon=True)

    def start(self) -> None:
        """Start answering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and remove the socket."""
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def request(path: Path, command: str, package_id: str | None = None,
            timeout: float = 15.0) -> Any:
    """Ask the running daemon; raise ConnectionError when it is not there."""
    message: dict[str, Any] = {"command": command}
    if package_id is not None:
        message["id"] = package_id
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall((json.dumps(message) + "\n").encode())
            with sock.makefile("rb") as reply_file:
                line = reply_file.readline()
    except OSError as exc:
        raise ConnectionError(f"the processor daemon does not answer at {path} "
                              f"({exc.strerror or exc}): is `processor run` running?") from None
    reply = json.loads(line)
    if not reply.get("ok"):
        raise RuntimeError(reply.get("error", "failed"))
    return reply.get("result")
