"""The telemetry broker, for real: mosquitto with what the broker role makes.

The broker role runs into a scratch root (`site.yml --limit processor --tags broker`,
twice): its CA, server certificate, passwords (`credentials` and the hashed `passwd`) and
ACL are the ones a processing unit gets. Its mosquitto.conf.j2 is rendered again with the
scratch root's paths (and, on loopback, free ports), and a real mosquitto runs it:

- on loopback, both listeners on 127.0.0.1: logins and the ACL, with paho clients logged
  in as st-3, st-4, the processor and the console (the stations over TLS, as on the LAN);
- in a network namespace as the processor (10.0.0.100, its real ports, then its nftables
  policy), reached from a peer namespace holding a LAN, a VPN and an outside address.
"""

from __future__ import annotations

import itertools
import queue
import re
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.fleet.fleet import (
    ANSIBLE,
    BOX,
    LAN_SOURCE,
    OUTSIDE_SOURCE,
    VPN_SOURCE,
    Namespaces,
    NsDaemon,
    Run,
    ansible_playbook,
    in_ns,
    make_fleet,
    render_for_host,
    require_root,
    role_defaults,
    run,
)
from tests.services import LOCALHOST, Daemon, free_port, require_binary

pytestmark = pytest.mark.slow  # an Ansible run, network namespaces

TEMPLATES = ANSIBLE / "roles" / "broker" / "templates"
NFTABLES = ANSIBLE / "roles" / "common" / "templates" / "nftables.conf.j2"
DEVICES = [f"st-{n}" for n in range(1, 13)] + ["processor", "console"]
WAIT = 5.0


@dataclass
class Made:
    """What the broker role left in a scratch root, and its two runs."""

    root: Path
    runs: dict[str, Run]

    @property
    def dir(self) -> Path:
        return self.root / "etc/mosquitto/stopmo"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def password(self, device: str) -> str:
        lines = (self.dir / "credentials").read_text().splitlines()
        return dict(line.split(":", 1) for line in lines)[device]

    def config(self, name: str, **overrides: object) -> Path:
        """mosquitto.conf.j2 rendered for the processor with this root's files; run as root."""
        text = render_for_host(
            TEMPLATES / "mosquitto.conf.j2",
            "processor",
            **{
                **role_defaults("broker"),
                "ansible_managed": "test",
                "broker_dir": str(self.dir),
                **overrides,
            },
        )
        # As root, mosquitto would switch to user mosquitto, who cannot read the test's
        # files (on the fleet they belong to its group).
        path = self.root.parent / f"{name}.conf"
        path.write_text(text + "user root\n")
        return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    for tool in ("openssl", "mosquitto_passwd"):
        require_binary(tool)
    fleet = make_fleet(tmp_path_factory.mktemp("broker"), ("processor",))
    # The processor role made it (the broker role comes after it in site.yml).
    (fleet.root("processor") / "etc/stopmo").mkdir(parents=True)
    args = ("-e", f"@{fleet.extra_vars}", "--limit", "processor", "--tags", "broker")
    runs = {
        name: Run.parse(ansible_playbook(fleet.base, "site.yml", *args))
        for name in ("first", "second")
    }
    return Made(fleet.root("processor"), runs)


# -- what the role made ---------------------------------------------------------------------------


def test_role_runs_and_a_second_run_changes_nothing(made: Made) -> None:
    for run_ in made.runs.values():
        assert run_.returncode == 0, run_.output
        assert run_.recap["processor"]["failed"] == 0, run_.output
    assert made.runs["first"].recap["processor"]["changed"] > 5
    assert made.runs["second"].recap["processor"]["changed"] == 0, made.runs["second"].output


def mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_every_device_has_its_own_password_kept_private_and_hashed(made: Made) -> None:
    credentials = made.dir / "credentials"
    assert mode(credentials) == "0o600"
    passwords = dict(line.split(":", 1) for line in credentials.read_text().splitlines())
    assert list(passwords) == DEVICES
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", value) for value in passwords.values())
    assert len(set(passwords.values())) == len(DEVICES)
    hashed = (made.dir / "passwd").read_text()
    assert mode(made.dir / "passwd") == "0o640"
    assert [line.split(":", 1)[0] for line in hashed.splitlines()] == DEVICES
    assert all(line.split(":", 1)[1].startswith("$7$") for line in hashed.splitlines())
    assert not any(value in hashed for value in passwords.values())
    # The processing unit's own programs and the console get theirs, for the stopmo user.
    etc = made.root / "etc/stopmo"
    for device, name in (("processor", "mqtt.password"), ("console", "mqtt-console.password")):
        assert (etc / name).read_text() == passwords[device] + "\n"
        assert mode(etc / name) == "0o640"
    assert (etc / "mqtt-ca.crt").read_bytes() == made.ca.read_bytes()


