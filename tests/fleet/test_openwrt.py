"""The router's UCI files: a small UCI parser and linter, and generate.py against the inventory.

OpenWrt's `uci` is not packaged for Debian, so the files are read by a parser that
follows uci's own grammar (package/config/option/list lines, shell-like quoting).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # the router's files generated and linted

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "openwrt" / "files"
CONFIG_DIR = FILES / "etc" / "config"
INVENTORY = ROOT / "ansible" / "inventory"
CONFIGS = ("network", "wireless", "dhcp", "firewall", "dropbear", "uhttpd", "openvpn", "system")
NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
TYPE_RE = re.compile(r"^[A-Za-z0-9_-]+$")


# -- a UCI parser ---------------------------------------------------------------------------------


class UciError(ValueError):
    """A UCI file does not parse."""


@dataclass
class Section:
    """One `config TYPE 'NAME'` block."""

    type: str
    name: str | None
    line: int
    options: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        """Return an option's value."""
        return self.options.get(key, default)


def parse_uci(text: str, source: str = "<uci>") -> list[Section]:
    """Parse UCI text into sections; raise UciError with the line number on any fault."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        if raw.strip().startswith("#") or not raw.strip():
            continue
        try:
            words = shlex.split(raw, comments=True, posix=True)
        except ValueError as exc:
            raise UciError(f"{where}: {exc} in {raw!r}") from exc
        if not words:
            continue
        keyword, args = words[0], words[1:]
        if keyword == "package":
            continue
        if keyword == "config":
            if len(args) not in (1, 2) or not TYPE_RE.match(args[0]):
                raise UciError(f"{where}: expected `config TYPE ['NAME']`, got {raw!r}")
            name = args[1] if len(args) == 2 else None
            if name is not None and not NAME_RE.match(name):
                raise UciError(f"{where}: section name {name!r} is not [A-Za-z0-9_]+")
            if name is not None and any(s.name == name for s in sections):
                raise UciError(f"{where}: section name {name!r} used twice")
            sections.append(Section(args[0], name, number))
        elif keyword in ("option", "list"):
            if not sections:
                raise UciError(f"{where}: {keyword} outside a config section")
            if len(args) != 2 or not NAME_RE.match(args[0]):
                raise UciError(f"{where}: expected `{keyword} NAME 'VALUE'`, got {raw!r}")
            section = sections[-1]
            if keyword == "option":
                if args[0] in section.options:
                    raise UciError(f"{where}: option {args[0]!r} set twice in the section")
                section.options[args[0]] = args[1]
            else:
                section.lists.setdefault(args[0], []).append(args[1])
        else:
            raise UciError(f"{where}: unknown keyword {keyword!r}")
    return sections


def load(name: str, directory: Path = CONFIG_DIR) -> list[Section]:
    """Parse one of the committed files."""
    path = directory / name
    return parse_uci(path.read_text(), str(path))


def of_type(sections: list[Section], kind: str) -> list[Section]:
    """Return the sections of one type."""
    return [s for s in sections if s.type == kind]


# -- the inventory, read independently of generate.py ---------------------------------------------


def network_vars() -> dict:
    """Return group_vars/all/network.yml."""
    return yaml.safe_load((INVENTORY / "group_vars" / "all" / "network.yml").read_text())


def inventory_leases() -> dict[str, tuple[str, str]]:
    """Return {host: (mac, ip)} for every station and processor in hosts.yml."""
    tree = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    children = tree["all"]["children"]
    leases = {}
    for group in ("stations", "processors"):
        for host, host_vars in children[group]["hosts"].items():
            leases[host] = (host_vars["mac"].lower(), host_vars["ansible_host"])
    return leases


def run_generate(root: Path, *args: str, env: dict[str, str] | None = None):
    """Run openwrt/generate.py of the checkout at root."""
    return subprocess.run(
        [sys.executable, str(root / "openwrt" / "generate.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


# -- the parser itself ----------------------------------------------------------------------------


def test_parser_reads_sections_options_lists_and_quoting():
    text = (
        "# comment\n"
        "config zone 'wan'\n"
        "\toption name wan\n"
        '\toption label "two words"\n'
        "\toption quote 'it'\\''s'\n"
        "\tlist network 'wan'\n"
        "\tlist network 'wwan'  # trailing comment\n"
        "\n"
        "config defaults\n"
        "\toption input 'DROP'\n"
    )
    zone, defaults = parse_uci(text)
    assert (zone.type, zone.name, zone.line) == ("zone", "wan", 2)
    assert zone.options == {"name": "wan", "label": "two words", "quote": "it's"}
    assert zone.lists == {"network": ["wan", "wwan"]}
    assert (defaults.type, defaults.name, defaults.get("input")) == ("defaults", None, "DROP")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config zone 'wan\n", "No closing quotation"),
        ("option name 'x'\n", "outside a config section"),
        ("config zone 'bad-name'\n", "is not"),
        ("config zone 'a'\nconfig rule 'a'\n", "used twice"),
        ("config zone\n\toption name 'a' 'b'\n", "expected `option NAME"),
        ("config zone\n\toption name 'a'\n\toption name 'b'\n", "set twice"),
        ("config zone\n\toptoin name 'a'\n", "unknown keyword"),
    ],
)
def test_parser_rejects_broken_files(text, message):
    with pytest.raises(UciError, match=message):
        parse_uci(text)


# -- every file -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_every_file_parses(name):
    sections = load(name)
    assert sections, f"{name} has no sections"


# -- addresses ------------------------------------------------------------------------------------


def test_static_leases_equal_the_inventory():
    hosts = of_type(load("dhcp"), "host")
    leases = {h.get("name"): (h.get("mac"), h.get("ip")) for h in hosts}
    assert leases == inventory_leases()
    assert len(hosts) == len(leases), "a host has two leases"


def test_leases_are_unique_inside_the_lan_and_outside_the_pool():
    net = network_vars()
    lan = ipaddress.ip_network(net["lan_cidr"])
    sections = load("dhcp")
    (lan_dhcp,) = [s for s in of_type(sections, "dhcp") if s.get("interface") == "lan"]
    pool_first = lan.network_address + int(lan_dhcp.get("start"))
    pool_last = pool_first + int(lan_dhcp.get("limit")) - 1
    assert pool_last in lan and pool_last < lan.broadcast_address
    hosts = of_type(sections, "host")
    ips = [ipaddress.ip_address(h.get("ip")) for h in hosts]
    macs = [h.get("mac").lower() for h in hosts]
    router_ip = ipaddress.ip_address(net["router"]["lan_ip"])
    assert len(set(ips)) == len(ips), "two leases share an address"
    assert len(set(macs)) == len(macs), "two leases share a MAC"
    assert router_ip not in ips
    for address in [*ips, router_ip]:
        assert address in lan and address not in (lan.network_address, lan.broadcast_address)
        assert not pool_first <= address <= pool_last, f"{address} is in the DHCP pool"
    for mac in macs:
        assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac)


def test_stations_are_at_their_number():
    for host in of_type(load("dhcp"), "host"):
        match = re.fullmatch(r"st-(\d+)", host.get("name"))
        if match:
            assert host.get("ip") == f"10.0.0.{match.group(1)}"


def test_lan_interface_is_the_router_address():
    net = network_vars()
    sections = load("network")
    interfaces = {s.name: s for s in of_type(sections, "interface")}
    lan = interfaces["lan"]
    assert (lan.get("proto"), lan.get("ipaddr"), lan.get("netmask")) == (
        "static",
        net["router"]["lan_ip"],
        net["lan_netmask"],
    )
    assert interfaces["vpn"].get("device") == "tun0"


def test_uplink_is_the_configured_one_and_the_other_is_written_as_comment():
    router = network_vars()["router"]
    text = (CONFIG_DIR / "network").read_text()
    wwan = {s.name: s for s in of_type(parse_uci(text), "interface")}["wwan"]
    qmi = ("qmi", router["uplink_qmi_device"])
    ethernet = ("dhcp", router["uplink_ifname"])
    active, other = (qmi, ethernet) if router["uplink"] == "qmi" else (ethernet, qmi)
    assert (wwan.get("proto"), wwan.get("device")) == active
    if router["uplink"] == "qmi":
        assert wwan.get("apn") == router["apn"]
    commented = "\n".join(
        line[1:] for line in text.splitlines() if line.startswith("#") and line[1:2] in "\tc"
    )
    (alternative,) = [s for s in parse_uci(commented) if s.name == "wwan"]
    assert (alternative.get("proto"), alternative.get("device")) == other


# -- firewall -------------------------------------------------------------------------------------


def firewall_zones() -> dict[str, Section]:
    return {z.get("name"): z for z in of_type(load("firewall"), "zone")}


def test_wan_zone_drops_input_and_forward_and_masquerades():
    wan = firewall_zones()["wan"]
    assert wan.get("input") == "DROP"
    assert wan.get("forward") == "DROP"
    assert wan.get("masq") == "1"
    assert set(wan.lists["network"]) == {"wan", "wwan"}


def test_forwardings_are_lan_to_wan_and_vpn_to_lan_only():
    forwardings = {(f.get("src"), f.get("dest")) for f in of_type(load("firewall"), "forwarding")}
    assert forwardings == {("lan", "wan"), ("vpn", "lan")}
    zones = firewall_zones()
    assert zones["vpn"].lists["network"] == ["vpn"]
    assert zones["lan"].lists["network"] == ["lan"]


def test_no_redirects_no_ipsec_and_no_port_open_on_wan():
    sections = load("firewall")
    assert not of_type(sections, "redirect"), "port forwards are not allowed"
    assert not of_type(sections, "include")
    for rule in of_type(sections, "rule"):
        text = " ".join(
            [*rule.options.values(), *(v for values in rule.lists.values() for v in values)]
        ).lower()
        for word in ("ipsec", "esp", "isakmp", "ah", "500", "4500"):
            assert not re.search(rf"\b{word}\b", text), f"rule {rule.get('name')}: {word}"
        if rule.get("src") in ("wan", "*") and rule.get("target") == "ACCEPT":
            assert rule.get("name") == "Allow-DHCP-Renew", f"{rule.get('name')} opens the WAN"
            assert (rule.get("proto"), rule.get("dest_port")) == ("udp", "68")
            assert rule.get("dest") is None
    defaults = of_type(sections, "defaults")[0]
    assert defaults.get("input") in ("REJECT", "DROP")
    assert defaults.get("forward") in ("REJECT", "DROP")


def test_dropbear_and_uhttpd_listen_on_the_lan_only():
    router_ip = network_vars()["router"]["lan_ip"]
    dropbears = of_type(load("dropbear"), "dropbear")
    assert dropbears
    for dropbear in dropbears:
        assert dropbear.get("Interface") == "lan"
        assert dropbear.get("PasswordAuth") == "off"
        assert dropbear.get("RootPasswordAuth") == "off"
    (uhttpd,) = of_type(load("uhttpd"), "uhttpd")
    listens = uhttpd.lists.get("listen_http", []) + uhttpd.lists.get("listen_https", [])
    assert listens
    for listen in listens:
        assert listen.rpartition(":")[0] == router_ip, listen


def operator_keys() -> list[str]:
    """Return the operators' public keys from group_vars/all/operators.yml."""
    operators = yaml.safe_load((INVENTORY / "group_vars" / "all" / "operators.yml").read_text())
    return [op["key"] for op in operators["stopmo_operators"]]


