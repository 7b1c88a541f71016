"""The units in systemd/, checked by systemd's own tools and held to the fleet's policy.

- `systemd-analyze verify` runs on every unit exactly as committed, copied byte for byte
  into etc/systemd/system/ of a scratch root (where Ansible deploys it on a box). The root
  holds this host's own unit files (targets, getty@, redis-server) and a stub executable
  at every absolute path the units run, because verify checks that ExecStart's binary
  exists in the root it looks at. Any output fails the test (verify exits 0 on warnings).
- `systemd-analyze security --offline=true`: each unit's overall exposure stays under its
  ceiling (2.5, and a documented exception for the root X server).
- The policy in the unit text, cross-checked with the programs: Type=notify and WatchdogSec
  exactly where the code sends READY=1 and WATCHDOG=1, RestartPreventExitStatus for the
  exit statuses the programs use for bad settings, user stopmo, the sandbox.
- The display plumbing the kiosk relies on (a private /tmp with the X socket directory
  bound in read-only, no network namespace of its own), re-enacted with unshare and Xvfb.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.services import XvfbDisplay, require_binary, skip_or_fail

pytestmark = pytest.mark.slow  # systemd-analyze on every unit

REPO = Path(__file__).resolve().parents[2]
UNITS_DIR = REPO / "systemd"
VENV_BIN = "/opt/stopmo/venv/bin/"
SRC = "/opt/stopmo/src"
HOST_UNIT_DIRS = (Path("/etc/systemd/system"), Path("/usr/lib/systemd/system"))
# Units a unit may name although this host (and a Lite image) has none: a display
# manager's alias exists only on a desktop image, where stopmo-x.service pushes it aside.
OPTIONAL_UNITS = {"display-manager.service"}
# Units that come with a Debian package: the package must be installed for the check.
PACKAGED_UNITS = {"redis-server.service": "redis-server", "mosquitto.service": "mosquitto"}
DEFAULT_CEILING = 2.5


@dataclass(frozen=True)
class Spec:
    """What a unit runs and what its program does; docs/systemd.md explains each value."""

    sources: tuple[str, ...]  # the program's code that would send READY=1 / WATCHDOG=1
    ready: bool  # sends READY=1: Type=notify
    pings: bool  # sends WATCHDOG=1: WatchdogSec=
    prevent: frozenset[int]  # RestartPreventExitStatus=
    network: bool  # needs IP sockets
    root: bool = False
    ceiling: float = DEFAULT_CEILING


SPECS: dict[str, Spec] = {
    "stopmo-processor.service": Spec(
        ("processor/daemon.py",), ready=True, pings=True, prevent=frozenset({3}), network=True
    ),
    "stopmo-screen.service": Spec(
        # `screen mpv` checks the settings (exit 3), then execs mpv, which never notifies.
        ("processor/cli.py", "processor/screen/mpv.py"),
        ready=False,
        pings=False,
        prevent=frozenset({3}),
        network=False,
    ),
    "stopmo-station.service": Spec(
        ("stations/kiosk.py", "stations/factory.py"),
        ready=True,
        pings=True,
        prevent=frozenset({3}),
        network=True,  # telemetry and the console's commands, over the festival LAN
    ),
    "stopmo-sync.service": Spec(
        # Not 4 (another agent holds the lock): that agent is transient, see the unit.
        ("stations/sync.py",),
        ready=True,
        pings=True,
        prevent=frozenset({3}),
        network=True,
    ),
    "stopmo-website.service": Spec(
        # gunicorn's arbiter sends READY=1; it halts with 3 (a worker cannot boot) or
        # 4 (the app cannot be imported).
        ("website/app.py", "gunicorn:arbiter"),
        ready=True,
        pings=False,
        prevent=frozenset({3, 4}),
        network=True,
    ),
    "stopmo-ops.service": Spec(
        # The console sends READY=1 once its pages listen, and no watchdog pings.
        ("ops/cli.py", "ops/console.py", "ops/subscriber.py", "ops/engine.py"),
        ready=True,
        pings=False,
        prevent=frozenset({3}),
        network=True,
    ),
    "stopmo-x.service": Spec(
        # Xorg as root, as a display manager starts it: docs/systemd.md, "stopmo-x".
        (),
        ready=False,
        pings=False,
        prevent=frozenset(),
        network=False,
        root=True,
        ceiling=3.5,
    ),
}
PROGRAM_UNITS = [name for name, spec in SPECS.items() if not spec.root]
# How often the code pings when the watchdog is on (seconds); None: at half of
# WatchdogSec (it reads WATCHDOG_USEC). CODE_PINGS pins each figure to the code.
PING_EVERY: dict[str, float | None] = {
    "stopmo-processor.service": 0.5,
    "stopmo-station.service": 2.0,
    "stopmo-sync.service": None,
}
CODE_PINGS = {
    "stopmo-processor.service": ("processor/daemon.py", "self._wake.wait(min(0.5,"),
    "stopmo-station.service": ("stations/kiosk.py", "now - self._last_notify > 2:"),
    "stopmo-sync.service": ("stations/sync.py", "int(usec) / 2e6"),
}
# Sandboxing every unit has, the root X server included.
EVERYWHERE = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateMounts": "yes",
    "ProtectHostname": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectProc": "invisible",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallErrorNumber": "EPERM",
    "UMask": "0027",
}
# And every unit that runs as stopmo.
AS_STOPMO = {
    "User": "stopmo",
    "Group": "stopmo",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectClock": "yes",
    "RemoveIPC": "yes",
}
DEPENDENCY_KEYS = (
    "Requires", "Requisite", "Wants", "BindsTo", "PartOf", "Upholds", "Conflicts",
    "After", "Before", "OnFailure",
)  # fmt: skip


# --- reading unit files -----------------------------------------------------------------


Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Read a unit file as systemd does: sections of keys, each key with all its values."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    logical = ""
    for raw in text.splitlines():
        if not logical and raw.lstrip().startswith(("#", ";")):
            continue
        if raw.endswith("\\"):
            logical += raw[:-1] + " "
            continue
        line, logical = (logical + raw).strip(), ""
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"assignment outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {line}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str | None:
    """The value of a key that is set once (None when unset)."""
    values = unit.get(section, {}).get(key, [])
    assert len(values) <= 1, f"[{section}] {key}= is set {len(values)} times"
    return values[0] if values else None


def words(unit: Unit, section: str, key: str) -> list[str]:
    """Every space-separated word of every value of a key (lists such as Wants=)."""
    return [word for value in unit.get(section, {}).get(key, []) for word in value.split()]


def environment(unit: Unit) -> dict[str, str]:
    """The Environment= assignments of a unit."""
    pairs = [
        pair for value in unit["Service"].get("Environment", []) for pair in shlex.split(value)
    ]
    return dict(pair.split("=", 1) for pair in pairs)


def commands(unit: Unit) -> list[list[str]]:
    """Every Exec*= command line, split, without systemd's prefixes (-, @, :, +, !)."""
    lines = [
        value
        for key, values in unit.get("Service", {}).items()
        if key.startswith("Exec")
        for value in values
    ]
    return [shlex.split(line.lstrip("-@:+!")) for line in lines]


