"""sshd_config.j2, rendered for each kind of box and checked by sshd itself.

`sshd -t` validates, `sshd -T -C ...` prints the settings sshd would apply to a given
connection (Match blocks included). Then a real sshd in a network namespace, reached
from a second namespace that holds a LAN, a VPN and an outside address, shows who gets in.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import shlex
import shutil
import subprocess
import tempfile
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
    host_context,
    render_for_host,
    require_root,
)
from tests.services import Daemon, generate_keypair, require_binary

pytestmark = pytest.mark.slow  # real sshd logins

TEMPLATE = ROOT / "ansible" / "roles" / "common" / "templates" / "sshd_config.j2"


def render(host: str, **overrides: object) -> str:
    return render_for_host(TEMPLATE, host, **overrides)


# -- sshd -t / -T ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("hostkey") / "ssh_host_ed25519_key"
    generate_keypair(key, "stopmo-test-host")
    return key


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory, host_key: Path) -> dict[str, Path]:
    """The rendered sshd_config of each kind of box (the host key path is the test's)."""
    require_binary("sshd")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    directory = tmp_path_factory.mktemp("sshd")
    paths = {}
    for kind, host in KINDS.items():
        paths[kind] = directory / f"sshd_config.{kind}"
        paths[kind].write_text(render(host, sshd_host_keys=[str(host_key)]))
    return paths


def sshd(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [require_binary("sshd"), *args], capture_output=True, text=True, timeout=30
    )
    if check and result.returncode != 0:
        raise AssertionError(f"sshd {shlex.join(args)}: {result.returncode}\n{result.stderr}")
    return result


def effective(config: Path, user: str, addr: str, laddr: str = BOX) -> dict[str, list[str]]:
    """Return `sshd -T` for one connection as {keyword: [values, one per line]}."""
    spec = f"user={user},addr={addr},host={addr},laddr={laddr},lport=22"
    settings: dict[str, list[str]] = {}
    for line in sshd("-T", "-C", spec, "-f", str(config)).stdout.splitlines():
        keyword, _, value = line.partition(" ")
        settings.setdefault(keyword, []).append(value)
    return settings


def admitted(settings: dict[str, list[str]], user: str, addr: str) -> bool:
    """Evaluate AllowUsers as sshd does: USER or USER@HOST patterns, HOST a CIDR or a glob."""
    patterns = [p for line in settings.get("allowusers", []) for p in line.split()]
    if not patterns:
        return True
    for pattern in patterns:
        user_part, _, host_part = pattern.partition("@")
        if not fnmatch.fnmatchcase(user, user_part):
            continue
        if not host_part:
            return True
        if "/" in host_part:
            if ipaddress.ip_address(addr) in ipaddress.ip_network(host_part):
                return True
        elif fnmatch.fnmatchcase(addr, host_part):
            return True
    return False


@pytest.mark.parametrize("kind", KINDS)
def test_sshd_accepts_the_config(configs, kind):
    sshd("-t", "-f", str(configs[kind]))


def test_sshd_rejects_a_broken_config(configs, tmp_path: Path):
    broken = tmp_path / "sshd_config"
    broken.write_text(configs["processor"].read_text().replace("MaxAuthTries 3", "MaxAuthTries x"))
    assert sshd("-t", "-f", str(broken), check=False).returncode != 0


@pytest.mark.parametrize("kind", KINDS)
def test_keys_only_and_no_root(configs, kind):
    for addr in (LAN_SOURCE, VPN_SOURCE, OUTSIDE_SOURCE):
        settings = effective(configs[kind], "dana", addr)
        assert settings["passwordauthentication"] == ["no"]
        assert settings["kbdinteractiveauthentication"] == ["no"]
        assert settings["permitrootlogin"] == ["no"]
        assert settings["pubkeyauthentication"] == ["yes"]
        assert settings["authenticationmethods"] == ["publickey"]
        assert settings["permitemptypasswords"] == ["no"]
        assert settings["maxauthtries"] == ["3"]
        assert settings["clientaliveinterval"] == ["30"]
        assert settings["x11forwarding"] == ["no"]
        assert settings["allowagentforwarding"] == ["no"]
        assert settings["permittunnel"] == ["no"]
        assert settings["kexalgorithms"][0].startswith("sntrup761x25519-sha512@openssh.com")
        assert "cbc" not in settings["ciphers"][0] and "sha1" not in settings["macs"][0]


def test_only_the_vpn_server_forwards_and_only_to_the_fleet(configs):
    assert effective(configs["station"], "dana", LAN_SOURCE)["allowtcpforwarding"] == ["no"]
    assert effective(configs["processor"], "dana", LAN_SOURCE)["allowtcpforwarding"] == ["no"]
    jump = effective(configs["vpn"], "dana", OUTSIDE_SOURCE)
    assert jump["allowtcpforwarding"] == ["local"]
    permitted = jump["permitopen"][0].split()
    context = host_context("stopmo-vpn")
    lan = [
        context["hostvars"][h]["ansible_host"]
        for h in context["groups"]["stations"] + context["groups"]["processors"]
    ]
    assert sorted(permitted) == sorted(f"{ip}:22" for ip in [*lan, context["router"]["lan_ip"]])


def operators() -> list[str]:
    return [op["name"] for op in host_context("processor")["stopmo_operators"]]


@pytest.mark.parametrize("kind", ["station", "processor"])
def test_operators_only_from_the_lan_and_the_vpn(configs, kind):
    for operator in operators():
        settings = effective(configs[kind], operator, LAN_SOURCE)
        assert admitted(settings, operator, LAN_SOURCE)
        assert admitted(settings, operator, VPN_SOURCE)
        assert not admitted(settings, operator, OUTSIDE_SOURCE)
        assert not admitted(settings, operator, "10.0.1.5")
    settings = effective(configs[kind], "root", LAN_SOURCE)
    assert not admitted(settings, "root", LAN_SOURCE)
    assert not admitted(settings, "someone", LAN_SOURCE)


def test_stations_deliver_from_the_lan_only(configs):
    user = host_context("processor").get("stopmo_user", "stopmo")
    settings = effective(configs["processor"], user, LAN_SOURCE)
    assert admitted(settings, user, "10.0.0.3")
    assert not admitted(settings, user, VPN_SOURCE)
    assert not admitted(settings, user, OUTSIDE_SOURCE)
    station = effective(configs["station"], user, LAN_SOURCE)
    assert not admitted(station, user, "10.0.0.3")


def test_vpn_server_admits_operators_from_anywhere_but_no_one_else(configs):
    settings = effective(configs["vpn"], "dana", OUTSIDE_SOURCE)
    for operator in operators():
        assert admitted(settings, operator, OUTSIDE_SOURCE)
    assert not admitted(settings, "stopmo", LAN_SOURCE)
    assert not admitted(settings, "root", OUTSIDE_SOURCE)


# -- a real sshd in a namespace -------------------------------------------------------------------


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AssertionError(f"ip {shlex.join(args)}: {result.stderr}")
    return result


class NsSshd(Daemon):
    """The rendered sshd_config, run in a namespace; keys come from a file the test owns."""

    name = "sshd"

    def __init__(self, directory: Path, ns: str, config: Path, keys: Path) -> None:
        super().__init__(directory / "sshd.log")
        self.ns, self.config, self.keys = ns, config, keys
        self.pid_file = directory / "sshd.pid"

    def argv(self) -> list[str]:
        # Only what a test host needs differs from the template: PAM (no accounts for the
        # test users), where keys and the pid file live, and the listening address.
        return [
            "ip", "netns", "exec", self.ns, require_binary("sshd"), "-D", "-e",
            "-f", str(self.config),
            "-o", "UsePAM=no",
            "-o", f"PidFile={self.pid_file}",
            "-o", f"ListenAddress={BOX}",
            "-o", "AuthorizedKeysFile=none",
            "-o", f"AuthorizedKeysCommand=/bin/cat {self.keys}",
            "-o", "AuthorizedKeysCommandUser=root",
        ]  # fmt: skip

    def ready(self) -> bool:
        return "Server listening on" in self.log_path.read_text(errors="replace")


@pytest.fixture
def box(tmp_path: Path, host_key: Path) -> Iterator[tuple[str, Path, NsSshd]]:
    """A processor's sshd in namespace "box", a client namespace with three addresses.

    The test users are accounts every Debian has: "daemon" as the operator and "nobody"
    as the stations' delivery user (both have no password and a nologin shell).
    """
    require_root()
    require_binary("ip")
    require_binary("ssh")
    tag = f"stopmo-sshd-{os.getpid()}"
    server_ns, client_ns = f"{tag}-box", f"{tag}-peer"
    created: list[str] = []
    daemon = None
    try:
        for ns in (server_ns, client_ns):
            ip("netns", "add", ns)
            created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip(
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
        ip("-n", server_ns, "addr", "add", f"{BOX}/24", "dev", "eth0")
        for source in (LAN_SOURCE, VPN_SOURCE, OUTSIDE_SOURCE):
            ip("-n", client_ns, "addr", "add", f"{source}/24", "dev", "eth0")
        for ns in (server_ns, client_ns):
            ip("-n", ns, "link", "set", "eth0", "up")
        for network in ("10.8.0.0/24", "192.0.2.0/24"):
            ip("-n", server_ns, "route", "add", network, "dev", "eth0")

        client_key = tmp_path / "id_ed25519"
        keys = tmp_path / "authorized_keys"
        keys.write_text(generate_keypair(client_key) + "\n")
        config = tmp_path / "sshd_config"
        config.write_text(
            render(
                "processor",
                sshd_host_keys=[str(host_key)],
                stopmo_operators=[{"name": "daemon"}],
                stopmo_user="nobody",
            )
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        daemon = NsSshd(tmp_path, server_ns, config, keys).start()
        yield client_ns, client_key, daemon
    finally:
        if daemon is not None:
            daemon.stop()
        for ns in reversed(created):
            ip("netns", "del", ns, check=False)


def ssh_base(box, source: str, *options: str) -> list[str]:
    """ssh from the client namespace with the test key, from source, options added."""
    client_ns, key, _ = box
    return [
        "ip", "netns", "exec", client_ns, require_binary("ssh"), "-F", "/dev/null",
        "-i", str(key), "-b", source, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "ConnectTimeout=5", *options,
    ]  # fmt: skip


def ssh_from(box, user: str, source: str, *options: str) -> subprocess.CompletedProcess[str]:
    argv = [*ssh_base(box, source, *options), f"{user}@{BOX}", "true"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def accepted(box, user: str, source: str) -> bool:
    """Log in for real; True if sshd accepted the key (the nologin shell then exits 1)."""
    result = ssh_from(box, user, source)
    log = box[2].log_path.read_text(errors="replace")
    ok = f"Accepted publickey for {user} from {source}" in log
    assert ok == (result.returncode != 255), (result.returncode, result.stderr, log[-2000:])
    return ok


def test_real_logins_follow_allowusers(box):
    assert accepted(box, "daemon", LAN_SOURCE)
    assert accepted(box, "daemon", VPN_SOURCE)
    assert not accepted(box, "daemon", OUTSIDE_SOURCE)
    assert accepted(box, "nobody", LAN_SOURCE)
    assert not accepted(box, "nobody", VPN_SOURCE)
    assert not accepted(box, "root", LAN_SOURCE)
    log = box[2].log_path.read_text()
    assert f"User daemon from {OUTSIDE_SOURCE} not allowed because not listed in AllowUsers" in log


def test_only_publickey_is_offered(box):
    result = ssh_from(
        box,
        "daemon",
        LAN_SOURCE,
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
    )
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_a_station_may_share_one_connection_but_open_nothing_else_on_it(configs):
    """The sync agent runs a cycle's sessions on one connection (OpenSSH ControlMaster):
    the master opens no session itself and the sessions come one at a time, so sshd must
    allow at least one per connection; and no kind of forwarding, so sessions are all a
    shared connection can carry (each one runs the key's forced command)."""
    user = host_context("processor").get("stopmo_user", "stopmo")
    settings = effective(configs["processor"], user, LAN_SOURCE)
    assert int(settings["maxsessions"][0]) >= 1
    assert settings["allowtcpforwarding"] == ["no"]
    assert settings["allowstreamlocalforwarding"] == ["no"]
    assert settings["permittunnel"] == ["no"]


def test_one_login_carries_several_sessions_through_the_real_config(box, tmp_path: Path):
    daemon = box[2]
    control = Path(tempfile.mkdtemp(prefix="stopmo-ssh-")) / "master"
    base = ssh_base(box, LAN_SOURCE, "-o", f"ControlPath={control}")
    target = f"nobody@{BOX}"
    opened = subprocess.run([*base, "-o", "ControlMaster=yes", "-o", "ControlPersist=30", "-N",
                             target], capture_output=True, text=True, timeout=30)
    assert opened.returncode == 0, opened.stderr
    try:
        for _ in range(2):  # each a session of its own on the one connection
            said = subprocess.run([*base, "-o", "ControlMaster=no", "-T", target, "true"],
                                  capture_output=True, text=True, timeout=30)
            assert "This account is currently not available" in said.stdout + said.stderr
        forward = subprocess.run([*base, "-o", "ControlMaster=no", "-W", f"{BOX}:22", target],
                                 capture_output=True, text=True, timeout=30,
                                 stdin=subprocess.DEVNULL)
        assert forward.returncode != 0 and "SSH-2.0" not in forward.stdout
    finally:
        subprocess.run([*base, "-O", "exit", target], capture_output=True, timeout=30)
        shutil.rmtree(control.parent, ignore_errors=True)
    log = daemon.log_path.read_text(errors="replace")
    assert log.count(f"Accepted publickey for nobody from {LAN_SOURCE}") == 1
