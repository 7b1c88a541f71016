"""Start the kiosk again in the same process: a command from the console asked for it.

The kiosk has closed its camera and buttons and its reporter has said `offline`; then
`reexec` replaces the program with a fresh one (os.execve: the same pid, so systemd's
`Type=notify` / `NotifyAccess=main` unit keeps following it). systemd's watchdog goes on
counting meanwhile, and a fresh start rebuilds the thumbnails of a long movie before
its first ping, so the watchdog is first stretched to the unit's start timeout; once
the new kiosk is ready (READY=1 again), `after_ready` sets it back.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from moviepkg.notify import sd_notify

log = logging.getLogger("stopmo.station.ui")
RESTARTS = "STOPMO_KIOSK_RESTARTS"  # how often this process restarted the kiosk
START_SECONDS = 120  # stopmo-station.service's TimeoutStartSec: the start may take as long


def kiosk_argv(config: Path | None, debug: bool,
               python: str = sys.executable) -> list[str]:
    """The command line that starts the kiosk again, with the same settings (-P: the
    working directory, the station's state, is not searched for modules)."""
    argv = [python, "-P", "-m", "stations"]
    if config is not None:
        argv += ["--config", str(Path(config).absolute())]
    if debug:
        argv.append("--debug")
    return argv


def restarts(environ: Mapping[str, str] = os.environ) -> int:
    """How often the kiosk was restarted in this process (0 for a fresh start)."""
    value = environ.get(RESTARTS, "")
    return int(value) if value.isdigit() else 0


def reexec(argv: Sequence[str], execve: Callable[..., object] = os.execve) -> NoReturn:
    """Replace this process with argv (its devices and reporter already closed)."""
    sd_notify(f"WATCHDOG_USEC={START_SECONDS * 1_000_000}\nSTATUS=restarting the kiosk")
    environment = {**os.environ, RESTARTS: str(restarts() + 1)}
    log.info("starting the kiosk again", extra={"argv": list(argv),
                                                 "restarts": restarts(environment)})
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    execve(argv[0], list(argv), environment)
    raise SystemExit("the kiosk could not be started again")  # execve returns only in tests


def after_ready(environ: Mapping[str, str] = os.environ) -> None:
    """After a restart: systemd's watchdog back to the unit's WatchdogSec."""
    if not restarts(environ):
        return
    usec = environ.get("WATCHDOG_USEC", "")
    if usec.isdigit():
        sd_notify(f"WATCHDOG_USEC={usec}\nSTATUS=")
    log.info("the kiosk is back", extra={"restarts": restarts(environ)})