def load(name: str) -> Unit:
    return parse_unit((UNITS_DIR / name).read_text())


def run(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


# --- the scratch root for systemd-analyze verify ----------------------------------------


def make_root(root: Path) -> Path:
    """A root with this host's unit files, stub executables and stopmo's units as deployed."""
    require_binary("systemd-analyze")
    for name, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        (root / target).mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(target)  # merged /usr, as on Debian 12 and Raspberry Pi OS
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for name in SPECS:
        shutil.copyfile(UNITS_DIR / name, units / name)
        assert (units / name).read_bytes() == (UNITS_DIR / name).read_bytes()
        for argv in commands(load(name)):
            stub = root / argv[0].lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def verify_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("systemd-root"))


def verify(root: Path, name: str) -> subprocess.CompletedProcess[str]:
    # By name, from inside the root: the file verified is the one in etc/systemd/system/.
    return run(["systemd-analyze", "verify", f"--root={root}", name], cwd=root)


# --- the tests --------------------------------------------------------------------------


def test_every_unit_in_systemd_is_checked() -> None:
    shipped = {
        path.name
        for path in UNITS_DIR.iterdir()
        if path.suffix in {".service", ".target", ".socket", ".timer"}
    }
    assert shipped == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_systemd_analyze_verify_is_silent(verify_root: Path, name: str) -> None:
    result = verify(verify_root, name)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_catches_a_broken_unit_and_a_missing_binary(tmp_path: Path) -> None:
    """The harness itself can fail: a bad value, a missing binary, a missing Requires=."""
    root = make_root(tmp_path / "root")
    units = root / "etc/systemd/system"
    text = (UNITS_DIR / "stopmo-sync.service").read_text()
    (units / "broken-restart.service").write_text(text.replace("Restart=always", "Restart=often"))
    (units / "broken-requires.service").write_text(
        text.replace("[Unit]\n", "[Unit]\nRequires=no-such-thing.service\n")
    )
    restart = verify(root, "broken-restart.service")
    assert "Failed to parse service restart specifier" in restart.stderr
    requires = verify(root, "broken-requires.service")
    assert requires.returncode != 0
    assert "no-such-thing.service" in requires.stderr
    (root / "opt/stopmo/venv/bin/stopmo-station").unlink()
    missing = verify(root, "stopmo-sync.service")
    assert missing.returncode != 0
    assert "stopmo-station" in missing.stdout + missing.stderr