def openssl(*args: str) -> str:
    return run("openssl", *args).stdout


def test_server_certificate_is_the_processors_signed_by_the_broker_ca(made: Made) -> None:
    assert "OK" in openssl("verify", "-CAfile", str(made.ca), str(made.dir / "server.crt"))
    names = openssl("x509", "-in", str(made.dir / "server.crt"), "-noout", "-ext", "subjectAltName")
    assert "IP Address:10.0.0.100" in names and "DNS:processor" in names
    assert mode(made.dir / "ca") == "0o700" and mode(made.dir / "ca/ca.key") == "0o600"
    assert mode(made.dir / "server.key") == "0o640"


def test_the_tests_render_the_config_as_ansible_did(made: Made) -> None:
    rendered = render_for_host(
        TEMPLATES / "mosquitto.conf.j2",
        "processor",
        **{**role_defaults("broker"), "ansible_managed": "Ansible managed"},
    )
    assert (made.root / "etc/mosquitto/conf.d/stopmo.conf").read_text() == rendered
    assert "listener 1883 127.0.0.1\n" in rendered and "listener 8883\n" in rendered
    assert "allow_anonymous false\n" in rendered


# -- logins and the ACL, on loopback --------------------------------------------------------------


class Broker(Daemon):
    """mosquitto with a rendered config, ready when its listeners (plain, then TLS) accept."""

    name = "mosquitto"

    def __init__(self, log_path: Path, config: Path, *ports: int) -> None:
        super().__init__(log_path)
        self.config, self.ports = config, ports

    def argv(self) -> list[str]:
        return [require_binary("mosquitto"), "-c", str(self.config)]

    def ready(self) -> bool:
        try:
            for port in self.ports:
                socket.create_connection((LOCALHOST, port), timeout=1).close()
        except OSError:
            return False
        return True


@dataclass
class Ports:
    plain: int
    tls: int


@pytest.fixture(scope="module")
def broker(made: Made) -> Iterator[Ports]:
    ports = Ports(free_port(), free_port())
    config = made.config(
        "loopback", mqtt_local_port=ports.plain, mqtt_tls_port=ports.tls, broker_tls_bind=LOCALHOST
    )
    with Broker(made.root.parent / "mosquitto.log", config, ports.plain, ports.tls):
        yield ports


_ids = itertools.count()


class Device:
    """A paho client logged in as one broker user; what it receives goes into a queue."""

    def __init__(self, port: int, user: str | None, password: str, ca: Path | None) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"test-{user}-{next(_ids)}",
            reconnect_on_failure=False,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        self.connack: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.received: queue.Queue = queue.Queue()
        self.client.on_connect = lambda _c, _u, _f, reason, _p: self.connack.put(reason)
        self.client.on_subscribe = lambda _c, _u, _m, reasons, _p: self.subacks.put(reasons)
        self.client.on_message = lambda _c, _u, msg: self.received.put(msg.topic)
        self.client.connect(LOCALHOST, port, keepalive=5)
        self.client.loop_start()
        self.reason = self.connack.get(timeout=WAIT)

    def subscribe(self, *topics: str) -> None:
        self.client.subscribe([(topic, 1) for topic in topics])
        self.subacks.get(timeout=WAIT)

    def publish(self, *topics: str) -> None:
        for topic in topics:
            self.client.publish(topic, b"{}", qos=1).wait_for_publish(WAIT)

    def until(self, last: str) -> list[str]:
        """Every topic received, up to and including `last` (published after the others)."""
        topics = [self.received.get(timeout=WAIT)]
        while topics[-1] != last:
            topics.append(self.received.get(timeout=WAIT))
        return topics

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def login(made: Made, broker: Ports) -> Iterator:
    """login(user): a Device for that user, with its own password (stations over TLS)."""
    devices: list[Device] = []

    def connect(user: str | None, password: str | None = None, tls: bool | None = None) -> Device:
        tls = (user or "").startswith("st-") if tls is None else tls
        secret = made.password(user) if password is None and user in DEVICES else password
        device = Device(
            broker.tls if tls else broker.plain, user, secret or "", made.ca if tls else None
        )
        devices.append(device)
        return device

    yield connect
    for device in devices:
        device.close()


