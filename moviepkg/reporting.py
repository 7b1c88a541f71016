"""Report one program's presence, state and events over MQTT, never in the program's way.

A `Reporter` is one MQTT connection for one device and program (moviepkg.telemetry's
topics): its Last Will is a retained `offline`, it publishes a retained `online` on
every connect and a retained `offline` before a clean stop; keepalive is
KEEPALIVE_SECONDS, so the broker notices a killed program within ~1.5 x that.

The program's threads only touch memory here: `state`, `refresh` and `event` take a
lock for a moment and return. A sender thread of the reporter's own publishes; while
the broker is away, events wait in a deque that drops the oldest (a console wants
the latest), and the state is a single slot (only the newest snapshot matters). On
reconnect the events are flushed and a fresh state is sent. paho's own queue
(max_queued_messages_set) refuses the *newest* message when full, which is the
wrong end for telemetry, so it is only a backstop behind the deque.

The paho client is imported inside `Reporter.start`, not passed in by each program:
every program needs the very same client (will, keepalive, login, TLS, reconnect
backoff), so it is built in one place; the import is lazy so that moviepkg stays
standard-library only at import time (the website never reports) and a missing
paho-mqtt is one clear log line, not a crash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from .broker import Endpoint, TelemetrySettings, parse_mqtt_url
from .ids import is_package_id
from .telemetry import EVENTS, KEEPALIVE_SECONDS, STATE_SECONDS, Event, Presence, State, topic
from .times import utc_now

log = logging.getLogger("stopmo.telemetry")
MIN_INTERVAL_SECONDS = 1.0  # a state that changes sooner waits (bytes per station per hour)
MAX_EVENTS = 500  # events kept while the broker is away; the oldest go first
RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS = 1, 10  # a LAN broker: back within seconds
CONNECT_TIMEOUT_SECONDS = 3.0  # also bounds how long `stop` can wait for paho's thread
Sample = Callable[[], Mapping[str, Any]]


class BaseReporter:
    """Where a program reports to; an implementation must never block for long or raise."""

    def start(self) -> None:
        """Begin connecting in the background."""

    def state(self, fields: Mapping[str, Any]) -> None:
        """Offer the program's current state (sent when it changed, and every 10 s)."""

    def refresh(self) -> None:
        """Ask for a fresh sample soon (a reporter built with `sample`)."""

    def event(self, kind: str, package_id: str, detail: str = "") -> None:
        """Report something that happened to a movie."""

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the broker answers (a short-lived program's events go out); False
        when it does not within timeout."""
        return False

    def stop(self) -> None:
        """Say `offline` and disconnect (a bounded wait)."""


class NullReporter(BaseReporter):
    """Telemetry off: every report is dropped."""


class Reporter(BaseReporter):
    """Report one device's program to the broker of settings (see the module docstring).

    With `sample`, the reporter's thread asks it for the state (every state_seconds and
    after `refresh`); without, the program offers it with `state`.
    """

    def __init__(self, settings: TelemetrySettings, device: str, program: str, *,
                 password: str | None = None, sample: Sample | None = None,
                 state_seconds: float = STATE_SECONDS,
                 min_interval: float = MIN_INTERVAL_SECONDS, max_events: int = MAX_EVENTS,
                 keepalive: int = KEEPALIVE_SECONDS,
                 commands: Callable[[bytes], bytes | None] | None = None) -> None:
        self.endpoint: Endpoint = parse_mqtt_url(settings.url)
        self.commands = commands  # a cmd payload -> the answer (moviepkg.commands)
        self.settings, self.device, self.program = settings, device, program
        self.password, self.sample, self.keepalive = password, sample, keepalive
        self.state_seconds, self.min_interval = state_seconds, min_interval
        self.online_topic = topic(device, program, "online")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._events: deque[bytes] = deque(maxlen=max_events)
        self._fields: dict[str, Any] | None = None  # the newest offered state
        self._sent: dict[str, Any] | None = None  # the last one published
        self._sent_at = float("-inf")
        self._asked = False  # refresh() was called
        self._resync = False  # just connected: publish a state at once
        self._down_since: float | None = None
        self._complaints: set[str] = set()  # what was logged already, once per outage
        self.dropped = 0  # events lost because the deque was full
        self._client: Any = None
        self._queue_full: object = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"telemetry-{program}")

    # --- the program's side: memory only ---------------------------------------------------

    def state(self, fields: Mapping[str, Any]) -> None:
        """Offer the current state; it goes out if it changed (at most every min_interval)."""
        with self._lock:
            if fields == self._fields:
                return
            self._fields = dict(fields)
        self._wake.set()

    def refresh(self) -> None:
        """Ask the sender to sample now (at most every min_interval)."""
        self._asked = True
        self._wake.set()

    def event(self, kind: str, package_id: str, detail: str = "") -> None:
        """Queue an event (the oldest is dropped when MAX_EVENTS wait)."""
        if kind not in EVENTS or not is_package_id(package_id):
            log.warning("telemetry: not an event: %r for %r", kind, package_id)
            return
        try:
            payload = Event(kind, package_id, utc_now(), str(detail)[:500]).to_json()
        except Exception as exc:  # never into the program: its work matters more
            log.warning("telemetry: cannot encode %s: %s", kind, exc)
            return
        with self._lock:
            if len(self._events) == self._events.maxlen:
                self.dropped += 1
            self._events.append(payload)
        self._wake.set()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until connected (at most timeout s); stop() then flushes what waits."""
        return self._connected.wait(timeout)

    # --- connecting ------------------------------------------------------------------------

    def start(self) -> None:
        """Build the paho client and connect in the background (returns at once)."""
        try:
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion
        except ImportError:
            log.error("telemetry: telemetry.url is set but paho-mqtt is not installed "
                      "(pip install paho-mqtt); this program reports nothing")
            return
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"{self.device}-{self.program}")
        if self.password is not None:
            client.username_pw_set(self.device, self.password)
        if self.endpoint.tls:
            ca = self.settings.ca_file
            client.tls_set(ca_certs=str(ca) if ca else None)
        # Registered before connecting: the broker publishes it if we vanish.
        client.will_set(self.online_topic, Presence(False, utc_now()).to_json(), qos=1,
                        retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        client.max_queued_messages_set((self._events.maxlen or MAX_EVENTS) + 10)
        client.connect_timeout = CONNECT_TIMEOUT_SECONDS
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=self.keepalive)
        self._client = client
        self._queue_full = mqtt.MQTT_ERR_QUEUE_SIZE
        self._down_since = time.monotonic()
        client.loop_start()
        self._thread.start()

    def _where(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"

    def _complain(self, key: str, level: int, message: str, *args: Any) -> None:
        if key not in self._complaints:  # once per outage, not once per retry
            self._complaints.add(key)
            log.log(level, message, *args)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self._complain(f"refused {reason}", logging.ERROR,
                           "telemetry: the broker at %s refused %s/%s: %s (check "
                           "telemetry.password_file and the broker's users); retrying",
                           self._where(), self.device, self.program, reason)
            return
        client.publish(self.online_topic, Presence(True, utc_now()).to_json(), qos=1,
                       retain=True)
        if self.commands is not None:  # the broker's ACL lets us read our own cmd only
            client.subscribe(topic(self.device, self.program, "cmd"), qos=1)
        with self._lock:
            self._resync = True
            dropped = self.dropped
        away = time.monotonic() - (self._down_since or time.monotonic())
        log.info("telemetry: connected to %s as %s/%s", self._where(), self.device,
                 self.program, extra={"after_seconds": round(away, 1),
                                      "events_dropped": dropped})
        self._complaints.clear()
        self._down_since = None
        self._connected.set()
        self._wake.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """A command: run it on its own thread (paho's must not wait), publish the answer."""
        handle = self.commands
        if handle is None:
            return

        def run() -> None:
            try:
                answer = handle(bytes(message.payload))
            except Exception:  # the runner answers for the handlers; this is a bug
                log.exception("telemetry: a command could not be handled")
                return
            if answer is not None:
                client.publish(topic(self.device, self.program, "cmd/result"), answer, qos=1)

        threading.Thread(target=run, name=f"command-{self.program}", daemon=True).start()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self._complain("unreachable", logging.WARNING, "telemetry: the broker at %s does not "
                       "answer; the program carries on and telemetry keeps trying",
                       self._where())

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if self._connected.is_set():
            self._connected.clear()
            self._down_since = time.monotonic()
            if not self._stopping.is_set():
                log.warning("telemetry: lost the broker at %s (%s); retrying", self._where(),
                            reason)

    # --- the sender thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._next_wait())
            self._wake.clear()
            if self._stopping.is_set() or not self._connected.is_set():
                continue
            try:
                self._flush_events()
                self._send_state()
            except Exception as exc:  # telemetry must outlive anything it meets
                self._complain(f"send {type(exc).__name__}", logging.ERROR,
                               "telemetry: could not send: %s: %s", type(exc).__name__, exc)

    def _next_wait(self) -> float:
        if not self._connected.is_set():
            return self.state_seconds
        since = time.monotonic() - self._sent_at
        with self._lock:
            pending = self._asked or self._resync or (self._fields is not None
                                                      and self._fields != self._sent)
        wait = (self.min_interval if pending else self.state_seconds) - since
        return max(0.05, wait)

    def _flush_events(self) -> None:
        while self._connected.is_set():
            with self._lock:
                if not self._events:
                    return
                payload = self._events.popleft()
            info = self._client.publish(topic(self.device, self.program, "event"), payload,
                                        qos=1)
            if info.rc == self._queue_full:  # paho's backstop is full: lost
                with self._lock:
                    self.dropped += 1

    def _send_state(self) -> None:
        now = time.monotonic()
        periodic = now - self._sent_at >= self.state_seconds
        soon = now - self._sent_at >= self.min_interval
        with self._lock:
            resync, asked = self._resync, self._asked
            fields = self._fields
        if self.sample is not None and (periodic or resync or (asked and soon)):
            self._asked = False
            fields = dict(self.sample())
            with self._lock:
                self._fields = fields
        if fields is None or not (periodic or resync or (soon and fields != self._sent)):
            return
        payload = State(self.program, utc_now(), fields).to_json()
        self._client.publish(topic(self.device, self.program, "state"), payload, qos=1,
                             retain=True)
        with self._lock:
            self._sent, self._sent_at, self._resync = fields, now, False

    # --- stopping --------------------------------------------------------------------------

    def stop(self, timeout: float = 2.0) -> None:
        """Flush, publish a retained `offline`, disconnect; at most about timeout + 3 s."""
        client = self._client
        if client is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        try:
            if self._connected.is_set():
                self._flush_events()
                info = client.publish(self.online_topic, Presence(False, utc_now()).to_json(),
                                      qos=1, retain=True)
                info.wait_for_publish(timeout)
            client.disconnect()
        except Exception as exc:  # the broker went away meanwhile: the will says it
            log.debug("telemetry: no clean offline: %s", exc)
        client.loop_stop()
        self._client = None


def open_reporter(settings: TelemetrySettings, default_device: str, program: str,
                  **options: Any) -> BaseReporter:
    """A started Reporter for program, or a NullReporter when telemetry is off or broken.

    Off (telemetry.url empty) is said once at INFO; a password file that cannot be read
    is one ERROR line. Either way the program runs on.
    """
    if not settings.url:
        log.info("telemetry off (telemetry.url is empty)", extra={"program": program})
        return NullReporter()
    device = settings.device or default_device
    password = None
    if settings.password_file is not None:
        try:
            password = settings.password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            log.error("telemetry.password_file: cannot read %s (%s); %s reports nothing",
                      settings.password_file, exc, program)
            return NullReporter()
    try:
        reporter = Reporter(settings, device, program, password=password, **options)
        reporter.start()
    except Exception as exc:
        log.error("telemetry: cannot start for %s/%s: %s", device, program, exc)
        return NullReporter()
    return reporter
