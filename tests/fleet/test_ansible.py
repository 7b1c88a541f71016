"""Ansible: syntax, lint, and real runs into scratch roots on this machine.

The playbooks run for real with the local connection, each host writing into its own
scratch root (`stopmo_root`), with `stopmo_manage_system=false` so nothing touches this
machine itself (docs/operations.md, "Scratch runs"). The heavy runs (--check, a first
run, a second one) happen once per module for a station, the processor and the VPN
server; each test then checks one aspect of what they left behind.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from werkzeug.security import check_password_hash

from ops.auth import read_users
from ops.config import load_settings as load_ops_settings
from processor.config import load_settings as load_processor_settings
from processor.receiver import Receiver
from stations.config import load_settings as load_station_settings
from stations.config import website_url_problem
from stations.heartbeat import software_version
from tests.fleet.fleet import (
    ANSIBLE,
    OPS_ACCOUNTS,
    OPS_PASSWORD,
    SCRATCH_FESTIVAL,
    VENV_BIN,
    Fleet,
    Run,
    ansible_env,
    ansible_playbook,
    host_context,
    make_fleet,
    render_for_host,
    role_defaults,
)
from tests.services import require_binary

pytestmark = [
    pytest.mark.slow,  # real ansible-playbook runs
    # The fleet's runs (up to 240 s each, ansible_playbook) happen in the setup of the first
    # test that uses it: on a busy machine, more than the suite's 300 s per test.
    pytest.mark.timeout(600),
]

REPO = Path(__file__).resolve().parents[2]
INVENTORY = ANSIBLE / "inventory"
PLAYBOOKS = ("site.yml", "upgrade-stations.yml")
HOSTS = ("processor", "st-3", "stopmo-vpn")
STATION_UNITS = ("stopmo-x.service", "stopmo-station.service", "stopmo-sync.service")
PROCESSOR_UNITS = (
    "stopmo-processor.service",
    "stopmo-screen.service",
    "stopmo-website.service",
    "stopmo-ops.service",
)
# Everything a scratch run skips, and only that: docs/operations.md lists the same tasks.
SKIPPED_IN_SCRATCH = {
    "common : Install the packages every box needs",
    "common : Remove automatic upgrades",
    "common : Look up the groups that exist on this box",
    "common : Create the stopmo system user",
    "common : Create the operators' accounts",
    "common : Remove the accounts of former operators",
    "common : Load the nftables policy at boot",
    "common : Reload sshd",
    "common : Reload nftables",
    "common : Restart journald",
    "app : Install the system packages the program needs",
    "app : Create the virtualenv",
    "app : Read what the virtualenv holds",
    "app : Install stopmo with its extras and their dependencies",
    "app : Reinstall stopmo itself from the new source",
    "app : Mark the virtualenv with what it holds",
    "app : Start the units",
    "processor : Run Redis for the website's cache",
    "processor : Restart the processor units",
    "station : Restart the station units",
    "vpn : Keep iptables-persistent from saving the current rules at install",
    "vpn : Install OpenVPN, openssl and iptables-persistent",
    "vpn : Load the rules at boot and run the OpenVPN server",
    "vpn : Restart OpenVPN",
    "vpn : Apply sysctl",
    "vpn : Load the iptables rules",
    "broker : Install mosquitto",
    "broker : Run the broker",
    "broker : Restart the broker",
    "broker : Reload the broker",
    "ops : Restart the console",
}
# Skipped because there is nothing to do, not because of scratch mode: its list is empty in
# this inventory, or (from the station's play) the processor's play hashed the passwords.
SKIPPED_EMPTY_LISTS = {
    "common : Remove former operators' SSH keys",
    "broker : Hash the passwords for mosquitto",
}


def tree(root: Path) -> dict[str, str]:
    """Every path under `root` with what it is (for before/after comparisons)."""
    return {
        str(path.relative_to(root)): (
            "dir" if path.is_dir() else f"file {path.stat().st_size} {path.stat().st_mtime_ns}"
        )
        for path in sorted(root.rglob("*"))
    }


def mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o7777)


def site_args(fleet: Fleet) -> tuple[str, ...]:
    """site.yml's arguments for a scratch fleet of HOSTS."""
    # The website runs on Heroku by default; these runs turn on its LAN copy on the
    # processing unit too (a festival without internet), so that its tasks run for real.
    lan_site = json.dumps({"processor_website": True})
    return ("-e", f"@{fleet.extra_vars}", "-e", lan_site, "--limit", ",".join(HOSTS))


