"""The console's link to the broker drops just as a command goes out: paho keeps the
command and sends it once it is back, so the log says queued, never "nothing was sent"."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ops.app import create_app
from ops.commands import QUEUE_FULL, send
from ops.config import Settings
from ops.subscriber import MAX_QUEUED
from tests.ops.conftest import log_in, make_console
from tests.ops.devices import PASSWORDS, FakeStation, fleet_broker
from tests.services import free_port, wait_until

LOOPBACK = "127.0.0.1"


class Link:
    """A TCP relay on a fixed loopback port to another port, that a test cuts and restores.

    cut() closes every connection through it and stops listening (a client's reconnect is
    refused); restore() listens again on the same port.
    """

    def __init__(self, target_port: int) -> None:
        """Relay 127.0.0.1:<a free port> to 127.0.0.1:target_port, listening already."""
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._open = threading.Event()
        self.restore()

    @property
    def url(self) -> str:
        """The relay's MQTT address."""
        return f"mqtt://{LOOPBACK}:{self.port}"

    def restore(self) -> None:
        """Listen again (on the same port) and relay what connects."""
        listener = socket.create_server((LOOPBACK, self.port))  # SO_REUSEADDR on POSIX
        listener.settimeout(0.05)
        self._open.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True,
                         name="link").start()

    def _accept(self, listener: socket.socket) -> None:
        """Relay each connection until cut, then close the listener."""
        with listener:
            while self._open.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection((LOOPBACK, self.target_port))
                with self._lock:
                    self._sockets += [client, upstream]
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(source, sink),
                                     daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy one direction until either side closes."""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every connection through the link and stop listening."""
        self._open.clear()
        time.sleep(0.1)  # the listener closes within its accept timeout
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_a_command_published_as_the_link_drops_is_queued_then_delivered(
        settings: Settings, tmp_path: Path) -> None:
    """The console still believes it is connected when paho finds the link gone: the
    command is logged as waiting, queued until the broker is back and its expiry; it then
    goes out and the device's answer fills in the row. Only when paho's own queue is full
    is a command not sent."""
    with fleet_broker(tmp_path / "broker") as broker:
        link = Link(broker.port)
        password = tmp_path / "mqtt-console.password"
        password.write_text(PASSWORDS["console"] + "\n")
        console = make_console(settings, time.time,  # type: ignore[arg-type]
                               mqtt_url=link.url, mqtt_password_file=password)
        console.start(listen=True, alerts=False)
        station = FakeStation(broker, tmp_path / "st-3.answered.json")
        station.start()
        try:
            wait_until(lambda: console.broker_connected is True and bool(console.db.query(
                "SELECT 1 FROM presence WHERE device = 'st-3' AND online = 1")), 10,
                message="the console and st-3")
            time.sleep(0.3)  # st-3's subscription to its cmd topic follows its `online`

            def outcome(command_id: str) -> str | None:
                """A logged command's outcome (None: no answer yet)."""
                found = console.db.command(command_id)
                assert found is not None
                return found["outcome"]

            client = create_app({"TESTING": True, "OPS_CONSOLE": console,
                                 "SECRET_KEY": "test"}).test_client()
            token = log_in(client)
            link.cut()
            wait_until(lambda: console.broker_connected is False, 10,
                       message="the console to notice the link is gone")
            subscriber = console.subscriber
            assert subscriber is not None
            subscriber.connected = True  # the moment before on_disconnect says so
            client.post("/devices/st-3/commands/identify", data={"csrf_token": token})
            row = console.db.device_commands("st-3")[0]
            expires = datetime.fromtimestamp(row["expires"], ZoneInfo(settings.timezone))
            queued = f"queued: it goes out when the broker is back, if before {expires:%H:%M:%S}"
            assert (row["outcome"], row["detail"], row["answered"]) == (None, queued, None)
            page = client.get("/devices/st-3").get_data(as_text=True)
            assert f'<p class="flash queued" role="status">Command identify for st-3: ' \
                   f"{queued}.</p>" in page
            assert f"waiting for an answer…</strong>\n        <span class=\"note\">({queued})" \
                in page
            fillers = [send(console, "st-7", "identify", {}, "ana")
                       for _ in range(MAX_QUEUED - 1)]  # paho keeps MAX_QUEUED, then says no
            assert {sent.kind for sent in fillers} == {"queued"}
            full = send(console, "st-7", "identify", {}, "ana")
            assert (full.kind, full.refused, outcome(full.id)) == (
                "refused", QUEUE_FULL, "refused")
            assert station.names() == []
            link.restore()
            wait_until(lambda: outcome(row["id"]) is not None, 30,
                       message="st-3's answer, once the link is back")
            answered = console.db.command(row["id"])
            assert answered is not None and (answered["outcome"], answered["detail"]) == (
                "done", "the station number is on the screen for 15 s")
            assert station.names() == ["identify"]
        finally:
            station.stop()
            console.stop()
            link.cut()
