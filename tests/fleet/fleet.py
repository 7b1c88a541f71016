"""What the fleet tests share: the inventory as Ansible merges it, templates, namespaces."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import jinja2
import yaml

from tests.services import skip_or_fail

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
