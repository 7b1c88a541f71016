"""What the fleet tests share: the inventory as Ansible merges it, templates, namespaces,
and real Ansible runs into scratch roots."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import yaml
from werkzeug.security import generate_password_hash

from tests.services import Daemon, skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "ansible" / "inventory"
# One host of each kind, for templates that differ by kind.
KINDS = {"station": "st-3", "processor": "processor", "vpn": "stopmo-vpn"}
# Addresses the namespace tests give their peers: the processor, and one source of each kind.
BOX = "10.0.0.100"
LAN_SOURCE = "10.0.0.50"
VPN_SOURCE = "10.8.0.50"
OUTSIDE_SOURCE = "192.0.2.50"


def host_context(host: str) -> dict:
    """Return host's variables as Ansible merges them, plus groups/hostvars/group_names."""
    children = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]
    groups = {name: list(group["hosts"]) for name, group in children.items()}
    everyone: dict = {}
    for path in sorted((INVENTORY / "group_vars" / "all").glob("*.yml")):
        everyone.update(yaml.safe_load(path.read_text()) or {})

    def merged(name: str) -> dict:
        group_names = sorted(g for g, members in groups.items() if name in members)
        values = dict(everyone)
        for group in group_names:
            path = INVENTORY / "group_vars" / f"{group}.yml"
            if path.exists():
                values.update(yaml.safe_load(path.read_text()) or {})
        for group in children.values():
            values.update((group["hosts"] or {}).get(name) or {})
        return {**values, "group_names": group_names, "inventory_hostname": name}

    hostvars = {name: merged(name) for members in groups.values() for name in members}
    return {**hostvars[host], "groups": {"all": list(hostvars), **groups}, "hostvars": hostvars}


def render_for_host(template: Path, host: str, **overrides: object) -> str:
    """Render a role template for one host as Ansible would (trim_blocks, strict)."""
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True
    )
    return env.from_string(template.read_text()).render({**host_context(host), **overrides})


