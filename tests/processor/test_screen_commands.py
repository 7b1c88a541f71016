"""Every screen takes the operators' commands through the one interface (the control socket)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from processor.screen import FakeScreen, NullScreen, ScreenMovie, ScreenUnavailable
from processor.screen.control import ControlServer, answer, request


def movie(package_id: str, tmp_path: Path) -> ScreenMovie:
    path = tmp_path / f"{package_id}.mp4"
    path.write_bytes(b"")
    return ScreenMovie(package_id, path, None, True)


def test_the_fake_screen_takes_every_command(tmp_path: Path) -> None:
    screen = FakeScreen(tmp_path / "screen.jsonl")
    for name in ("a", "b", "c"):
        screen.show(movie(name, tmp_path))
    assert answer(screen, {"command": "status"}) == {
        "kind": "fake", "connected": True, "playing": "c", "playlist": ["a", "b", "c"]}
    assert answer(screen, {"command": "next"}) == "ok"
    assert screen.status()["playing"] == "a"
    assert answer(screen, {"command": "play", "id": "b"}) == "ok"
    assert screen.status()["playing"] == "b"
    assert answer(screen, {"command": "reload"}) == {"movies": 3}
    (tmp_path / "b.mp4").unlink()  # taken down: its file is gone
    assert answer(screen, {"command": "reload"}) == {"movies": 2}
    assert screen.status()["playlist"] == ["a", "c"] and screen.status()["playing"] is None
    with pytest.raises(KeyError, match="no such movie"):
        answer(screen, {"command": "play", "id": "zzz"})
    with pytest.raises(ValueError, match="unknown command"):
        answer(screen, {"command": "dance"})


def test_no_screen_refuses_commands_but_reports(tmp_path: Path) -> None:
    screen = NullScreen()
    assert answer(screen, {"command": "status"}) == {"kind": "none", "connected": False}
    for command in ("next", "reload"):
        with pytest.raises(ScreenUnavailable, match="no screen is attached"):
            answer(screen, {"command": command})


def test_the_control_socket_carries_commands_to_any_screen(tmp_path: Path) -> None:
    screen = FakeScreen(tmp_path / "screen.jsonl")
    screen.show(movie("x", tmp_path))
    path = tmp_path / "control.sock"
    server = ControlServer(path, screen)
    server.start()
    try:
        assert request(path, "status")["playlist"] == ["x"]
        assert request(path, "play", "x") == "ok"
        with pytest.raises(RuntimeError, match="no such movie"):
            request(path, "play", "y")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # not JSON at all
            sock.connect(str(path))
            sock.sendall(b"hello\n")
            reply = json.loads(sock.makefile("rb").readline())
        assert reply["ok"] is False
    finally:
        server.stop()
    assert not path.exists()
