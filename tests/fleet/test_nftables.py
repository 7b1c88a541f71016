"""nftables.conf.j2, rendered for each kind of box, checked by nft and loaded for real.

`nft -c -f` checks a file inside a fresh network namespace; then the policy is loaded
into a namespace whose only link leads to a peer holding a LAN, a VPN and an outside
address, and TCP connections from each show what gets through.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.fleet import (
    BOX,
    KINDS,
    LAN_SOURCE,
    OUTSIDE_SOURCE,
    ROOT,
    VPN_SOURCE,
    render_for_host,
    require_root,
    run,
)
from tests.services import Daemon, require_binary

pytestmark = pytest.mark.slow  # network namespaces

TEMPLATE = ROOT / "ansible" / "roles" / "common" / "templates" / "nftables.conf.j2"
# The website runs on Heroku; with processor_website on, the processing unit serves the LAN
# too (a festival without internet): the policy is checked with that port open.
LAN_SITE = {"processor_website": True}


def render(host: str, **overrides: object) -> str:
    return render_for_host(TEMPLATE, host, **overrides)


# -- namespaces -----------------------------------------------------------------------------------


def nft(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("ip", "netns", "exec", ns, require_binary("nft"), *args, check=check)


@pytest.fixture
def fresh_ns() -> Iterator[str]:
    require_root()
    require_binary("ip")
    name = f"stopmo-nft-{os.getpid()}-check"
    run("ip", "netns", "add", name)
    try:
        yield name
    finally:
        run("ip", "netns", "del", name, check=False)


@pytest.fixture
def rendered(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for kind, host in KINDS.items():
        paths[kind] = tmp_path / f"nftables.{kind}.conf"
        paths[kind].write_text(render(host, **(LAN_SITE if kind == "processor" else {})))
    return paths


# -- the file -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_nft_accepts_the_policy(fresh_ns, rendered, kind):
    nft(fresh_ns, "-c", "-f", str(rendered[kind]))


def test_nft_rejects_a_broken_policy(fresh_ns, rendered, tmp_path: Path):
    broken = tmp_path / "broken.conf"
    broken.write_text(rendered["station"].read_text().replace("policy drop;", "policy dorp;"))
    assert nft(fresh_ns, "-c", "-f", str(broken), check=False).returncode != 0


def chains(ns: str) -> dict[str, str]:
    """Return {chain: its listing} of table inet stopmo as the kernel holds it."""
    listing = nft(ns, "list", "table", "inet", "stopmo").stdout
    return dict(re.findall(r"chain (\w+) \{(.*?)\n\t\}", listing, re.S))


@pytest.mark.parametrize("kind", KINDS)
def test_loaded_policy_drops_input_and_limits_ssh(fresh_ns, rendered, kind):
    nft(fresh_ns, "-f", str(rendered[kind]))
    loaded = chains(fresh_ns)
    assert "policy drop;" in loaded["input"]
    assert "policy accept;" in loaded["output"]
    assert ("forward" in loaded) == (kind != "vpn")
    if "forward" in loaded:
        assert "policy drop;" in loaded["forward"]
    sources = nft(fresh_ns, "list", "set", "inet", "stopmo", "ssh_sources").stdout
    assert re.search(r"elements = \{ 10\.0\.0\.0/24, 10\.8\.0\.0/24 \}", sources)
    accepts = [
        line.strip() for line in loaded["input"].splitlines() if line.strip().endswith("accept")
    ]
    expected = {
        "station": ["tcp dport 22 ip saddr @ssh_sources accept"],
        "processor": [
            "tcp dport 22 ip saddr @ssh_sources accept",
            "tcp dport 8000 ip saddr 10.0.0.0/24 accept",
            "tcp dport 8883 ip saddr 10.0.0.0/24 accept",
            "tcp dport 8470 ip saddr { 10.0.0.0/24, 10.8.0.0/24 } accept",
        ],
        "vpn": [
            "tcp dport 22 ip saddr @ssh_sources accept",
            "udp dport 1194 accept",
            "tcp dport 22 accept",
        ],
    }[kind]
    port_rules = [a for a in accepts if "dport" in a and "sport 67" not in a]
    assert port_rules == expected


def test_loading_again_replaces_only_our_table(fresh_ns, rendered):
    nft(fresh_ns, "add", "table", "ip", "nat")  # what iptables-nft leaves on the VPN server
    nft(fresh_ns, "-f", str(rendered["processor"]))
    nft(fresh_ns, "-f", str(rendered["processor"]))
    tables = nft(fresh_ns, "list", "tables").stdout.split("\n")
    assert sorted(t for t in tables if t) == ["table inet stopmo", "table ip nat"]
    assert chains(fresh_ns)["input"].count("@ssh_sources") == 1


def test_website_port_follows_the_processor_variables():
    assert "dport 8000" not in render("processor")  # the inventory's default: Heroku
    assert "tcp dport 8000 ip saddr 10.0.0.0/24 accept" in render("processor", **LAN_SITE)
    assert "tcp dport 8080 ip saddr" in render("processor", processor_website_port=8080,
                                              **LAN_SITE)
    assert "dport 8000" not in render("processor", processor_website=False)
    assert "dport 8000" not in render("st-3")
    assert "tcp dport 9000 ip saddr 10.0.0.0/24 accept" in render("st-3", nft_lan_tcp_ports=[9000])


def test_broker_tls_port_is_open_to_the_lan_on_the_processor_only():
    assert "tcp dport 8883 ip saddr 10.0.0.0/24 accept" in render("processor")
    assert "tcp dport 8883 ip saddr" in render("processor", processor_website=False)
    assert "dport 1883" not in render("processor")  # plain MQTT: loopback only
    assert "dport 8883" not in render("st-3") and "dport 8883" not in render("stopmo-vpn")


def test_console_port_is_open_to_the_lan_and_the_vpn_on_the_processor_only():
    rule = "tcp dport 8470 ip saddr { 10.0.0.0/24, 10.8.0.0/24 } accept"
    assert rule in render("processor")
    assert "tcp dport 9470 ip saddr" in render("processor", ops_port=9470)
    assert "dport 8470" not in render("processor", ops_console=False)
    assert "dport 8470" not in render("st-3") and "dport 8470" not in render("stopmo-vpn")


# -- loaded for real ------------------------------------------------------------------------------

LISTENER = """
import socket, sys
servers = [socket.create_server((sys.argv[1], int(port))) for port in sys.argv[2:]]
print("listening", flush=True)
import selectors
selector = selectors.DefaultSelector()
for server in servers:
    selector.register(server, selectors.EVENT_READ)
