"""The MQTT side: every device's presence, state, events and command answers (paho-mqtt 2.x).

The same client sends the operators' commands (only the console may write `cmd` topics).
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from moviepkg.telemetry import KEEPALIVE_SECONDS, ROOT, Presence, topic

from .config import Settings
from .db import Database
from .recorder import record

log = logging.getLogger("stopmo.ops.subscriber")
FILTERS = [(f"{ROOT}/+/+/{kind}", 1) for kind in ("online", "state", "event", "cmd/result")]
PRESENCE = topic("console", "console", "online")
MAX_QUEUED = 100  # messages paho keeps for the broker while the connection is down


class Handover(Enum):
    """What became of a message given to the MQTT client to publish."""

    SENT = "sent"  # on its way: paho sends it again until the broker acknowledges it
    QUEUED = "queued"  # paho found the connection gone: it keeps it, to send on reconnecting
    OFFLINE = "offline"  # the console knew it was not connected: not published at all
    FULL = "full"  # paho already keeps MAX_QUEUED messages: this one is not kept
    FAILED = "failed"  # any other error: not sent


def _password(settings: Settings) -> str | None:
    if settings.mqtt_password_file is None:
        return None
    return settings.mqtt_password_file.read_text(encoding="utf-8").strip()


class Subscriber:
    """Keep the database current from the broker; paho's own thread runs the network loop."""

    def __init__(self, settings: Settings, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock
        self.connected = False
        self.changed_at = clock()  # when `connected` last changed
        url = urlsplit(settings.mqtt_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (8883 if url.scheme == "mqtts" else 1883)
        # A persistent session (clean_session off) keeps the console's subscriptions on
        # the broker, which queues the QoS 1 events while the console restarts: no gap in
        # a movie's story. One console per session name (two would push each other off).
        session = settings.mqtt_session
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=session or f"console-{secrets.token_hex(3)}",
                                  clean_session=not session)
        self.client.username_pw_set(settings.mqtt_user, _password(settings))
        if url.scheme == "mqtts":
            self.client.tls_set(ca_certs=str(settings.mqtt_ca_file),
                                tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.max_queued_messages_set(MAX_QUEUED)
        self.client.will_set(PRESENCE, self._presence(False), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _presence(self, online: bool) -> bytes:
        return Presence(online, datetime.fromtimestamp(self.clock(), UTC)).to_json()

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE_SECONDS)
        self.client.loop_start()

    def stop(self) -> None:
        """Say `offline` (the broker sends no will for a clean stop) and disconnect."""
        if self.connected:
            info = self.client.publish(PRESENCE, self._presence(False), qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, name: str, payload: bytes) -> Handover:
        """Publish a command (QoS 1, never retained), unless known to be offline; say how.

        The connection may drop after the check (before `on_disconnect` says so): paho
        then answers MQTT_ERR_NO_CONN but keeps the message and sends it once it has
        reconnected, so it is queued, not lost.
        """
        if not self.connected:
            return Handover.OFFLINE
        rc = self.client.publish(name, payload, qos=1, retain=False).rc
        if rc == mqtt.MQTT_ERR_SUCCESS:
            return Handover.SENT
        if rc == mqtt.MQTT_ERR_NO_CONN:
            return Handover.QUEUED
        log.warning("the MQTT client did not take a message: %s", mqtt.error_string(rc),
                    extra={"topic": name[:200]})
        return Handover.FULL if rc == mqtt.MQTT_ERR_QUEUE_SIZE else Handover.FAILED

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected, self.changed_at = connected, self.clock()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Any) -> None:
        if reason.is_failure:
            log.error("the broker refused the console: %s", reason,
                      extra={"broker": f"{self.host}:{self.port}"})
            return
        log.info("connected to the broker", extra={"broker": f"{self.host}:{self.port}"})
        self._set_connected(True)
        client.subscribe(FILTERS)
        client.publish(PRESENCE, self._presence(True), qos=1, retain=True)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Any) -> None:
        if self.connected:
            log.warning("lost the broker: %s", reason)
        self._set_connected(False)

    def _on_message(self, client: mqtt.Client, userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        try:
            record(self.db, message.topic, bytes(message.payload), self.clock())
        except Exception:  # one bad write must not stop the network thread
            log.exception("could not store a message", extra={"topic": message.topic[:200]})