def key_lines(text: str) -> list[str]:
    """Return the key lines of an authorized_keys file (dropbear skips # comments)."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_router_lets_in_exactly_the_operators_keys():
    """Password logins are off (dropbear): root's keys must be the operators' ones."""
    keys = FILES / "etc" / "dropbear" / "authorized_keys"
    assert key_lines(keys.read_text()) == operator_keys()
    assert all(line.split()[0] == "ssh-ed25519" for line in key_lines(keys.read_text()))


def test_wlan_has_no_key_in_the_repository_and_is_off_without_one():
    router = network_vars()["router"]
    iface = {s.name: s for s in of_type(load("wireless"), "wifi-iface")}["lan"]
    assert iface.get("key") is None
    assert iface.get("disabled") == "1"
    assert (iface.get("ssid"), iface.get("network"), iface.get("mode")) == (
        router["wlan_ssid"],
        "lan",
        "ap",
    )
    assert iface.get("encryption").startswith(("psk2", "sae"))


def test_openvpn_client_is_enabled_with_the_rendered_config():
    (instance,) = of_type(load("openvpn"), "openvpn")
    assert instance.get("enabled") == "1"
    config = FILES / instance.get("config").lstrip("/")
    text = config.read_text()
    assert re.search(r"^remote vpn\.stopmo\.example 1194$", text, re.M)
    assert re.search(r"^dev tun0$", text, re.M)


# -- generate.py ----------------------------------------------------------------------------------


def test_generate_check_passes_on_the_committed_files():
    result = run_generate(ROOT, "--check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what generate.py reads and writes."""
    for part in ("openwrt", "ansible/inventory", "ansible/roles/vpn"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_generate_check_fails_after_a_file_is_edited(checkout: Path):
    dhcp = checkout / "openwrt/files/etc/config/dhcp"
    dhcp.write_text(dhcp.read_text().replace("'10.0.0.3'", "'10.0.0.33'"))
    result = run_generate(checkout, "--check")
    assert result.returncode == 1
    assert "-\toption ip '10.0.0.33'" in result.stdout
    assert "+\toption ip '10.0.0.3'" in result.stdout
    assert run_generate(checkout).returncode == 0
    assert run_generate(checkout, "--check").returncode == 0


def test_generate_follows_the_inventory(checkout: Path):
    hosts = checkout / "ansible/inventory/hosts.yml"
    hosts.write_text(hosts.read_text().replace('"d8:3a:dd:00:00:03"', '"d8:3a:dd:aa:bb:cc"'))
    assert run_generate(checkout, "--check").returncode == 1
    assert run_generate(checkout).returncode == 0
    dhcp = parse_uci((checkout / "openwrt/files/etc/config/dhcp").read_text())
    (st3,) = [h for h in of_type(dhcp, "host") if h.get("name") == "st-3"]
    assert st3.get("mac") == "d8:3a:dd:aa:bb:cc"


def test_generate_follows_the_operators(checkout: Path):
    operators_yml = checkout / "ansible/inventory/group_vars/all/operators.yml"
    text = operators_yml.read_text()
    new_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcrkdVq0ou3LVHb8Rd+OMl7KA8QkZTBgrNprzahMuan noa"
    operators_yml.write_text(text.replace("stopmo_operators:\n", f"""stopmo_operators:
  - name: noa
    key: "{new_key}"
""", 1))
    assert run_generate(checkout, "--check").returncode == 1
    assert run_generate(checkout).returncode == 0
    keys = key_lines((checkout / "openwrt/files/etc/dropbear/authorized_keys").read_text())
    assert keys == [new_key, *operator_keys()]
    operators_yml.write_text(text.replace('key: "ssh-ed25519 ', 'key: "not-a-key ', 1))
    result = run_generate(checkout)
    assert result.returncode == 3
    assert "stopmo_operators[0] (dana).key: not an SSH public key line" in result.stderr


def test_generate_switches_the_uplink(checkout: Path):
    network_yml = checkout / "ansible/inventory/group_vars/all/network.yml"
    network_yml.write_text(network_yml.read_text().replace("uplink: qmi", "uplink: ethernet"))
    assert run_generate(checkout).returncode == 0
    text = (checkout / "openwrt/files/etc/config/network").read_text()
    wwan = {s.name: s for s in of_type(parse_uci(text), "interface")}["wwan"]
    assert (wwan.get("proto"), wwan.get("device")) == ("dhcp", "usb0")
    assert "#\toption proto 'qmi'" in text


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("ansible_host: 10.0.0.5\n", "ansible_host: 10.0.0.4\n", "address 10.0.0.4 is also st-4"),
        ('"d8:3a:dd:00:00:05"', '"d8:3a:dd:00:00:04"', "MAC d8:3a:dd:00:00:04 is also st-4"),
        ("ansible_host: 10.0.0.100", "ansible_host: 10.0.0.160", "inside the DHCP pool"),
        ("ansible_host: 10.0.0.100", "ansible_host: 10.0.1.100", "not a host address"),
        ("station_number: 7\n", "station_number: 8\n", "st-7.station_number"),
        ('"d8:3a:dd:00:00:01"', '"d8:3a:dd:00:00"', "st-1.mac"),
    ],
)
def test_generate_refuses_an_inconsistent_inventory(checkout: Path, old, new, problem):
    hosts = checkout / "ansible/inventory/hosts.yml"
    assert old in hosts.read_text()
    hosts.write_text(hosts.read_text().replace(old, new, 1))
    result = run_generate(checkout)
    assert result.returncode == 3, result.stderr
    assert problem in result.stderr