def test_units_enable_in_a_scratch_root(tmp_path: Path) -> None:
    """`systemctl --root enable`, as the Ansible role runs it, makes the [Install] links."""
    require_binary("systemctl")
    root = make_root(tmp_path / "root")
    result = run(["systemctl", f"--root={root}", "enable", *sorted(SPECS)])
    assert result.returncode == 0, result.stderr
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert {link.name for link in wants.iterdir()} == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_units_it_names_exist(name: str) -> None:
    unit = load(name)
    for key in DEPENDENCY_KEYS:
        for other in words(unit, "Unit", key):
            if other in SPECS or other in OPTIONAL_UNITS:
                continue
            if other in PACKAGED_UNITS:
                require_binary(PACKAGED_UNITS[other])
            template = re.sub(r"@[^.]+\.", "@.", other)
            found = [d / n for d in HOST_UNIT_DIRS for n in (other, template) if (d / n).exists()]
            assert found, f"{name}: {key}={other} names a unit this host does not have"


def exposure(name: str) -> float:
    result = run(["systemd-analyze", "security", "--offline=true", str(UNITS_DIR / name)])
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_exposure_stays_under_the_ceiling_and_is_documented(name: str) -> None:
    require_binary("systemd-analyze")
    score = exposure(name)
    assert score <= SPECS[name].ceiling, f"{name}: exposure {score}"
    # docs/systemd.md lists each unit's score and ceiling; keep it in step with the units.
    row = f"| `{name}` | {score} | {SPECS[name].ceiling} |"
    assert row in (REPO / "docs/systemd.md").read_text(), f"docs/systemd.md lacks: {row}"


def test_exposure_score_sees_the_sandbox(tmp_path: Path) -> None:
    """The same program without its sandbox scores far worse: the review reads the unit."""
    unit = load("stopmo-processor.service")
    keep = ("Type", "ExecStart", "User", "Group")
    lines = [f"{key}={value}" for key in keep for value in unit["Service"][key]]
    (tmp_path / "bare.service").write_text("[Service]\n" + "\n".join(lines) + "\n")
    result = run(["systemd-analyze", "security", "--offline=true", str(tmp_path / "bare.service")])
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) > exposure("stopmo-processor.service") + 5