def check_run(fleet: Fleet) -> Run:
    """site.yml --check on a fresh fleet; recap["untouched"] says whether its roots stayed so."""
    before = tree(fleet.base / "roots")
    run = Run.parse(ansible_playbook(fleet.base, "site.yml", "--check", *site_args(fleet)))
    run.recap["untouched"] = {"ok": int(tree(fleet.base / "roots") == before)}
    return run


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """--check, and two real runs of site.yml, for a station, the processor and the VPN."""
    for tool in (
        "sshd",
        "ssh-keygen",
        "nft",
        "systemctl",
        "openssl",
        "openvpn",
        "iptables-restore",
    ):
        require_binary(tool)
    fleet = make_fleet(tmp_path_factory.mktemp("fleet"), HOSTS)
    # --check gets a fresh fleet of its own, made the same way (roots, source, controller
    # folders): it runs beside the first real run instead of before it, on the other core.
    checked = make_fleet(tmp_path_factory.mktemp("fleet-check"), HOSTS)
    with ThreadPoolExecutor(max_workers=1) as pool:
        check = pool.submit(check_run, checked)
        for name in ("first", "second"):
            proc = ansible_playbook(fleet.base, "site.yml", *site_args(fleet))
            fleet.runs[name] = Run.parse(proc)
        fleet.runs["check"] = check.result()
    return fleet