def test_generate_writes_the_wlan_key_only_outside_the_repository(checkout: Path, tmp_path: Path):
    key_file = tmp_path / "wlan.key"
    key_file.write_text("it's a festival\n")
    refused = run_generate(checkout, "--wlan-key-file", str(key_file))
    assert refused.returncode == 2
    assert "never into the repository" in refused.stderr
    out = tmp_path / "router-files"
    assert (
        run_generate(checkout, "--out", str(out), "--wlan-key-file", str(key_file)).returncode == 0
    )
    iface = {s.name: s for s in of_type(load("wireless", out / "etc/config"), "wifi-iface")}["lan"]
    assert iface.get("key") == "it's a festival"
    assert iface.get("disabled") is None
    plain = tmp_path / "router-files-without-key"
    assert run_generate(checkout, "--out", str(plain)).returncode == 0
    for name in CONFIGS:
        if name != "wireless":
            assert (out / "etc/config" / name).read_text() == (
                plain / "etc/config" / name
            ).read_text()
    committed = parse_uci((checkout / "openwrt/files/etc/config/wireless").read_text())
    assert all(s.get("key") is None for s in committed)
    too_short = tmp_path / "short.key"
    too_short.write_text("short")
    assert (
        run_generate(checkout, "--out", str(out), "--wlan-key-file", str(too_short)).returncode == 2
    )


def test_generated_files_copy_onto_a_router_tree(tmp_path: Path):
    """The layout is the router's root: /etc/config/*, OpenVPN's and dropbear's files."""
    shutil.copytree(FILES, tmp_path / "root", dirs_exist_ok=True)
    assert sorted(
        p.relative_to(tmp_path / "root").as_posix()
        for p in (tmp_path / "root").rglob("*")
        if p.is_file()
    ) == sorted(
        [
            *(f"etc/config/{name}" for name in CONFIGS),
            "etc/openvpn/stopmo.conf",
            "etc/dropbear/authorized_keys",
        ]
    )