@pytest.mark.parametrize("name", sorted(SPECS))
def test_restart_policy(name: str) -> None:
    unit, spec = load(name), SPECS[name]
    # StartLimit*= belong to [Unit]; in [Service] systemd still takes them silently.
    for key in ("StartLimitIntervalSec", "StartLimitBurst"):
        assert one(unit, "Unit", key), f"{key}= missing from [Unit]"
        assert key not in unit["Service"]
    assert one(unit, "Service", "Restart") == "always"
    assert one(unit, "Service", "RestartSec")
    prevent = {int(status) for status in words(unit, "Service", "RestartPreventExitStatus")}
    assert prevent == spec.prevent
    assert words(unit, "Install", "WantedBy") == ["multi-user.target"]


def test_prevented_exit_statuses_are_the_programs_own() -> None:
    from gunicorn.arbiter import Arbiter

    from moviepkg.exitcodes import ExitStatus
    from ops.errors import ExitStatus as OpsExit
    from processor.errors import ExitStatus as ProcessorExit
    from stations.cli import ExitStatus as StationExit

    assert ProcessorExit is ExitStatus and StationExit is ExitStatus  # one table
    assert OpsExit is ExitStatus
    assert int(ExitStatus.CONFIG) == 3
    assert int(ExitStatus.BUSY) == 4  # deliberately restarted, see stopmo-sync.service
    assert (Arbiter.WORKER_BOOT_ERROR, Arbiter.APP_LOAD_ERROR) == (3, 4)


def source_text(source: str) -> str:
    if source.startswith("gunicorn:"):
        import gunicorn

        return (Path(gunicorn.__file__).parent / f"{source.split(':')[1]}.py").read_text()
    return (REPO / source).read_text()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_notify_and_watchdog_exactly_where_the_code_pings(name: str) -> None:
    unit, spec = load(name), SPECS[name]
    code = "".join(source_text(source) for source in spec.sources)
    if spec.sources:
        assert ("READY=1" in code) == spec.ready
        assert ("WATCHDOG=1" in code) == spec.pings
    assert (one(unit, "Service", "Type") == "notify") == spec.ready
    assert (one(unit, "Service", "WatchdogSec") is not None) == spec.pings
    if spec.ready:
        assert one(unit, "Service", "NotifyAccess") == "main"


@pytest.mark.parametrize("name", sorted(PING_EVERY))
def test_watchdog_leaves_room_for_slow_steps(name: str) -> None:
    path, snippet = CODE_PINGS[name]
    assert snippet in (REPO / path).read_text(), f"{path} changed how often it pings"
    watchdog = float(one(load(name), "Service", "WatchdogSec") or 0)
    ping = PING_EVERY[name]
    if ping is None:  # pings at half of WatchdogSec: the other half covers the slowest step
        assert 30 <= watchdog <= 120
    else:
        assert 5 * ping <= watchdog <= 60


@pytest.mark.parametrize("name", sorted(SPECS))
def test_sandbox(name: str) -> None:
    unit, spec = load(name), SPECS[name]
    wanted = {**EVERYWHERE, **({} if spec.root else AS_STOPMO)}
    found = {key: one(unit, "Service", key) for key in wanted}
    assert found == wanted
    if spec.root:
        assert one(unit, "Service", "User") is None  # root, documented in docs/systemd.md
        assert words(unit, "Service", "CapabilityBoundingSet")[0].startswith("~")
    assert "@system-service" in words(unit, "Service", "SystemCallFilter")
    families = set(words(unit, "Service", "RestrictAddressFamilies"))
    assert families and families <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert bool(families & {"AF_INET", "AF_INET6"}) == spec.network
    if not spec.network:
        assert one(unit, "Service", "IPAddressDeny") == "any"
    for path in unit["Service"].get("EnvironmentFile", []):
        assert path.lstrip("-").startswith("/etc/stopmo/")


