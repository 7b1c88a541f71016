"""The maintenance VPN, for real: OpenVPN, the port map and the operators' ssh_config.

A throwaway PKI (openssl CLI) and four network namespaces made by the test:

    ops 203.0.113.10 --- 203.0.113.1 [srv: OpenVPN server, tun0 10.8.0.1] 198.51.100.1
                                                                               |
    sta 10.0.0.3 --- 10.0.0.254 [rtr: OpenVPN client, tun0 10.8.0.2] 198.51.100.2

The server runs the rendered server.conf.j2 with the router's rendered CCD file, the
router the rendered client.conf.j2; the port map is the rendered iptables.rules.j2
loaded into the server's namespace. A one-line TCP server on the station (and on the
router's LAN address) answers each connection with the address it came from.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
import yaml

from tests.fleet.fleet import Namespaces, NsDaemon, in_ns, require_root, run
from tests.services import ServiceError, require_binary, skip_or_fail, wait_until

pytestmark = pytest.mark.slow  # network namespaces and real OpenVPN

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "ansible" / "inventory"
VPN_TEMPLATES = ROOT / "ansible" / "roles" / "vpn" / "templates"
SSH_CONFIG = ROOT / "ansible" / "roles" / "vpn" / "files" / "ssh_config"
CONNECT_TIMEOUT = 10.0

SERVER_PUBLIC = "198.51.100.1"
ROUTER_WAN = "198.51.100.2"
OPS_SIDE = "203.0.113.1"
OPS = "203.0.113.10"
STATION = "10.0.0.3"


# -- the inventory as Ansible sees it (hosts.yml + network.yml), and the templates ----------------


def inventory() -> dict:
    """Return network.yml's variables plus Ansible's `groups` and `hostvars`."""
    network = yaml.safe_load((INVENTORY / "group_vars" / "all" / "network.yml").read_text())
    children = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]
    groups = {name: list(group["hosts"]) for name, group in children.items()}
    hostvars = {
        host: {**network, **(host_vars or {})}
        for group in children.values()
        for host, host_vars in group["hosts"].items()
    }
    return {**network, "groups": groups, "hostvars": hostvars}


def render(template: str, **overrides: object) -> str:
    """Render one of the vpn role's templates as Ansible would (trim_blocks, strict)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(VPN_TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(template).render({**inventory(), **overrides})


def lan_hosts() -> dict[str, str]:
    """Return {name: LAN address} of every host behind the router, the router included."""
    context = inventory()
    hosts = {
        host: context["hostvars"][host]["ansible_host"]
        for group in ("stations", "processors")
        for host in context["groups"][group]
    }
    hosts[context["router"]["hostname"]] = context["router"]["lan_ip"]
    return hosts


# -- tools ----------------------------------------------------------------------------------------


WHO_SERVER = """
import socket, sys
server = socket.create_server((sys.argv[1], 22), reuse_port=True)
print("listening", flush=True)
while True:
    conn, peer = server.accept()
    conn.sendall(peer[0].encode() + b"\\n")
    conn.close()
"""

WHO_CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as s:
        print(s.recv(100).decode().strip())
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
"""


def who_am_i(ns: str, host: str, port: int, timeout: float = 3.0) -> str:
    """Connect from ns to host:port; return the address the far end saw, or timeout/refused."""
    result = in_ns(
        ns, sys.executable, "-c", WHO_CLIENT, host, str(port), str(timeout), timeout=timeout + 10
    )
    return result.stdout.strip()


# -- the PKI --------------------------------------------------------------------------------------

OPENSSL_CNF = """
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/certs_by_serial
certificate = $dir/ca.crt
private_key = $dir/private/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 2
default_crl_days = 2
policy = policy_any
unique_subject = no

[ policy_any ]
commonName = supplied

[ req ]
distinguished_name = dn
x509_extensions = ca_ext

[ dn ]