def test_a_station_cannot_publish_as_another_device(login) -> None:
    console, st3 = login("console"), login("st-3")
    assert console.reason == st3.reason == "Success"
    console.subscribe("stopmo/v1/#")
    st3.publish(
        "stopmo/v1/st-4/kiosk/state",
        "stopmo/v1/st-4/kiosk/online",
        "stopmo/v1/processor/processor/event",
        "stopmo/v1/st-4/kiosk/cmd/result",
        "stopmo/v1/st-3/kiosk/state",  # its own: this one gets through
    )
    assert console.until("stopmo/v1/st-3/kiosk/state") == ["stopmo/v1/st-3/kiosk/state"]


def test_a_station_cannot_read_another_stations_commands(login) -> None:
    console, st3 = login("console"), login("st-3")
    st3.subscribe("stopmo/v1/st-4/kiosk/cmd", "stopmo/v1/+/+/cmd", "stopmo/v1/#")
    console.publish("stopmo/v1/st-4/kiosk/cmd", "stopmo/v1/st-3/kiosk/cmd")
    assert st3.until("stopmo/v1/st-3/kiosk/cmd") == ["stopmo/v1/st-3/kiosk/cmd"]


def test_a_station_cannot_send_a_command(login) -> None:
    console, st3, st4 = login("console"), login("st-3"), login("st-4")
    st4.subscribe("stopmo/v1/st-4/+/cmd")
    st3.subscribe("stopmo/v1/st-3/+/cmd")
    st3.publish("stopmo/v1/st-4/kiosk/cmd", "stopmo/v1/st-3/kiosk/cmd")
    console.publish("stopmo/v1/st-4/sync/cmd")
    assert st4.until("stopmo/v1/st-4/sync/cmd") == ["stopmo/v1/st-4/sync/cmd"]
    assert st3.received.empty()


def test_the_console_reads_everything_and_sends_commands(login) -> None:
    console, st3, processor = login("console"), login("st-3"), login("processor")
    assert processor.reason == "Success"  # over loopback, plain MQTT
    console.subscribe("stopmo/v1/#")
    st3.subscribe("stopmo/v1/st-3/kiosk/cmd")
    processor.publish("stopmo/v1/processor/processor/event")
    st3.publish("stopmo/v1/st-3/kiosk/online", "stopmo/v1/st-3/kiosk/event")
    console.publish("stopmo/v1/st-3/kiosk/cmd")
    assert st3.until("stopmo/v1/st-3/kiosk/cmd") == ["stopmo/v1/st-3/kiosk/cmd"]
    st3.publish("stopmo/v1/st-3/kiosk/cmd/result")
    seen = console.until("stopmo/v1/st-3/kiosk/cmd/result")
    assert sorted(seen) == sorted(
        [
            "stopmo/v1/processor/processor/event",
            "stopmo/v1/st-3/kiosk/online",
            "stopmo/v1/st-3/kiosk/event",
            "stopmo/v1/st-3/kiosk/cmd",  # its own command comes back: it reads everything
            "stopmo/v1/st-3/kiosk/cmd/result",
        ]
    )


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_unknown_users_wrong_passwords_and_anonymous_clients_are_refused(
    login, made: Made, tls: bool
) -> None:
    assert login("st-3", tls=tls).reason == "Success"
    for user, password in (
        ("st-99", made.password("st-3")),  # not a device
        ("st-3", made.password("st-4")),  # another device's password
        ("console", "guess"),
        (None, None),  # anonymous
    ):
        assert login(user, password, tls=tls).reason == "Not authorized", (user, password)


# -- the LAN: a namespace as the processor, its real ports and firewall ----------------------------

CLIENT = """
import json, socket, ssl, sys
import paho.mqtt.client as mqtt
host, port, source, user, password, ca = sys.argv[1:7]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe")
client.username_pw_set(user, password)
client.connect_timeout = 2.0
if ca != "-":
    client.tls_set(ca_certs=ca)
result = []
client.on_connect = lambda _c, _u, _f, reason, _p: result.append(str(reason))
try:
    client.connect(host, int(port), keepalive=5, bind_address=source)
    for _ in range(30):
        client.loop(0.1)
        if result:
            break
    print("connack " + result[0] if result else "no connack")
except ssl.SSLError as exc:
    print("tls " + exc.reason if exc.reason else "tls")
except ConnectionRefusedError:
    print("refused")
except (socket.timeout, TimeoutError):
    print("timeout")
"""