@pytest.mark.parametrize("name", PROGRAM_UNITS)
def test_programs_run_from_the_venv_with_real_subcommands(name: str) -> None:
    argv = shlex.split(one(load(name), "Service", "ExecStart") or "")
    assert argv[0].startswith(VENV_BIN)
    program = argv[0].removeprefix(VENV_BIN)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    if program == "gunicorn":
        return  # checked with --check-config below
    module = {"stopmo-processor": "processor", "stopmo-station": "stations", "stopmo-ops": "ops"}[
        program
    ]
    assert program in scripts
    result = run([sys.executable, "-m", module, *argv[1:], "--help"], cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_website_unit_serves_the_procfile_app_behind_redis(tmp_path: Path) -> None:
    unit = load("stopmo-website.service")
    for key in ("Wants", "After"):
        assert "redis-server.service" in words(unit, "Unit", key)
    env = environment(unit)
    assert env["GUNICORN_CMD_ARGS"] == "--bind=127.0.0.1:8000"
    assert env["XDG_RUNTIME_DIR"] == "/run/" + (one(unit, "Service", "RuntimeDirectory") or "")
    assert unit["Service"]["EnvironmentFile"] == ["/etc/stopmo/website.env"]  # required
    assert one(unit, "Service", "WorkingDirectory") == SRC
    argv = shlex.split(one(unit, "Service", "ExecStart") or "")
    procfile = shlex.split((REPO / "Procfile").read_text().split(":", 1)[1])
    assert argv[1:] == [procfile[1], f"{SRC}/{procfile[2]}", *procfile[3:]]
    # The same command line, with the unit's environment, loads the app for real.
    local = [a.replace(f"{SRC}/", f"{REPO}/") for a in argv[1:]]
    result = run(
        [str(Path(sys.executable).parent / "gunicorn"), "--check-config", *local],
        cwd=REPO,
        env={**os.environ, **env, "XDG_RUNTIME_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_console_unit_keeps_its_database_in_its_state_directory() -> None:
    from ops.config import DEFAULT_CONFIG, Settings

    unit = load("stopmo-ops.service")
    argv = shlex.split(one(unit, "Service", "ExecStart") or "")
    assert argv[1:] == ["--config", str(DEFAULT_CONFIG), "serve"]
    # StateDirectory= makes /var/lib/stopmo/ops writable (and stopmo's) under ProtectSystem.
    states = words(unit, "Service", "StateDirectory")
    assert states == ["stopmo", "stopmo/ops"]  # the parent too: never left to root
    database = Settings().db_path
    assert database.parent == Path("/var/lib") / states[-1]
    assert one(unit, "Service", "WorkingDirectory") == str(database.parent)
    for key in ("Wants", "After"):
        assert "mosquitto.service" in words(unit, "Unit", key)  # the broker on this box


@pytest.mark.parametrize(
    "settings", ["", '[web]\nbind = "0.0.0.0"\n', '[mqtt]\npassword_file = "/nonexistent"\n']
)
def test_console_exits_3_on_bad_settings(tmp_path: Path, settings: str) -> None:
    """What RestartPreventExitStatus=3 relies on: a missing file, the WAN, a missing password."""
    config = tmp_path / "ops.toml"
    if settings:
        config.write_text(settings)
    result = run([sys.executable, "-m", "ops", "--config", str(config), "check"], cwd=REPO)
    assert result.returncode == 3, result.stdout + result.stderr


def test_kiosk_reaches_its_x_server() -> None:
    kiosk, x = load("stopmo-station.service"), load("stopmo-x.service")
    assert "stopmo-x.service" in words(kiosk, "Unit", "Requires")
    assert "stopmo-x.service" in words(kiosk, "Unit", "After")
    display = environment(kiosk)["DISPLAY"]
    x_argv = shlex.split(one(x, "Service", "ExecStart") or "")
    assert x_argv[1] == display
    assert "-nolisten" in x_argv and x_argv[x_argv.index("-nolisten") + 1] == "tcp"
    # PrivateTmp hides the host's /tmp: both units bind the socket directory back in.
    assert one(x, "Service", "BindPaths") == "/tmp/.X11-unix"
    assert one(kiosk, "Service", "BindReadOnlyPaths") == "/tmp/.X11-unix"
    socket = f"/tmp/.X11-unix/X{display.lstrip(':')}"
    assert any(socket in " ".join(argv) for argv in commands(x))  # ExecStartPost waits for it


def test_kiosk_hardware() -> None:
    kiosk = load("stopmo-station.service")
    assert one(kiosk, "Service", "DevicePolicy") == "closed"
    allowed = {value.split()[0] for value in kiosk["Service"]["DeviceAllow"]}
    assert allowed == {"char-video4linux", "char-media", "char-dma_heap", "char-gpiochip"}
    assert set(words(kiosk, "Service", "SupplementaryGroups")) == {"video", "gpio"}
    runtime = one(kiosk, "Service", "RuntimeDirectory")
    assert environment(kiosk)["LG_WD"] == f"/run/{runtime}"  # lgpio's pipes
    assert one(kiosk, "Service", "PrivateNetwork") is None  # it reports to the broker
    screen = load("stopmo-screen.service")
    assert "char-drm" in {value.split()[0] for value in screen["Service"]["DeviceAllow"]}
    assert set(words(screen, "Service", "SupplementaryGroups")) == {"video", "render"}


@pytest.mark.parametrize("name", ["stopmo-sync.service", "stopmo-station.service"])
def test_station_programs_only_talk_to_the_festival_lan(name: str) -> None:
    network = yaml.safe_load((REPO / "ansible/inventory/group_vars/all/network.yml").read_text())
    unit = load(name)
    assert one(unit, "Service", "IPAddressDeny") == "any"
    assert set(words(unit, "Service", "IPAddressAllow")) == {"localhost", network["lan_cidr"]}


# --- the display plumbing, re-enacted ---------------------------------------------------


def in_kiosk_namespace(display: str, bind_x11: bool) -> subprocess.CompletedProcess[str]:
    """Run xdpyinfo as stopmo-station.service would, in the strictest case: no abstract X
    socket (an own network namespace), a private /tmp (+ the read-only bind)."""
    script = "mount -t tmpfs stopmo-test /mnt && mkdir /mnt/x11"
    script += " && mount --bind /tmp/.X11-unix /mnt/x11 && mount -t tmpfs stopmo-test /tmp"
    if bind_x11:
        script += " && mkdir /tmp/.X11-unix && mount --bind /mnt/x11 /tmp/.X11-unix"
        script += " && mount -o remount,bind,ro /tmp/.X11-unix"
        script += " && ! touch /tmp/.X11-unix/written 2>/dev/null"
    script += f" && DISPLAY={display} xdpyinfo"
    argv = ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script]
    return run(argv)


def test_kiosk_sandbox_reaches_x_through_the_read_only_bind(xvfb_display: XvfbDisplay) -> None:
    if os.geteuid() != 0:
        skip_or_fail("the namespace test needs root (unshare --mount)")
    require_binary("unshare")
    require_binary("xdpyinfo")
    reached = in_kiosk_namespace(xvfb_display.display, bind_x11=True)
    assert reached.returncode == 0, reached.stderr
    assert "X.Org" in reached.stdout
    # Without the bind the private /tmp hides the socket (and the own network namespace
    # the abstract one): the kiosk would find no display.
    hidden = in_kiosk_namespace(xvfb_display.display, bind_x11=False)
    assert hidden.returncode != 0
    assert "unable to open display" in hidden.stderr