[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ server ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ client ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


class Pki:
    """A CA laid out like easy-rsa's pki/ folder: ca.crt, issued/, private/, crl.pem."""

    def __init__(self, path: Path) -> None:
        self.openssl = require_binary("openssl")
        self.dir = path
        for sub in ("issued", "private", "reqs", "certs_by_serial"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        (path / "index.txt").write_text("")
        (path / "serial").write_text("01\n")
        (path / "crlnumber").write_text("01\n")
        self.cnf = path / "openssl.cnf"
        self.cnf.write_text(OPENSSL_CNF.format(dir=path))
        run(
            self.openssl,
            "req",
            "-config",
            str(self.cnf),
            "-x509",
            *EC_KEY,
            "-days",
            "2",
            "-subj",
            "/CN=stopmo test CA",
            "-keyout",
            str(path / "private" / "ca.key"),
            "-out",
            str(path / "ca.crt"),
        )
        self.gen_crl()
        run(require_binary("openvpn"), "--genkey", "tls-crypt", str(path / "tls-crypt.key"))

    def issue(self, name: str, kind: str) -> Path:
        """Make a key and a certificate with the server or client extensions."""
        request = self.dir / "reqs" / f"{name}.req"
        run(
            self.openssl,
            "req",
            "-config",
            str(self.cnf),
            "-new",
            *EC_KEY,
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(self.dir / "private" / f"{name}.key"),
            "-out",
            str(request),
        )
        cert = self.dir / "issued" / f"{name}.crt"
        run(
            self.openssl,
            "ca",
            "-batch",
            "-config",
            str(self.cnf),
            "-extensions",
            kind,
            "-notext",
            "-in",
            str(request),
            "-out",
            str(cert),
        )
        return cert

    def revoke(self, name: str) -> None:
        run(
            self.openssl,
            "ca",
            "-batch",
            "-config",
            str(self.cnf),
            "-revoke",
            str(self.dir / "issued" / f"{name}.crt"),
        )
        self.gen_crl()

    def gen_crl(self) -> None:
        run(
            self.openssl,
            "ca",
            "-batch",
            "-config",
            str(self.cnf),
            "-gencrl",
            "-out",
            str(self.dir / "crl.pem"),
        )

    def client_dir(self, name: str, path: Path) -> Path:
        """Copy what a client needs into one folder, as on the router (/etc/openvpn/stopmo)."""
        path.mkdir(parents=True, exist_ok=True)
        for source, target in (
            (self.dir / "ca.crt", "ca.crt"),
            (self.dir / "tls-crypt.key", "tls-crypt.key"),
            (self.dir / "issued" / f"{name}.crt", f"{name}.crt"),
            (self.dir / "private" / f"{name}.key", f"{name}.key"),
        ):
            (path / target).write_bytes(source.read_bytes())
            (path / target).chmod(0o600)
        return path


# -- the festival in namespaces -------------------------------------------------------------------


class Vpn:
    """The running topology: namespaces, PKI, the server and the router's client."""

    def __init__(self, base: Path, namespaces: Namespaces) -> None:
        self.base = base
        self.ns = namespaces
        self.daemons: list[NsDaemon] = []
        self.openvpn = require_binary("openvpn")
        self.router_name = inventory()["router"]["hostname"]

    def start(self) -> None:
        ns = self.ns
        self.srv, self.rtr, self.sta, self.ops = (ns.add(r) for r in ("srv", "rtr", "sta", "ops"))
        ns.link(self.srv, "up0", f"{SERVER_PUBLIC}/24", self.rtr, "wan0", f"{ROUTER_WAN}/24")
        ns.link(self.srv, "pub0", f"{OPS_SIDE}/24", self.ops, "eth0", f"{OPS}/24")
        ns.link(self.rtr, "lan0", "10.0.0.254/24", self.sta, "eth0", f"{STATION}/24")
        in_ns(self.rtr, "ip", "route", "add", "default", "via", SERVER_PUBLIC)
        in_ns(self.sta, "ip", "route", "add", "default", "via", "10.0.0.254")
        in_ns(self.ops, "ip", "route", "add", "default", "via", OPS_SIDE)
        for router in (self.srv, self.rtr):
            in_ns(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")

        self.pki = Pki(self.base / "pki")
        self.pki.issue("stopmo-vpn", "server")
        for client in (self.router_name, "stopmo-lost", "stopmo-stranger"):
            self.pki.issue(client, "client")
        self.pki.revoke("stopmo-lost")

        server_dir = self.base / "server"
        (server_dir / "ccd").mkdir(parents=True)
        (server_dir / "ccd" / self.router_name).write_text(render("ccd-router.j2"))
        # A CCD file for the lost device too: only the CRL may refuse it.
        (server_dir / "ccd" / "stopmo-lost").write_text("ifconfig-push 10.8.0.50 255.255.255.0\n")
        self.server_conf = server_dir / "stopmo.conf"
        # vpn_user "": the test's folders are private to root; the real server drops to nobody.
        self.server_conf.write_text(
            render(
                "server.conf.j2",
                vpn_server_dir=str(server_dir),
                vpn_pki_dir=str(self.pki.dir),
                vpn_user="",
            )
        )
        self.server = self.spawn(
            self.srv, "server", self.server_conf, "Initialization Sequence Completed"
        )
        self.router = self.client(self.router_name, self.rtr, SERVER_PUBLIC)
        self.router.start()
        self.station_who = self.spawn_who(self.sta, STATION)
        self.router_who = self.spawn_who(self.rtr, "10.0.0.254")

    def spawn(self, ns: str, name: str, config: Path, ready: str) -> NsDaemon:
        daemon = NsDaemon(
            self.base / f"{name}.log", ns, [self.openvpn, "--config", str(config)], ready
        )
        self.daemons.append(daemon)
        return daemon.start()

    def spawn_who(self, ns: str, address: str) -> NsDaemon:
        daemon = NsDaemon(
            self.base / f"who-{ns}.log",
            ns,
            [sys.executable, "-u", "-c", WHO_SERVER, address],
            "listening",
        )
        self.daemons.append(daemon)
        return daemon.start()

    def client(self, name: str, ns: str, remote: str) -> NsDaemon:
        """Return (not started) an OpenVPN client with the rendered client.conf.j2."""
        directory = self.pki.client_dir(name, self.base / "clients" / name)
        config = directory / "client.conf"
        config.write_text(
            render(
                "client.conf.j2",
                vpn_client_name=name,
                vpn_client_dir=str(directory),
                vpn_public_host=remote,
            )
        )
        daemon = NsDaemon(
            self.base / f"client-{name}.log",
            ns,
            [self.openvpn, "--config", str(config)],
            "Initialization Sequence Completed",
        )
        self.daemons.append(daemon)
        return daemon

    def stop(self) -> None:
        for daemon in reversed(self.daemons):
            with contextlib.suppress(Exception):
                daemon.stop()


@pytest.fixture(scope="module")
def vpn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vpn]:
    """The whole topology, up, for the module's tests."""
    require_root()
    for binary in ("ip", "openvpn", "openssl", "iptables-restore"):
        require_binary(binary)
    if not Path("/dev/net/tun").exists():
        skip_or_fail("no /dev/net/tun")
    namespaces = Namespaces("vpn")
    topology = Vpn(tmp_path_factory.mktemp("vpn"), namespaces)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()
        namespaces.close()


@pytest.fixture(scope="module")
def port_map(vpn: Vpn) -> Vpn:
    """The rendered iptables rules loaded into the server's namespace."""
    rules = vpn.base / "rules.v4"
    rules.write_text(render("iptables.rules.j2"))
    in_ns(vpn.srv, "iptables-restore", str(rules))
    return vpn


# -- OpenVPN --------------------------------------------------------------------------------------


def test_router_gets_its_ccd_address(vpn: Vpn):
    context = inventory()
    log = vpn.router.text()
    push = re.search(r"PUSH_REPLY,([^'\n]*)", log)
    assert push, log
    assert f"ifconfig {context['router']['vpn_ip']} {context['vpn_netmask']}" in push.group(1)
    assert "redirect-gateway" not in push.group(1)
    address = in_ns(vpn.rtr, "ip", "-4", "-o", "addr", "show", "dev", "tun0").stdout
    assert f"inet {context['router']['vpn_ip']}/24" in address
    server_address = in_ns(vpn.srv, "ip", "-4", "-o", "addr", "show", "dev", "tun0").stdout
    assert f"inet {context['vpn_server_address']}/24" in server_address


def test_server_routes_the_lan_to_the_tunnel(vpn: Vpn):
    route = in_ns(vpn.srv, "ip", "-4", "route", "get", STATION).stdout
    assert "dev tun0" in route


def test_the_vpn_server_reaches_the_lan_through_the_router(vpn: Vpn):
    """What ProxyJump does: the server connects to 10.0.0.X:22 from its VPN address."""
    assert who_am_i(vpn.srv, STATION, 22) == inventory()["vpn_server_address"]
    assert who_am_i(vpn.srv, "10.0.0.254", 22) == inventory()["vpn_server_address"]


def refused(vpn: Vpn, name: str, server_says: str) -> str:
    """Run a client until the server's log matches server_says; return the client's log."""
    client = vpn.client(name, vpn.ops, OPS_SIDE)
    client.ready_when = lambda: re.search(server_says, vpn.server.text()) is not None
    try:
        # A client told AUTH_FAILED exits: that is a refusal too.
        with contextlib.suppress(ServiceError):
            client.start()
        wait_until(client.ready_when, CONNECT_TIMEOUT, message=f"server log: {server_says}")
        # Give a wrongly admitted client the time to finish its connection.
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: "PUSH_REPLY" in client.text() or not client.running, 1.0)
        return client.text()
    finally:
        client.stop()


def test_revoked_client_is_refused(vpn: Vpn):
    log = refused(vpn, "stopmo-lost", r"certificate revoked|CRL CHECK FAILED")
    assert "TLS" in log
    assert "PUSH_REPLY" not in log
    assert "Initialization Sequence Completed" not in log


def test_client_without_ccd_file_is_refused(vpn: Vpn):
    log = refused(
        vpn,
        "stopmo-stranger",
        r"client-config-dir authentication failed for common "
        r"name 'stopmo-stranger'",
    )
    assert "AUTH_FAILED" in log
    assert "PUSH_REPLY" not in log
    assert "Initialization Sequence Completed" not in log


# -- the port map ---------------------------------------------------------------------------------


def test_port_map_reaches_the_station_and_the_router(port_map: Vpn):
    base = inventory()["ssh_port_base"]
    server_vpn = inventory()["vpn_server_address"]
    assert who_am_i(port_map.ops, OPS_SIDE, base + 3) == server_vpn
    assert who_am_i(port_map.ops, OPS_SIDE, base + 254) == server_vpn


def test_nothing_else_is_forwarded(port_map: Vpn):
    # Straight to the LAN or the router's tunnel address, without the port map: dropped.
    in_ns(port_map.ops, "ip", "route", "replace", "10.0.0.0/24", "via", OPS_SIDE)
    in_ns(port_map.ops, "ip", "route", "replace", "10.8.0.0/24", "via", OPS_SIDE)
    assert who_am_i(port_map.ops, STATION, 22, timeout=0.5) == "timeout"
    assert who_am_i(port_map.ops, "10.8.0.2", 22, timeout=0.5) == "timeout"
    # A port of the map's range with no host behind it: the server's INPUT drops it.
    assert who_am_i(port_map.ops, OPS_SIDE, 22050, timeout=0.5) == "timeout"


# -- the rules file, checked by iptables-restore --test -------------------------------------------


@pytest.fixture
def fresh_ns() -> Iterator[str]:
    require_root()
    require_binary("ip")
    namespaces = Namespaces("ipt")
    try:
        yield namespaces.add("check")
    finally:
        namespaces.close()


def test_rules_file_passes_iptables_restore_test(fresh_ns: str, tmp_path: Path):
    require_binary("iptables-restore")
    for name, tool in (
        ("iptables.rules.j2", "iptables-restore"),
        ("ip6tables.rules.j2", "ip6tables-restore"),
    ):
        rules = tmp_path / name.removesuffix(".j2")
        rules.write_text(render(name))
        in_ns(fresh_ns, tool, "--test", str(rules))
    broken = tmp_path / "broken.rules"
    broken.write_text(render("iptables.rules.j2").replace("--to-destination", "--to-dest1nation"))
    assert in_ns(fresh_ns, "iptables-restore", "--test", str(broken), check=False).returncode != 0


def test_rules_map_every_inventory_host(fresh_ns: str, tmp_path: Path):
    rules = tmp_path / "rules.v4"
    rules.write_text(render("iptables.rules.j2"))
    in_ns(fresh_ns, "iptables-restore", str(rules))
    # Read back what the kernel holds, not the file.
    nat = in_ns(fresh_ns, "iptables-save", "-t", "nat").stdout
    filt = in_ns(fresh_ns, "iptables-save", "-t", "filter").stdout
    base = inventory()["ssh_port_base"]
    hosts = lan_hosts()
    dnat = re.findall(
        r"^-A PREROUTING .*--dport (\d+) .*-j DNAT --to-destination (\S+)$", nat, re.M
    )
    expected = {str(base + int(ip.rsplit(".", 1)[1])): f"{ip}:22" for ip in hosts.values()}
    assert dict(dnat) == expected
    assert len(dnat) == len(expected)
    assert expected[str(base + 3)] == "10.0.0.3:22"
    assert expected[str(base + 100)] == "10.0.0.100:22"
    assert expected[str(base + 254)] == "10.0.0.254:22"
    assert re.search(r"^-A POSTROUTING -d 10\.0\.0\.0/24 -o tun0 .*-j MASQUERADE$", nat, re.M)
    forward = re.findall(r"^-A FORWARD .*-d (\S+)/32 .*--dport 22 .*-j ACCEPT$", filt, re.M)
    assert sorted(forward) == sorted(hosts.values())
    assert ":FORWARD DROP" in filt and ":INPUT DROP" in filt
    accepted_ports = re.findall(r"^-A INPUT .*--dport (\d+) .*-j ACCEPT$", filt, re.M)
    assert sorted(accepted_ports) == sorted(["22", "68", str(inventory()["vpn_port"])])


# -- the server configuration ---------------------------------------------------------------------


def test_server_config_has_the_required_directives():
    text = render("server.conf.j2")
    lines = set(text.splitlines())
    context = inventory()
    for line in (
        "topology subnet",
        "client-config-dir /etc/openvpn/server/ccd",
        "ccd-exclusive",
        "tls-crypt /etc/openvpn/server/pki/tls-crypt.key",
        "crl-verify /etc/openvpn/server/pki/crl.pem",
        "remote-cert-tls client",
        "route 10.0.0.0 255.255.255.0",
        f"port {context['vpn_port']}",
        "user nobody",
    ):
        assert line in lines, line
    (server,) = [line for line in text.splitlines() if line.startswith("server ")]
    network, netmask, *_ = server.split()[1:]
    assert (
        f"{network}/{sum(bin(int(o)).count('1') for o in netmask.split('.'))}"
        == (context["vpn_cidr"])
    )
    # OpenVPN's `server` helper gives the server the network's first address.
    first = network.rsplit(".", 1)[0] + "." + str(int(network.rsplit(".", 1)[1]) + 1)
    assert first == context["vpn_server_address"]
    ccd = render("ccd-router.j2").splitlines()
    assert f"ifconfig-push {context['router']['vpn_ip']} {context['vpn_netmask']}" in ccd
    assert "iroute 10.0.0.0 255.255.255.0" in ccd


def test_router_client_config_is_the_committed_one():
    committed = (ROOT / "openwrt" / "files" / "etc" / "openvpn" / "stopmo.conf").read_text()
    rendered = render("client.conf.j2")
    body = [line for line in rendered.splitlines() if not line.startswith("#")]
    assert body == [line for line in committed.splitlines() if not line.startswith("#")]


# -- the operators' ssh_config --------------------------------------------------------------------


def ssh_g(host: str, *options: str) -> dict[str, str]:
    """Return `ssh -G` for a host of the committed ssh_config, as {keyword: value}."""
    ssh = require_binary("ssh")
    out = run(ssh, "-G", "-F", str(SSH_CONFIG), *options, host).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_ssh_config_jumps_through_the_vpn_server():
    st3 = ssh_g("st-3")
    assert st3["hostname"] == "10.0.0.3"
    assert st3["proxyjump"] == "stopmo-vpn"
    assert st3["port"] == "22"
    jump = ssh_g("stopmo-vpn")
    assert jump["hostname"] == inventory()["hostvars"]["stopmo-vpn"]["ansible_host"]
    assert "proxyjump" not in jump


def test_ssh_config_has_every_host_three_ways_with_one_host_key():
    base = inventory()["ssh_port_base"]
    public = inventory()["hostvars"]["stopmo-vpn"]["ansible_host"]
    for name, ip in lan_hosts().items():
        direct = ssh_g(name)
        assert (direct["hostname"], direct["proxyjump"]) == (ip, "stopmo-vpn"), name
        assert direct["hostkeyalias"] == name
        on_lan = ssh_g(f"{name}-lan")  # on the festival LAN, also while the 4G link is down
        assert (on_lan["hostname"], on_lan["port"]) == (ip, "22"), name
        assert on_lan["hostkeyalias"] == name
        assert "proxyjump" not in on_lan
        fallback = ssh_g(f"{name}-port")
        assert fallback["hostname"] == public
        assert fallback["port"] == str(base + int(ip.rsplit(".", 1)[1]))
        assert fallback["hostkeyalias"] == name
        assert "proxyjump" not in fallback
    router = inventory()["router"]["hostname"]
    for alias in (router, f"{router}-lan", f"{router}-port"):
        assert ssh_g(alias)["user"] == "root", alias


def test_ssh_config_jump_can_be_turned_off_on_the_command_line():
    st3 = ssh_g("st-3", "-J", "none")
    assert (st3["hostname"], st3["hostkeyalias"]) == ("10.0.0.3", "st-3")
    assert "proxyjump" not in st3