# --- static checks ------------------------------------------------------------------------


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook: str, tmp_path: Path) -> None:
    proc = ansible_playbook(tmp_path, playbook, "--syntax-check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def ansible_lint(tmp_path: Path, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "ansible-lint"), "--nocolor"],
        cwd=project,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


Lints = dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def lints(tmp_path_factory: pytest.TempPathFactory) -> Lints:
    """ansible-lint on ansible/ ("clean") and on a copy with a bad task ("broken"), at once."""
    base = tmp_path_factory.mktemp("lint")
    # The lint test can fail: a task without a name or FQCN in a copy of ansible/ fails it.
    project = base / "ansible"
    shutil.copytree(ANSIBLE, project, ignore=shutil.ignore_patterns(".build", "keys"))
    with (project / "roles/common/tasks/system.yml").open("a") as tasks:
        tasks.write("\n- command: echo hello\n")
    with ThreadPoolExecutor(max_workers=2) as pool:
        clean = pool.submit(ansible_lint, base / "clean", ANSIBLE)
        broken = pool.submit(ansible_lint, base / "broken", project)
        return {"clean": clean.result(), "broken": broken.result()}


def test_ansible_lint_production_profile(lints: Lints) -> None:
    proc = lints["clean"]
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Profile 'production' was required, and it passed" in output, output


def test_ansible_lint_catches_a_violation(lints: Lints) -> None:
    """The lint test can fail: a task without a name or FQCN in a copy of ansible/ fails it."""
    proc = lints["broken"]
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "fqcn[action-core]" in output and "name[missing]" in output, output


# --- the runs -----------------------------------------------------------------------------


def test_check_run_passes_and_changes_nothing(fleet: Fleet) -> None:
    run = fleet.runs["check"]
    assert run.returncode == 0, run.output
    assert set(HOSTS) <= set(run.recap), run.output
    assert all(run.recap[host]["failed"] == 0 for host in HOSTS), run.output
    assert run.recap["untouched"]["ok"] == 1, "--check wrote into a scratch root"


def test_first_run_succeeds_on_every_host_kind(fleet: Fleet) -> None:
    run = fleet.runs["first"]
    assert run.returncode == 0, run.output
    for host in HOSTS:
        assert run.recap[host]["failed"] == run.recap[host]["unreachable"] == 0, run.output
        assert run.recap[host]["changed"] > 10, run.output


def test_second_run_changes_nothing(fleet: Fleet) -> None:
    run = fleet.runs["second"]
    assert run.returncode == 0, run.output
    changed = {host: run.recap[host]["changed"] for host in HOSTS}
    assert changed == dict.fromkeys(HOSTS, 0), run.output


def test_scratch_runs_skip_only_the_documented_tasks(fleet: Fleet) -> None:
    skipped = fleet.runs["first"].skipped_tasks()
    assert skipped == SKIPPED_IN_SCRATCH | SKIPPED_EMPTY_LISTS
    runbook = " ".join((REPO / "docs/operations.md").read_text().split())  # lines rewrapped
    undocumented = [name for name in SKIPPED_IN_SCRATCH if name.split(" : ", 1)[1] not in runbook]
    assert not undocumented, f"docs/operations.md does not list {undocumented}"


# --- what a station got ----------------------------------------------------------------------


def test_station_settings_name_the_station_and_the_processor(fleet: Fleet) -> None:
    path = fleet.root("st-3") / "etc/stopmo/station.toml"
    assert mode(path) == "0o640"
    assert tomllib.loads(path.read_text())["station"]["id"] == "st-3"
    settings = load_station_settings(path, environ={})  # the station's own loader
    assert settings.station_id == "st-3"
    # A festival station whose QR codes lead to the public site: nothing to complain about.
    assert settings.festival is True
    assert settings.kiosk.website_url == SCRATCH_FESTIVAL["stopmo_public_url"]
    assert website_url_problem(settings) is None
    assert settings.processor.host == "10.0.0.100"
    assert settings.processor.key == Path("/etc/stopmo/station_key")
    assert settings.paths.outbox == Path("/var/lib/stopmo/outbox")


def test_station_key_is_private_and_its_public_half_was_collected(fleet: Fleet) -> None:
    etc = fleet.root("st-3") / "etc/stopmo"
    assert mode(etc / "station_key") == "0o600"
    public = (etc / "station_key.pub").read_text().split()
    assert public[0] == "ssh-ed25519" and public[2] == "st-3"
    assert (fleet.keys / "st-3.pub").read_text().split() == public


def test_station_pins_the_processors_host_key(fleet: Fleet) -> None:
    host_key = (fleet.root("processor") / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    pinned = (fleet.root("st-3") / "etc/stopmo/known_hosts").read_text()
    assert pinned == f"10.0.0.100 {host_key[0]} {host_key[1]}\n"
    found = subprocess.run(
        [
            "ssh-keygen",
            "-F",
            "10.0.0.100",
            "-f",
            str(fleet.root("st-3") / "etc/stopmo/known_hosts"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr


@pytest.mark.parametrize(
    ("host", "units"), [("st-3", STATION_UNITS), ("processor", PROCESSOR_UNITS)]
)
def test_units_are_deployed_unchanged_and_enabled(
    fleet: Fleet, host: str, units: tuple[str, ...]
) -> None:
    system = fleet.root(host) / "etc/systemd/system"
    for unit in units:
        assert (system / unit).read_bytes() == (fleet.units / unit).read_bytes(), unit
        assert (REPO / "systemd" / unit).is_file(), unit
        assert mode(system / unit) == "0o644"
        wants = system / "multi-user.target.wants" / unit
        assert wants.is_symlink() and os.readlink(wants) == f"/etc/systemd/system/{unit}"
        state = subprocess.run(
            ["systemctl", f"--root={fleet.root(host)}", "is-enabled", unit],
            capture_output=True,
            text=True,
            check=False,
        )
        assert state.stdout.strip() == "enabled", state.stdout + state.stderr


def test_source_is_unpacked_with_its_bundle_checksum(fleet: Fleet) -> None:
    src = fleet.root("st-3") / "opt/stopmo/src"
    snapshot = fleet.base / "src"
    assert (src / "pyproject.toml").read_bytes() == (snapshot / "pyproject.toml").read_bytes()
    assert (src / "stations/cli.py").read_bytes() == (snapshot / "stations/cli.py").read_bytes()
    assert (src / "website/gunicorn_conf.py").is_file()
    console = fleet.root("processor") / "opt/stopmo/src/ops"
    assert (console / "cli.py").read_bytes() == (snapshot / "ops/cli.py").read_bytes()
    assert (console / "templates").is_dir()
    assert not list(src.rglob("__pycache__"))
    marker = (src / ".bundle-sha256").read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", marker)


# --- what every box got ----------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_sshd_and_nftables_configs_are_valid(fleet: Fleet, host: str) -> None:
    root = fleet.root(host)
    sshd = subprocess.run(
        ["/usr/sbin/sshd", "-t", "-f", str(root / "etc/ssh/sshd_config")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert sshd.returncode == 0, sshd.stderr
    assert "PasswordAuthentication no" in (root / "etc/ssh/sshd_config").read_text()
    nft = subprocess.run(
        ["nft", "-c", "-f", str(root / "etc/nftables.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert nft.returncode == 0, nft.stderr
    assert (root / "etc/ssh/ssh_host_ed25519_key").is_file()


@pytest.mark.parametrize("host", HOSTS)
def test_operators_clock_and_journal(fleet: Fleet, host: str) -> None:
    root = fleet.root(host)
    for name in ("dana", "yoni"):
        keys = root / f"home/{name}/.ssh/authorized_keys"
        assert mode(keys) == "0o600" and keys.read_text().startswith("ssh-ed25519 ")
    sudoers = root / "etc/sudoers.d/stopmo-operators"
    assert mode(sudoers) == "0o440"
    assert "dana ALL=(ALL:ALL) NOPASSWD: ALL" in sudoers.read_text()
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Asia/Jerusalem"
    journald = (root / "etc/systemd/journald.conf.d/stopmo.conf").read_text()
    assert "Storage=persistent" in journald
    cap = "100M" if host.startswith("st-") else "200M"  # stations have small SD cards
    assert f"SystemMaxUse={cap}" in journald
    periodic = (root / "etc/apt/apt.conf.d/20auto-upgrades").read_text()
    assert 'APT::Periodic::Unattended-Upgrade "0";' in periodic


def test_operators_may_read_the_journal() -> None:
    """Skipped in scratch runs, so read from the task itself: systemd-journal, appended."""
    tasks = yaml.safe_load((ANSIBLE / "roles/common/tasks/users.yml").read_text())
    (task,) = [t for t in tasks if t["name"] == "Create the operators' accounts"]
    user = task["ansible.builtin.user"]
    assert user["groups"] == ["systemd-journal"]
    assert user["append"] is True  # the groups rpi-imager gave the first user stay


# --- what the processor got ------------------------------------------------------------------


def test_processor_settings_load(fleet: Fleet) -> None:
    path = fleet.root("processor") / "etc/stopmo/processor.toml"
    settings = load_processor_settings(path, environ={})  # the processor's own loader
    assert settings.inbox == Path("/var/lib/stopmo/inbox")
    assert settings.screen == "mpv"
    # The title card: the festival's language, the stations' QR code site, no names set.
    assert settings.language == "he"
    assert settings.public_url == SCRATCH_FESTIVAL["stopmo_public_url"]
    assert settings.station_names == ()
    # It publishes to the festival's S3 bucket, with its keys from the vault.
    assert settings.storage_url == SCRATCH_FESTIVAL["stopmo_storage_url"]
    processor_env = fleet.root("processor") / "etc/stopmo/processor.env"
    assert mode(processor_env) == "0o640"
    assert env_lines(processor_env) == {
        "AWS_ACCESS_KEY_ID": SCRATCH_FESTIVAL["vault_processor_aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": SCRATCH_FESTIVAL["vault_processor_aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "eu-central-1",
    }
    # The LAN copy of the website reads the same store.
    site = env_lines(fleet.root("processor") / "etc/stopmo/website.env")
    assert site["STORAGE_URL"] == SCRATCH_FESTIVAL["stopmo_storage_url"]
    assert site["AWS_ACCESS_KEY_ID"] == SCRATCH_FESTIVAL["vault_processor_aws_access_key_id"]
    env = (fleet.root("processor") / "etc/stopmo/website.env").read_text()
    secret = re.search(r"^SECRET_KEY=([0-9a-fA-F]{64})$", env, re.MULTILINE)
    assert secret is not None, env
    assert (fleet.root("processor") / "etc/stopmo/website.secret").read_text().strip() == secret[1]
    assert mode(fleet.root("processor") / "etc/stopmo/website.env") == "0o640"


def env_lines(path: Path) -> dict[str, str]:
    """NAME=value lines of an environment file, comments left out."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_deployed_festival_is_heroku_and_s3_by_default() -> None:
    """The inventory's defaults: the public site on Heroku, S3, no site on the processor."""
    main = yaml.safe_load((INVENTORY / "group_vars/all/main.yml").read_text())
    assert main["stopmo_public_url"] == "https://CHANGE-ME.herokuapp.com"  # the placeholder
    assert main["stopmo_storage_url"].startswith("s3://change-me-")
    assert yaml.safe_load((INVENTORY / "group_vars/processors.yml").read_text())[
        "processor_website"] is False
    processor = role_defaults("processor")
    assert processor["processor_public_url"] == "{{ stopmo_public_url }}"  # one setting
    assert processor["processor_storage_url"] == "{{ stopmo_storage_url }}"
    assert processor["processor_website"] is False
    assert "vault_processor_aws_access_key_id" in processor["processor_storage_env"][
        "AWS_ACCESS_KEY_ID"]
    assert role_defaults("station")["station_festival"] is True
    # The stations' QR codes lead to the same one setting (the runs check what they render).
    template = (ANSIBLE / "roles/station/templates/station.toml.j2").read_text()
    assert 'website_url = "{{ stopmo_public_url }}"' in template


@pytest.mark.parametrize(("override", "says"), [
    ({}, "stopmo_public_url, now https://CHANGE-ME.herokuapp.com"),
    ({"stopmo_public_url": SCRATCH_FESTIVAL["stopmo_public_url"]},
     "stopmo_storage_url, now s3://change-me-stopmo-movies/festival"),
    ({**SCRATCH_FESTIVAL, "vault_processor_aws_secret_access_key": ""},
     "the processor's AWS keys in the encrypted inventory/host_vars/processor/vault.yml"),
])
def test_the_playbook_refuses_placeholders_and_a_store_without_keys(
        tmp_path: Path, override: dict[str, str], says: str) -> None:
    """Before anything is written: the inventory as it comes, and S3 without the vault."""
    values = tmp_path / "festival.yml"
    values.write_text(json.dumps({
        "stopmo_root": str(tmp_path / "roots/{{ inventory_hostname }}"),
        "stopmo_manage_system": False, "ansible_connection": "local",
        "ansible_become": False, "ansible_python_interpreter": sys.executable,
        "stopmo_public_url": "https://CHANGE-ME.herokuapp.com",
        "stopmo_storage_url": "s3://change-me-stopmo-movies/festival", **override}))
    run = Run.parse(ansible_playbook(tmp_path, "site.yml", "-e", f"@{values}",
                                     "--limit", "processor,st-3", "--tags", "settings"))
    assert run.returncode != 0, run.output
    assert run.recap["processor"]["failed"] == 1, run.output
    assert says in " ".join(run.output.split()), run.output
    assert not (tmp_path / "roots").exists()


def test_the_playbook_takes_a_folder_store_without_keys(tmp_path: Path) -> None:
    """A festival without internet: the folder store on the processor, the site on the LAN."""
    values = tmp_path / "lan.yml"
    values.write_text(json.dumps({
        "stopmo_root": str(tmp_path / "roots/{{ inventory_hostname }}"),
        "stopmo_manage_system": False, "ansible_connection": "local",
        "ansible_become": False, "ansible_python_interpreter": sys.executable,
        "stopmo_public_url": "http://10.0.0.100:8000", "processor_website": True,
        "processor_storage_url": "file:///var/lib/stopmo/work/store"}))
    run = Run.parse(ansible_playbook(tmp_path, "site.yml", "-e", f"@{values}",
                                     "--limit", "processor,st-3", "--tags", "settings"))
    assert run.returncode == 0, run.output
    assert run.recap["processor"]["failed"] == run.recap["st-3"]["failed"] == 0, run.output


def test_processor_settings_name_the_stations_that_have_a_name(tmp_path: Path) -> None:
    """Each station's station_name (a host var) reaches [title.stations], quoted for TOML."""
    hostvars = host_context("processor")["hostvars"]
    hostvars["st-2"] = {**hostvars["st-2"], "station_name": "Dragon table"}
    hostvars["st-5"] = {**hostvars["st-5"], "station_name": ' שולחן "הדרקון" \\ '}
    text = render_for_host(
        ANSIBLE / "roles/processor/templates/processor.toml.j2",
        "processor",
        **{
            **role_defaults("processor"),
            "ansible_managed": "test",
            "hostvars": hostvars,
            # What Ansible makes of the inventory's templated values.
            "processor_title_language": "ar",
            "processor_public_url": "https://movies.example.org",
            "processor_storage_url": "s3://stopmo-movies/festival",
            "processor_festival_name": 'The "Little" Festival \\ 2026',
            "processor_unit": "small-hall",
            "processor_festival_edition": "jff-2026",
            "stopmo_mqtt_local_url": "mqtt://127.0.0.1:1883",
            "stopmo_mqtt_password_file": "/etc/stopmo/mqtt.password",
            "stopmo_mqtt_ca_file": "/etc/stopmo/mqtt-ca.crt",
        },
    )
    path = tmp_path / "processor.toml"
    path.write_text(text)
    settings = load_processor_settings(path, environ={})
    assert settings.station_names == (("st-2", "Dragon table"), ("st-5", 'שולחן "הדרקון" \\'))
    assert (settings.unit, settings.festival_edition) == ("small-hall", "jff-2026")
    assert (settings.language, settings.public_url) == ("ar", "https://movies.example.org")
    assert settings.festival_name == 'The "Little" Festival \\ 2026'


def test_each_box_gets_its_broker_login_and_the_ca(fleet: Fleet) -> None:
    """[telemetry] names the broker; the password is the one the broker role made for
    this box on the processor (test_broker.py runs mosquitto with them)."""
    broker = fleet.root("processor") / "etc/mosquitto/stopmo"
    lines = (broker / "credentials").read_text().splitlines()
    credentials = dict(line.split(":", 1) for line in lines)
    assert {"st-3", "st-12", "processor", "console"} <= set(credentials)
    for host, settings, url in (
        ("st-3", "station.toml", "mqtts://10.0.0.100:8883"),
        ("processor", "processor.toml", "mqtt://127.0.0.1:1883"),
    ):
        etc = fleet.root(host) / "etc/stopmo"
        assert tomllib.loads((etc / settings).read_text())["telemetry"] == {
            "url": url,
            "device": host,
            "password_file": "/etc/stopmo/mqtt.password",
            "ca_file": "/etc/stopmo/mqtt-ca.crt",
        }
        assert (etc / "mqtt.password").read_text() == credentials[host] + "\n"
        assert mode(etc / "mqtt.password") == "0o640"
        assert (etc / "mqtt-ca.crt").read_bytes() == (broker / "ca.crt").read_bytes()


# --- what the operators' console got ---------------------------------------------------------


def test_console_settings_load_and_name_the_files_written(fleet: Fleet, tmp_path: Path) -> None:
    """ops.toml, read by the console's own loader (which checks that the broker password and
    the secret key files exist: here inside the scratch root, where the roles wrote them)."""
    root = fleet.root("processor")
    path = root / "etc/stopmo/ops.toml"
    assert mode(path) == "0o640"
    unit = (fleet.units / "stopmo-ops.service").read_text()
    assert "stopmo-ops --config /etc/stopmo/ops.toml serve" in unit  # the file written here
    scratch = tmp_path / "ops.toml"
    scratch.write_text(path.read_text().replace('"/etc/stopmo/', f'"{root}/etc/stopmo/'))
    settings = load_ops_settings(scratch, environ={})
    assert (settings.mqtt_url, settings.mqtt_user) == ("mqtt://127.0.0.1:1883", "console")
    assert (settings.bind, settings.port, settings.secure_cookies) == ("10.0.0.100", 8470, False)
    assert settings.db_path == Path("/var/lib/stopmo/ops/console.sqlite3")  # StateDirectory
    assert settings.stations == tuple(f"st-{n}" for n in range(1, 13))
    assert settings.processor == "processor"
    assert settings.alert_urls == () and settings.opening_hours.always
    assert settings.timezone == "Asia/Jerusalem"
    # The broker role's console password; a secret key made once, kept across runs.
    broker = root / "etc/mosquitto/stopmo/credentials"
    console = dict(line.split(":", 1) for line in broker.read_text().splitlines())["console"]
    assert settings.mqtt_password_file is not None
    assert settings.mqtt_password_file.read_text() == console + "\n"
    assert settings.secret_key_file == root / "etc/stopmo/ops-secret"
    assert re.fullmatch(r"[0-9a-fA-F]{64}\n", settings.secret_key_file.read_text())
    assert mode(settings.secret_key_file) == "0o640"
    assert settings.users_file == root / "etc/stopmo/ops-users"


def test_console_accounts_hold_hashes_of_the_inventorys_passwords(fleet: Fleet) -> None:
    path = fleet.root("processor") / "etc/stopmo/ops-users"
    assert mode(path) == "0o640"
    assert OPS_PASSWORD not in path.read_text()
    users = read_users(path)  # the console's own reader: the header lines are not accounts
    assert set(users) == set(OPS_ACCOUNTS)  # yoni has no ops_password_hash: no login
    for name in OPS_ACCOUNTS:
        assert check_password_hash(users[name], OPS_PASSWORD), name
        assert not check_password_hash(users[name], OPS_PASSWORD + "x"), name


def test_console_refuses_a_password_in_place_of_a_hash(fleet: Fleet) -> None:
    """A plain password pasted as ops_password_hash stops the run before anything is written."""
    users = fleet.root("processor") / "etc/stopmo/ops-users"
    before = users.read_bytes()
    bad = fleet.base / "plain-password.yml"
    bad.write_text(json.dumps({"ops_users": [{"name": "desk", "ops_password_hash": OPS_PASSWORD}]}))
    run = Run.parse(
        ansible_playbook(
            fleet.base,
            "site.yml",
            *("-e", f"@{fleet.extra_vars}", "-e", f"@{bad}"),
            *("--limit", "processor", "--tags", "ops"),
        )
    )
    assert run.returncode != 0 and run.recap["processor"]["failed"] == 1, run.output
    assert "desk: ops_password_hash must be a password hash" in run.output
    assert OPS_PASSWORD not in run.output
    assert users.read_bytes() == before


def test_station_key_may_only_run_the_receiver_for_its_own_id(fleet: Fleet, tmp_path: Path) -> None:
    """The authorized_keys line works: its forced command, run for real, keeps a heartbeat."""
    root = fleet.root("processor")
    keys = root / "var/lib/stopmo/.ssh/authorized_keys"
    assert mode(keys) == "0o600"
    lines = [line for line in keys.read_text().splitlines() if not line.startswith("#")]
    station_key = (fleet.root("st-3") / "etc/stopmo/station_key.pub").read_text().split()
    assert len(lines) == 1, lines
    options, key_type, key, comment = _split_authorized_key(lines[0])
    assert options.startswith("restrict,command=")
    assert [key_type, key, comment] == [station_key[0], station_key[1], "st-3"]
    (command,) = shlex.split(options.removeprefix("restrict,command="))
    argv = shlex.split(command)
    assert argv[:4] == ["/opt/stopmo/venv/bin/stopmo-processor", "receive", "--station", "st-3"]
    # Run it as sshd would (paths moved into the scratch root, this checkout's program).
    argv = [str(VENV_BIN / "stopmo-processor")] + [
        str(root) + arg if arg.startswith("/var/") else arg for arg in argv[1:]
    ]
    heartbeat = {"station_id": "st-3", "software_version": "0.1.0"}
    proc = subprocess.run(
        argv,
        input=json.dumps(heartbeat),
        capture_output=True,
        text=True,
        env={**os.environ, "SSH_ORIGINAL_COMMAND": "status"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    kept = json.loads((root / "var/lib/stopmo/inbox/.status/st-3.json").read_text())
    assert kept["station_id"] == "st-3" and "received_at" in kept
    other = subprocess.run(
        argv,
        input=json.dumps({"station_id": "st-4"}),
        capture_output=True,
        text=True,
        env={**os.environ, "SSH_ORIGINAL_COMMAND": "status"},
        check=False,
    )
    assert other.returncode != 0 and "refused" in other.stderr


def test_a_checkout_without_the_collected_keys_keeps_the_stations_access(fleet: Fleet) -> None:
    """Another operator's checkout, without keys/st-N.pub: the processor keeps every line."""
    keys = fleet.root("processor") / "var/lib/stopmo/.ssh/authorized_keys"
    before = keys.read_bytes()
    empty = fleet.base / "no-keys"
    empty.mkdir()
    proc = ansible_playbook(
        fleet.base,
        "site.yml",
        "-e",
        f"@{fleet.extra_vars}",
        "-e",
        f"stopmo_keys_dir={empty}",
        "--limit",
        "processor",
        "--tags",
        "station-keys",
    )
    run = Run.parse(proc)
    assert run.returncode == 0, run.output
    assert run.recap["processor"]["changed"] == 0, run.output
    assert keys.read_bytes() == before
    assert b"--station st-3 " in before


def _split_authorized_key(line: str) -> tuple[str, str, str, str]:
    """Split `options key-type key comment`, where the options hold a quoted command."""
    match = re.fullmatch(
        r'(?P<options>\S*?"[^"]*"\S*) (?P<type>\S+) (?P<key>\S+) (?P<comment>\S+)', line
    )
    assert match is not None, line
    return match["options"], match["type"], match["key"], match["comment"]


# --- what the VPN server got -----------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_vpn_pki_signs_server_and_router_for_their_roles(fleet: Fleet) -> None:
    pki = fleet.root("stopmo-vpn") / "etc/openvpn/server/pki"
    verified = openssl(
        "verify",
        "-CAfile",
        "ca.crt",
        "-crl_check",
        "-CRLfile",
        "crl.pem",
        "issued/stopmo-vpn.crt",
        "issued/stopmo-router.crt",
        cwd=pki,
    )
    assert verified.count(": OK") == 2, verified
    server = openssl(
        "x509",
        "-in",
        "issued/stopmo-vpn.crt",
        "-noout",
        "-subject",
        "-ext",
        "extendedKeyUsage",
        cwd=pki,
    )
    assert "CN = stopmo-vpn" in server and "TLS Web Server Authentication" in server
    router = openssl(
        "x509",
        "-in",
        "issued/stopmo-router.crt",
        "-noout",
        "-subject",
        "-ext",
        "extendedKeyUsage",
        cwd=pki,
    )
    assert "CN = stopmo-router" in router and "TLS Web Client Authentication" in router
    assert mode(pki / "private") == "0o700" and mode(pki / "tls-crypt.key") == "0o600"
    # The router's files, collected for the operator, belong together.
    client = fleet.build / "router/etc/openvpn/stopmo"
    assert sorted(p.name for p in client.iterdir()) == [
        "ca.crt",
        "stopmo-router.crt",
        "stopmo-router.key",
        "tls-crypt.key",
    ]
    cert_key = openssl("x509", "-in", "stopmo-router.crt", "-noout", "-pubkey", cwd=client)
    assert openssl("pkey", "-in", "stopmo-router.key", "-pubout", cwd=client) == cert_key


def test_vpn_server_config_rules_and_forwarding(fleet: Fleet) -> None:
    root = fleet.root("stopmo-vpn")
    conf = (root / "etc/openvpn/server/stopmo.conf").read_text()
    assert "ca /etc/openvpn/server/pki/ca.crt" in conf
    assert (root / "etc/openvpn/server/ccd/stopmo-router").read_text().count("iroute 10.0.0.0")
    for tool, rules in (("iptables-restore", "rules.v4"), ("ip6tables-restore", "rules.v6")):
        proc = subprocess.run(
            [tool, "--test", str(root / "etc/iptables" / rules)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
    assert "--dport 22003" in (root / "etc/iptables/rules.v4").read_text()
    sysctl = (root / "etc/sysctl.d/60-stopmo-forward.conf").read_text()
    assert re.search(r"^net\.ipv4\.ip_forward = 1$", sysctl, re.MULTILINE)


# --- the rolling upgrade ---------------------------------------------------------------------


class HealthyAgents:
    """Stand-ins for the sync agents of healthy stations: each sends a heartbeat every
    0.3 s, stored by the processor's real receiver into the scratch inbox."""

    def __init__(self, inbox: Path, stations: tuple[str, ...]) -> None:
        self.receivers = [Receiver(station, inbox) for station in stations]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for receiver in self.receivers:
                document = {
                    "station_id": receiver.station_id,
                    "software_version": software_version(),
                }
                receiver.take_status(json.dumps(document).encode())
            self.stop.wait(0.3)

    def __enter__(self) -> HealthyAgents:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_rolling_upgrade_stops_at_the_first_unhealthy_station(tmp_path: Path) -> None:
    """st-1 reports after its upgrade, st-2's agent never does: st-3 is never touched."""
    require_binary("ssh-keygen")
    stations = ("st-1", "st-2", "st-3")
    fleet = make_fleet(tmp_path, ("processor", *stations))
    # The processor was set up before (site.yml): its host key, inbox, SSH folder, broker.
    processor = fleet.root("processor")
    (processor / "etc/stopmo").mkdir(parents=True)
    broker = ansible_playbook(
        tmp_path,
        "site.yml",
        "-e",
        f"@{fleet.extra_vars}",
        "--limit",
        "processor",
        "--tags",
        "broker",
    )
    assert broker.returncode == 0, broker.stdout + broker.stderr
    subprocess.run(["ssh-keygen", "-A", "-f", str(processor)], check=True, capture_output=True)
    inbox = processor / "var/lib/stopmo/inbox"
    inbox.mkdir(parents=True)
    (processor / "var/lib/stopmo/.ssh").mkdir(mode=0o700)
    # st-2 last reported an hour ago, with the right version: only freshness is missing.
    Receiver("st-2", inbox).take_status(
        json.dumps({"station_id": "st-2", "software_version": software_version()}).encode()
    )
    stale = inbox / ".status/st-2.json"
    document = json.loads(stale.read_text())
    document["received_at"] = (datetime.now(UTC) - timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    stale.write_text(json.dumps(document))
    with HealthyAgents(inbox, ("st-1", "st-3")):
        run = Run.parse(
            ansible_playbook(
                tmp_path,
                "upgrade-stations.yml",
                "-e",
                f"@{fleet.extra_vars}",
                "-e",
                "station_health_retries=3",
                "-e",
                "station_health_delay=1",
                "--limit",
                ",".join(stations),
            )
        )

    assert run.returncode != 0, run.output
    assert run.recap["st-1"]["failed"] == 0 and run.recap["st-1"]["changed"] > 0, run.output
    assert re.search(r"st-1 reported at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", run.output)
    assert run.recap["st-2"]["failed"] == 1, run.output
    assert "st-2 is not healthy after the upgrade" in run.output
    # st-3 was never touched: no work in the recap, nothing in its root.
    assert run.recap.get("st-3", {"ok": 0})["ok"] == 0, run.output
    assert not (fleet.root("st-3") / "etc/stopmo").exists()
    assert (fleet.root("st-1") / "etc/stopmo/station.toml").is_file()
    assert (fleet.root("st-2") / "etc/stopmo/station.toml").is_file()