def require_root() -> None:
    """Network namespaces need root: fail under CI, skip elsewhere."""
    if os.geteuid() != 0:
        skip_or_fail("network namespaces need root")


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure show its output."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{shlex.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def in_ns(
    ns: str, *argv: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a network namespace."""
    return run("ip", "netns", "exec", ns, *argv, check=check, timeout=timeout)


class Namespaces:
    """Network namespaces named after this process, deleted (with their links) on close()."""

    def __init__(self, tag: str) -> None:
        self.prefix = f"stopmo-{tag}-{os.getpid()}-"
        self.names: list[str] = []

    def add(self, role: str) -> str:
        name = self.prefix + role
        run("ip", "netns", "add", name)
        self.names.append(name)
        in_ns(name, "ip", "link", "set", "lo", "up")
        return name

    def link(self, a: str, a_if: str, a_addr: str, b: str, b_if: str, b_addr: str) -> None:
        """Join two namespaces with a veth pair and give each end an address."""
        run("ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b)
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            in_ns(ns, "ip", "addr", "add", addr, "dev", ifname)
            in_ns(ns, "ip", "link", "set", ifname, "up")

    def close(self) -> None:
        for name in reversed(self.names):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        self.names.clear()


class NsDaemon(Daemon):
    """A program in a network namespace, ready once its log shows a given line.

    ready_when, if given, replaces that check (e.g. another process's log says something).
    """

    def __init__(
        self,
        log_path: Path,
        ns: str,
        argv: list[str],
        ready_text: str,
        ready_when: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(log_path)
        self.name = f"{Path(argv[0]).name} in {ns}"
        self._argv = ["ip", "netns", "exec", ns, *argv]
        self.ready_text = ready_text
        self.ready_when = ready_when

    def argv(self) -> list[str]:
        return self._argv

    def ready(self) -> bool:
        if self.ready_when is not None:
            return self.ready_when()
        return self.ready_text in self.text()

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# -- Ansible runs into scratch roots (test_ansible.py, test_broker.py) ----------------------------

ANSIBLE = ROOT / "ansible"
VENV_BIN = Path(sys.executable).parent
# The source the playbook packs and the units it deploys: snapshots, so that edits made
# in the checkout while the tests run cannot change what a second run sees.
SOURCE_ITEMS = (
    "pyproject.toml",
    "README.md",
    "moviepkg",
    "stations",
    "processor",
    "website",
    "ops",
    "docs",
)
# The festival's own values, which the inventory leaves as placeholders that the playbook
# refuses, and what the operators' encrypted host_vars/processor/vault.yml holds.
SCRATCH_FESTIVAL = {
    "stopmo_public_url": "https://stopmo-scratch.herokuapp.com",
    "stopmo_storage_url": "s3://stopmo-scratch/festival",
    "vault_processor_aws_access_key_id": "AKIASCRATCHPROCESSOR",
    "vault_processor_aws_secret_access_key": "scratch-processor-secret",
}
# The scratch inventory's console logins (roles/ops): dana, an operator, and desk, a
# console-only account, get this password's hash; yoni gets none, so no login.
OPS_PASSWORD = "scratch-console-password"
OPS_ACCOUNTS = ("dana", "desk")
# What a fresh Debian box has already (packages own these folders): a scratch root gets
# them too, and nothing more, before the first run.
DEBIAN_FOLDERS = (
    "etc/ssh",
    "etc/sudoers.d",
    "etc/systemd/system",
    "etc/apt/apt.conf.d",
    "etc/logrotate.d",
    "etc/sysctl.d",
    "etc/openvpn/server",
    "home",
)

RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)\s+"
    r"skipped=(?P<skipped>\d+)",
    re.MULTILINE,
)
TASK = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.+?)\] \*+$")
SKIPPING = re.compile(r"^skipping: \[(?P<host>[^\]]+)\]$")


@dataclass
class Run:
    """One ansible-playbook run: its exit status, its output, its PLAY RECAP."""

    returncode: int
    output: str
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, proc: subprocess.CompletedProcess[str]) -> Run:
        recap = {
            m["host"]: {
                key: int(m[key]) for key in ("ok", "changed", "unreachable", "failed", "skipped")
            }
            for m in RECAP.finditer(proc.stdout.split("PLAY RECAP", 1)[-1])
        }
        return cls(proc.returncode, proc.stdout + proc.stderr, recap)

    def skipped_tasks(self) -> set[str]:
        """Names of the tasks (and handlers) skipped for at least one host."""
        skipped, task = set(), ""
        for line in self.output.splitlines():
            if (match := TASK.match(line)) is not None:
                task = match["name"]
            elif SKIPPING.match(line) is not None:
                skipped.add(task)
        return skipped


@dataclass
class Fleet:
    """The scratch world of this module: roots per host, controller folders, the runs."""

    base: Path
    runs: dict[str, Run] = field(default_factory=dict)

    def root(self, host: str) -> Path:
        return self.base / "roots" / host

    @property
    def keys(self) -> Path:
        return self.base / "keys"

    @property
    def build(self) -> Path:
        return self.base / "build"

    @property
    def units(self) -> Path:
        return self.base / "systemd"

    @property
    def extra_vars(self) -> Path:
        return self.base / "scratch.yml"


def ansible_env(base: Path) -> dict[str, str]:
    """Environment for ansible-playbook and ansible-lint: every cache and temp under `base`."""
    for name in ("home", "local-tmp", "remote-tmp", "cache"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        {
            "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
            "ANSIBLE_HOME": str(base / "home"),
            "ANSIBLE_LOCAL_TEMP": str(base / "local-tmp"),
            "ANSIBLE_REMOTE_TEMP": str(base / "remote-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "XDG_CACHE_HOME": str(base / "cache"),
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin",
            "NO_COLOR": "1",
        }
    )
    return env


def ansible_playbook(
    base: Path, playbook: str, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), playbook, *args],
        cwd=ANSIBLE,
        env=ansible_env(base),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make_fleet(base: Path, hosts: tuple[str, ...]) -> Fleet:
    """Scratch roots holding Debian's own folders, snapshots of the source and the units."""
    fleet = Fleet(base)
    source = base / "src"
    for item in SOURCE_ITEMS:
        if (ROOT / item).is_dir():
            shutil.copytree(
                ROOT / item, source / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / item, source / item)
    shutil.copytree(ROOT / "systemd", fleet.units)
    operators = yaml.safe_load((INVENTORY / "group_vars/all/operators.yml").read_text())
    hashed = {name: generate_password_hash(OPS_PASSWORD) for name in OPS_ACCOUNTS}
    for operator in operators["stopmo_operators"]:
        if operator["name"] in hashed:
            operator["ops_password_hash"] = hashed.pop(operator["name"])
    for host in hosts:
        for folder in DEBIAN_FOLDERS:
            (fleet.root(host) / folder).mkdir(parents=True, exist_ok=True)
    # Templated by Ansible per host: each host writes into its own root.
    fleet.extra_vars.write_text(
        json.dumps(
            {
                "stopmo_root": f"{base}/roots/{{{{ inventory_hostname }}}}",
                "stopmo_manage_system": False,
                "stopmo_keys_dir": str(fleet.keys),
                "stopmo_build_dir": str(fleet.build),
                "stopmo_source_dir": str(source),
                "stopmo_units_dir": str(fleet.units),
                "ansible_connection": "local",
                "ansible_become": False,
                "ansible_python_interpreter": sys.executable,
                "stopmo_operators": operators["stopmo_operators"],
                "ops_users": [
                    {"name": name, "ops_password_hash": value} for name, value in hashed.items()
                ],
                **SCRATCH_FESTIVAL,
            }
        )
    )
    return fleet


def role_defaults(role: str) -> dict:
    """A role's defaults/main.yml (plain values), to render its templates with."""
    return yaml.safe_load((ANSIBLE / "roles" / role / "defaults" / "main.yml").read_text())
