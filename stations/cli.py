"""`python -m stations [sync [--once]]` (also `stopmo-station`): the station's programs.

With no command it runs the kiosk full-screen.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from moviepkg.commands import CommandRunner
from moviepkg.environment import Environment
from moviepkg.exitcodes import ExitStatus
from moviepkg.logs import setup_logging
from moviepkg.reporting import NullReporter
from moviepkg.settings import add_program_arguments

from .commands import answered_file
from .config import (
    DEFAULT_CONFIG,
    ConfigError,
    StationSettings,
    delivery_problems,
    load_settings,
)
from .sync import Agent, AgentBusy, agent_lock
from .telemetry import station_reporter, sync_reporting

log = logging.getLogger("stopmo.station")
DEMO_REPORT_SECONDS = 5.0  # the scripted station waits this long for the broker, at most
DEMO_WAIT_SECONDS = 60.0  # and this long for --after


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stopmo-station", description="stopmo camera station")
    add_program_arguments(parser, DEFAULT_CONFIG)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")  # none: the kiosk
    sync = sub.add_parser("sync", help="deliver finished movies to the processor "
                          "(exit 0 all sent, 1 some stay, 3 bad settings, 4 already running)")
    sync.add_argument("--once", action="store_true", help="one round (with retries), then "
                      "exit; without it, run until stopped (systemd)")
    # Also after the command (`sync --once --config F`); SUPPRESS keeps the value given first.
    sync.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                      help="TOML settings file (default /etc/stopmo/station.toml if present)")
    sync.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                      help="log more, show tracebacks")
    demo = sub.add_parser("demo", help="a scripted station without a screen: shoot movies "
                          "with the fake camera through the kiosk's own flow (prints one JSON "
                          "line per movie)")
    demo.add_argument("--frames", type=int, default=30, help="frames per movie (default 30)")
    demo.add_argument("--movies", type=int, default=1, help="how many movies (default 1)")
    demo.add_argument("--after", metavar="HOST:PORT", help="first wait (at most 60 s) until "
                      "this TCP port answers (the local festival waits for its console, so "
                      "that the console hears the first movie's story)")
    demo.add_argument("--nopublish", action="store_true", help="finish with NOPUBLISH "
                      "(the big screen only, never the website)")
    then = demo.add_mutually_exclusive_group()
    then.add_argument("--stay", action="store_true", help="afterwards, stay up until stopped")
    then.add_argument("--then-kiosk", action="store_true", help="afterwards, run the kiosk")
    demo.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                      help="TOML settings file (default /etc/stopmo/station.toml if present)")
    return parser


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """Run the command line with env's streams and variables; return the exit status."""
    env = env or Environment.of_process()
    args = _parser().parse_args(argv)
    setup_logging("station", logging.DEBUG if args.debug else logging.INFO, stream=env.stderr)
    try:
        settings = load_settings(args.config, environ=env.env)
    except ConfigError as exc:
        return env.refuse_settings(exc.problems)
    if args.command == "sync":
        return _sync(settings, args.once, args.debug, env)
    if args.command == "demo":
        return _demo(settings, args, env)
    return _kiosk(settings, args, env)


def _demo(settings: StationSettings, args: argparse.Namespace, env: Environment) -> int:
    if not settings.station_id:
        env.complain("station.id: required (e.g. id = \"st-3\"), or STOPMO_STATION_ID")
        return ExitStatus.CONFIG
    if args.frames < 1 or args.movies < 0:
        env.complain("demo: --frames must be at least 1 and --movies at least 0")
        return ExitStatus.USAGE
    from .demo import shoot, wait_for_port, wait_for_stop

    if args.after and not wait_for_port(args.after, DEMO_WAIT_SECONDS):
        log.warning("%s did not answer within %.0f s; shooting anyway", args.after,
                    DEMO_WAIT_SECONDS)

    # The scripted station reports its movies' start and finish as the kiosk does (the
    # console tells each movie's story from them), then leaves the kiosk's place free.
    reporter = station_reporter(settings, "kiosk") if args.movies else NullReporter()
    try:
        for _ in range(args.movies):
            try:
                shot = shoot(settings, args.frames, publish=not args.nopublish,
                             events=reporter.event)
            except Exception as exc:
                if args.debug:
                    raise
                log.error("%s: %s", type(exc).__name__, exc)
                return ExitStatus.FAILURE
            env.say(shot.as_json())
            log.info("scripted movie finished, code %s", shot.code,
                     extra={"package_id": shot.package_id})
    finally:
        reporter.wait_connected(DEMO_REPORT_SECONDS)
        reporter.stop()
    if args.then_kiosk:
        return _kiosk(settings, args, env)
    if args.stay:
        wait_for_stop()
    return ExitStatus.OK


def _kiosk(settings: StationSettings, args: argparse.Namespace, env: Environment) -> int:
    """Run the kiosk; start it again in this process when a command asks for a restart."""
    if not settings.station_id:
        env.complain("station.id: required (e.g. id = \"st-3\"), or STOPMO_STATION_ID")
        return ExitStatus.CONFIG
    from .camera import CameraError
    from .kiosk import run_kiosk
    from .restart import kiosk_argv, reexec

    debug = bool(args.debug)
    try:
        if run_kiosk(settings):  # a command asked for a restart: the kiosk alone, again
            reexec(kiosk_argv(args.config, debug))
    except CameraError as exc:
        log.error("camera: %s", exc)
        return ExitStatus.FAILURE
    except Exception as exc:  # e.g. no display: say it in one line
        if debug:
            raise
        log.error("%s: %s", type(exc).__name__, exc)
        return ExitStatus.FAILURE
    return ExitStatus.OK


def _sync(settings: StationSettings, once: bool, debug: bool, env: Environment) -> int:
    problems = delivery_problems(settings)
    problems += [f"{tool}: not installed (apt-get install {package})"
                 for tool, package in (("rsync", "rsync"), ("ssh", "openssh-client"))
                 if shutil.which(tool) is None]
    if problems:
        for problem in problems:
            env.complain(problem)
        return ExitStatus.CONFIG
    agent = Agent(settings)
    runner = CommandRunner({"deliver-now": agent.deliver_now},
                           answered_file(settings.paths.outbox, "sync"))

    def stop(signum: int, frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for folder in (settings.paths.outbox, settings.paths.sent):
            folder.mkdir(parents=True, exist_ok=True)
        with agent_lock(settings.paths.outbox), \
                sync_reporting(settings, agent.telemetry_fields,
                               commands=runner.handle) as reporter:
            agent.reporter = reporter
            if once:
                return ExitStatus.OK if agent.run_once() else ExitStatus.FAILURE
            agent.run_forever()
            return ExitStatus.OK
    except AgentBusy as exc:
        env.complain(f"sync: {exc}")
        return ExitStatus.BUSY
    except Exception as exc:
        if debug:
            raise
        log.error("%s: %s", type(exc).__name__, exc)
        return ExitStatus.FAILURE