@pytest.fixture
def lan(made: Made, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Namespace "box" (the processor, 10.0.0.100, mosquitto) and "peer" (three sources)."""
    require_root()
    require_binary("ip")
    namespaces = Namespaces("mqtt")
    daemon = None
    try:
        box, peer = namespaces.add("box"), namespaces.add("peer")
        namespaces.link(box, "eth0", f"{BOX}/24", peer, "eth0", f"{LAN_SOURCE}/24")
        for source in (VPN_SOURCE, OUTSIDE_SOURCE):
            in_ns(peer, "ip", "addr", "add", f"{source}/24", "dev", "eth0")
        for network in ("10.8.0.0/24", "192.0.2.0/24"):
            in_ns(box, "ip", "route", "add", network, "dev", "eth0")
        argv = [require_binary("mosquitto"), "-c", str(made.config("lan")), "-v"]
        # Up once it says it runs: it opens every listener first ("mosquitto version X
        # starting" comes before them, so that line was not enough on a busy machine).
        log = tmp_path / "mosquitto.log"
        running = re.compile(r"mosquitto version \S+ running")
        daemon = NsDaemon(log, box, argv, "running", ready_when=lambda: bool(
            log.exists() and running.search(log.read_text(errors="replace")))).start()
        assert "port 8883" in daemon.text() and "port 1883" in daemon.text(), daemon.text()
        yield box, peer
    finally:
        if daemon is not None:
            daemon.stop()
        namespaces.close()


def probe(
    ns: str, host: str, port: int, user: str, password: str, ca: Path | None, source: str = ""
) -> str:
    argv = [sys.executable, "-c", CLIENT, host, str(port), source, user, password, str(ca or "-")]
    return in_ns(ns, *argv, timeout=20).stdout.strip()


def test_plain_mqtt_on_loopback_only_and_tls_on_the_lan(made: Made, lan, tmp_path: Path) -> None:
    box, peer = lan
    st3, processor = made.password("st-3"), made.password("processor")
    # On the box itself, the programs' plain listener.
    assert probe(box, LOCALHOST, 1883, "processor", processor, None) == "connack Success"
    # From the LAN: nothing listens for plain MQTT; TLS with the broker's CA does.
    assert probe(peer, BOX, 1883, "st-3", st3, None, LAN_SOURCE) == "refused"
    assert probe(peer, BOX, 8883, "st-3", st3, made.ca, LAN_SOURCE) == "connack Success"
    assert probe(peer, BOX, 8883, "st-3", "wrong", made.ca, LAN_SOURCE) == "connack Not authorized"
    assert probe(peer, BOX, 8883, "st-3", st3, None, LAN_SOURCE) == "no connack"  # plain on TLS
    other_ca = tmp_path / "other-ca.crt"
    run(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "1", "-subj", "/CN=not-ours", "-keyout", str(tmp_path / "other.key"),
        "-out", str(other_ca),
    )  # fmt: skip
    answer = probe(peer, BOX, 8883, "st-3", st3, other_ca, LAN_SOURCE)
    assert answer == "tls CERTIFICATE_VERIFY_FAILED", answer
    # The processor's firewall: TLS from the LAN only, plain MQTT from nowhere outside.
    policy = tmp_path / "nftables.conf"
    policy.write_text(render_for_host(NFTABLES, "processor"))
    in_ns(box, require_binary("nft"), "-f", str(policy))
    assert probe(peer, BOX, 8883, "st-3", st3, made.ca, LAN_SOURCE) == "connack Success"
    for source in (VPN_SOURCE, OUTSIDE_SOURCE):
        assert probe(peer, BOX, 8883, "st-3", st3, made.ca, source) == "timeout", source
    assert probe(peer, BOX, 1883, "st-3", st3, None, LAN_SOURCE) == "timeout"
    assert probe(box, LOCALHOST, 1883, "processor", processor, None) == "connack Success"


def test_no_port_forward_on_the_router_reaches_the_broker() -> None:
    """The router forwards nothing from the WAN (openwrt/templates/firewall.j2)."""
    firewall = (ANSIBLE.parent / "openwrt/files/etc/config/firewall").read_text()
    assert "config redirect" not in firewall
    wan = re.search(r"config zone\n\toption name 'wan'\n(?:\t.*\n)*", firewall)
    assert wan is not None and "option input 'DROP'" in wan[0] and "option forward 'DROP'" in wan[0]
    assert not re.search(r"dest_port '[^']*(1883|8883)", firewall)