while True:
    for key, _ in selector.select():
        conn, peer = key.fileobj.accept()
        conn.sendall(b"hello\\n")
        conn.close()
"""

CONNECT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4]),
                                  source_address=(sys.argv[3], 0)) as s:
        print(s.recv(10).decode().strip())
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
"""


class Listener(Daemon):
    """TCP listeners on the box's address, in its namespace."""

    name = "listener"

    def __init__(self, log_path: Path, ns: str, ports: list[int]) -> None:
        super().__init__(log_path)
        self.ns, self.ports = ns, ports

    def argv(self) -> list[str]:
        return [
            "ip",
            "netns",
            "exec",
            self.ns,
            sys.executable,
            "-u",
            "-c",
            LISTENER,
            BOX,
            *map(str, self.ports),
        ]

    def ready(self) -> bool:
        return "listening" in self.log_path.read_text()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Namespace "box" (10.0.0.100, listening on 22, 8000, 8470) and "peer" with three addresses."""
    require_root()
    require_binary("ip")
    tag = f"stopmo-nft-{os.getpid()}"
    server_ns, client_ns = f"{tag}-box", f"{tag}-peer"
    created: list[str] = []
    listener = None
    try:
        for ns in (server_ns, client_ns):
            run("ip", "netns", "add", ns)
            created.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run(
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            server_ns,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            client_ns,
        )
        run("ip", "-n", server_ns, "addr", "add", f"{BOX}/24", "dev", "eth0")
        for source in (LAN_SOURCE, VPN_SOURCE, OUTSIDE_SOURCE):
            run("ip", "-n", client_ns, "addr", "add", f"{source}/24", "dev", "eth0")
        for ns in (server_ns, client_ns):
            run("ip", "-n", ns, "link", "set", "eth0", "up")
        for network in ("10.8.0.0/24", "192.0.2.0/24"):
            run("ip", "-n", server_ns, "route", "add", network, "dev", "eth0")
        listener = Listener(tmp_path / "listener.log", server_ns, [22, 8000, 8470]).start()
        yield server_ns, client_ns
    finally:
        if listener is not None:
            listener.stop()
        for ns in reversed(created):
            run("ip", "netns", "del", ns, check=False)


def reach(box, port: int, source: str, timeout: float = 2.0) -> str:
    result = run(
        "ip",
        "netns",
        "exec",
        box[1],
        sys.executable,
        "-c",
        CONNECT,
        BOX,
        str(port),
        source,
        str(timeout),
        timeout=timeout + 10,
    )
    return result.stdout.strip()


def test_policy_in_action_on_the_processor(box, tmp_path: Path):
    # Without the policy everything connects.
    for source in (LAN_SOURCE, VPN_SOURCE, OUTSIDE_SOURCE):
        assert reach(box, 22, source) == "hello"
    policy = tmp_path / "nftables.conf"
    policy.write_text(render("processor", **LAN_SITE))
    nft(box[0], "-f", str(policy))
    assert reach(box, 22, LAN_SOURCE) == "hello"
    assert reach(box, 22, VPN_SOURCE) == "hello"
    assert reach(box, 22, OUTSIDE_SOURCE, timeout=0.5) == "timeout"
    assert reach(box, 8000, LAN_SOURCE) == "hello"
    assert reach(box, 8000, VPN_SOURCE, timeout=0.5) == "timeout"
    # The operators' console: the LAN and the VPN, never the outside.
    assert reach(box, 8470, LAN_SOURCE) == "hello"
    assert reach(box, 8470, VPN_SOURCE) == "hello"
    assert reach(box, 8470, OUTSIDE_SOURCE, timeout=0.5) == "timeout"
