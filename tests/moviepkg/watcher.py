"""A real MQTT subscriber for tests: keeps every telemetry message a broker delivers."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from moviepkg.telemetry import ROOT


@dataclass(frozen=True)
class Message:
    """One message as the subscriber got it."""

    topic: str
    doc: dict[str, Any]
    retained: bool
    at: float  # time.monotonic() on arrival

    def payload(self) -> bytes:
        """The doc as JSON again, for the contract's parsers."""
        return json.dumps(self.doc).encode()


class Watcher:
    """Subscribe to everything under stopmo/v1 on a broker at 127.0.0.1:port."""

    def __init__(self, port: int, user: str | None = None, password: str | None = None) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{ROOT}/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the watcher could not subscribe")

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Message(message.topic, json.loads(message.payload),
                                         bool(message.retain), time.monotonic()))

    def on(self, topic: str) -> list[Message]:
        """The messages of one topic so far, in order."""
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait(self, topic: str, timeout: float = 10.0, **fields: Any) -> Message:
        """The first message on topic whose doc has these fields; TimeoutError after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.on(topic):
                if all(message.doc.get(k) == v for k, v in fields.items()):
                    return message
            time.sleep(0.02)
        raise TimeoutError(f"no message on {topic} with {fields}; got {self.on(topic)}")

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
