"""`python -m processor process|run|status|retry|reindex|unpublish|screen|receive`."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING
from zoneinfo import ZoneInfo

from moviepkg.environment import Environment
from moviepkg.ids import is_package_id
from moviepkg.locks import try_lock
from moviepkg.logs import package_context, setup_logging
from moviepkg.settings import add_program_arguments

from .config import DEFAULT_CONFIG, Settings, load_settings
from .encode import Progress
from .errors import ConfigError, DaemonRunning, ExitStatus
from .fonts import FontsMissing, default_fonts
from .pipeline import Outcome, Pipeline
from .publishing import no_events
from .receive_cli import add_arguments as add_receive_arguments
from .screen import FakeScreen, NullScreen, Screen
from .state import FINAL, TakedownList
from .storage import open_store
from .store import StoreError

if TYPE_CHECKING:  # each command imports only what it needs: `process` starts sooner
    from .telemetry import ProcessorTelemetry

log = logging.getLogger("stopmo.processor")

_EXIT = {Outcome.PUBLISHED: ExitStatus.OK, Outcome.SHOWN: ExitStatus.OK,
         Outcome.DUPLICATE: ExitStatus.OK, Outcome.QUARANTINED: ExitStatus.INVALID,
         Outcome.INCOMPLETE: ExitStatus.INVALID, Outcome.RETRY: ExitStatus.FAILURE,
         Outcome.FAILED: ExitStatus.FAILURE, Outcome.WAITING: ExitStatus.FAILURE}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="processor", description="stopmo processing unit")
    add_program_arguments(parser, DEFAULT_CONFIG)
    sub = parser.add_subparsers(dest="command", required=True)
    process = sub.add_parser("process", help="process one package now (exit 0 published, "
                             "5 invalid, 3 bad settings, 1 other failure; docs/commands.md)")
    process.add_argument("package", type=Path)
    process.add_argument("--keep", action="store_true",
                         help="copy the package into the work dir instead of moving it")
    sub.add_parser("run", help="the daemon: watch the inbox and process what arrives")
    status = sub.add_parser("status", help="list packages and where each stands, and the "
                            "publish queue")
    status.add_argument("--json", action="store_true", help="counts and the publish queue "
                        "as JSON")
    retry = sub.add_parser("retry", help="let a failed package try again")
    retry.add_argument("package_id")
    sub.add_parser("reindex", help="rebuild this hall's indexes (movies/index/<hall>/) "
                   "from its published records")
    unpublish = sub.add_parser("unpublish", help="take a movie down at a family's request: "
                               "off the website, the store and (unless kept) the big screen; "
                               "one not here yet goes on the take-down list (exit 0 done, "
                               "5 neither a code nor an id, or a code two movies share)")
    unpublish.add_argument("movie", metavar="CODE_OR_ID", help="the movie's code (as the "
                           "station showed it) or its package id")
    unpublish.add_argument("--keep-on-screen", action="store_true",
                           help="keep it in the big screen's loop (the hall only)")
    unpublish.add_argument("--by", help="who asks (default: your user name)")
    screen = sub.add_parser("screen", help="the big screen: ask the running daemon, or start mpv")
    screen_sub = screen.add_subparsers(dest="screen_command", required=True)
    screen_sub.add_parser("status", help="what plays, the loop, the connection to mpv")
    screen_sub.add_parser("next", help="skip to the next movie")
    screen_sub.add_parser("reload", help="rebuild the loop from the movies on disk")
    play = screen_sub.add_parser("play", help="play one movie now")
    play.add_argument("package_id")
    mpv = screen_sub.add_parser("mpv", help="run mpv for the TV with stopmo's command line")
    mpv.add_argument("--window", action="store_true", help="a window instead of fullscreen")
    mpv.add_argument("--vo", help="mpv video output (e.g. null for no display)")
    mpv.add_argument("--geometry", help="with --window: its size and place, as mpv's "
                     "--geometry (e.g. 50%%x50%%-0-0: half the screen, bottom right)")
    receive = sub.add_parser("receive", help="the forced command of a station's SSH key: "
                             "take one delivery (docs/delivery.md)")
    add_receive_arguments(receive)
    return parser


def make_screen(settings: Settings) -> Screen:
    """Build the screen the settings ask for."""
    if settings.screen == "fake":
        assert settings.screen_log is not None
        return FakeScreen(settings.screen_log)
    if settings.screen == "mpv":
        from .screen.mpv import MpvScreen, save_idle_card

        idle = save_idle_card(settings.work_dir / "idle-card.png", settings.festival_name,
                              settings.size)
        return MpvScreen(settings.mpv_socket_path, settings.work_dir / "movies",
                         settings.screen_recent, idle_card=idle)
    return NullScreen()


def _terminal_bar(stream: IO[str]) -> Callable[[str], Progress]:
    def bar(package_id: str) -> Progress:
        def show(done: int, total: int) -> None:
            width = 30
            filled = width * done // max(1, total)
            stream.write(f"\r{package_id[:32]} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{total} frames")
            if done >= total:
                stream.write("\n")
            stream.flush()
        return show
    return bar


def _log_quarters(package_id: str) -> Progress:
    reported = [-1]

    def show(done: int, total: int) -> None:
        quarter = 4 * done // max(1, total)
        if quarter > reported[0]:
            reported[0] = quarter
            log.info("encoding: %d of %d frames", done, total,
                     extra={"package_id": package_id, "percent": 25 * quarter})
    return show


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """Run the command line with env's streams and variables; return the exit status."""
    status = _main(argv, env or Environment.of_process())
    if env is None:  # this process's own command line: the process ends next
        # Its final garbage collections would walk every object it ever made (Pillow's,
        # babel's locale data): 10-30 ms of a `process` spent on nothing. Frozen objects
        # are skipped; atexit handlers and file flushing run as always.
        gc.freeze()
    return status


def _main(argv: Sequence[str] | None, env: Environment) -> int:
    args = _parser().parse_args(argv)
    setup_logging("processor", logging.DEBUG if args.debug else logging.INFO, stream=env.stderr)
    if not args.debug:
        for chatty in ("botocore", "boto3", "urllib3", "s3transfer", "watchdog"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    if args.command == "receive":  # run by sshd: everything it needs is on its command line
        from . import receiver

        return receiver.main(args, env)
    try:
        settings = load_settings(args.config, environ=env.env)
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings.store_url)
    except ConfigError as exc:
        return env.refuse_settings(exc.problems)
    except (ValueError, OSError) as exc:
        env.complain(f"settings: {exc}")
        return ExitStatus.CONFIG
    if args.command == "screen":
        return _screen(args, settings, env)
    if args.command in ("process", "run", "retry"):
        try:
            default_fonts()  # a title card needs fonts: say so now, not once per movie
        except FontsMissing as exc:
            env.complain(f"fonts: {exc}")
            return ExitStatus.CONFIG
    on_tty = env.stderr.isatty()
    progress = _terminal_bar(env.stderr) if on_tty and args.command == "process" \
        else _log_quarters
    # Only the daemon reports: one-shot commands come and go (and would take its client ids).
    telemetry = None
    if args.command == "run":
        from .telemetry import ProcessorTelemetry

        telemetry = ProcessorTelemetry(settings)
    pipeline = Pipeline(settings, store, make_screen(settings),
                        progress=telemetry.progress(progress) if telemetry else progress,
                        events=telemetry.event if telemetry else no_events)
    try:
        with package_context(_package_named(args)):  # its id on every line, errors too
            return _run(args, pipeline, env, telemetry)
    except StoreError as exc:
        log.error("store: %s", exc, exc_info=args.debug)
        return ExitStatus.FAILURE
    except DaemonRunning as exc:
        env.complain(f"run: {exc}")
        return ExitStatus.BUSY
    except Exception as exc:
        if args.debug:
            raise
        log.error("%s: %s", type(exc).__name__, exc)
        return ExitStatus.FAILURE


def _package_named(args: argparse.Namespace) -> str | None:
    """The package a command is about, when its command line names one."""
    if args.command == "process":
        return str(args.package.name)
    named = getattr(args, "package_id", None) or getattr(args, "movie", None)
    return named if isinstance(named, str) and is_package_id(named) else None


def _screen(args: argparse.Namespace, settings: Settings, env: Environment) -> int:
    if args.screen_command == "mpv":
        from .screen.mpv import mpv_args

        argv = mpv_args(settings.mpv_socket_path, fullscreen=not args.window, vo=args.vo)
        if args.geometry:
            argv.append(f"--geometry={args.geometry}")
        settings.mpv_socket_path.parent.mkdir(parents=True, exist_ok=True)
        os.execvp(argv[0], argv)
    from .screen.control import request

    try:
        result = request(settings.control_socket, args.screen_command,
                         getattr(args, "package_id", None))
    except (ConnectionError, RuntimeError) as exc:
        env.complain(f"screen {args.screen_command}: {exc}")
        return ExitStatus.FAILURE
    env.say(json.dumps(result, indent=1, ensure_ascii=False) if not isinstance(result, str)
            else result)
    return ExitStatus.OK


def _process(package: Path, keep: bool, pipeline: Pipeline) -> Outcome:
    with try_lock(pipeline.daemon_lock) as alone:
        if alone:  # with a daemon running, its temp files are not leftovers
            pipeline.clean_up()
    earlier = pipeline.states.load(package.name)
    if not package.exists() and earlier is not None:
        if earlier.step in FINAL:  # done (or quarantined) already: nothing to do
            return Outcome.DUPLICATE if earlier.step.value == "done" else Outcome.QUARANTINED
        # Taken in by an earlier run that failed: the package waits in the work dir.
        pipeline.retry(earlier.package_id)
        return pipeline.advance(earlier.package_id)
    outcome, state = pipeline.receive(package.absolute(), keep=keep)
    if state is not None and state.step not in FINAL and outcome in (None, Outcome.DUPLICATE):
        # Just taken in, or taken by a run that was killed before it finished.
        return pipeline.advance(state.package_id)
    assert outcome is not None
    return outcome


def _status(pipeline: Pipeline, as_json: bool, env: Environment) -> int:
    """Print where every package stands, the take-downs waiting for their movie, and the
    publish queue (as JSON with as_json)."""
    from . import report

    tz, now = ZoneInfo(pipeline.settings.timezone), pipeline.clock()
    states = pipeline.states.all()
    takedowns = TakedownList(pipeline.settings.work_dir).entries()
    if as_json:
        env.say(json.dumps(report.status_document(states, now, tz, takedowns), indent=1,
                           ensure_ascii=False))
        return ExitStatus.OK
    for state in states:
        env.say(report.package_line(state, tz))
    for listed in report.pending_takedowns(takedowns, states):
        env.say(report.pending_line(listed, tz))
    env.say(report.summary_line(report.queue_summary(states, now, tz), now))
    return ExitStatus.OK


def operator_name(environ: Mapping[str, str]) -> str:
    """Who runs this command: the user behind sudo, else the login's user name."""
    for name in ("SUDO_USER", "USER", "LOGNAME"):
        if environ.get(name):
            return environ[name]
    return "operator"


def _unpublish(args: argparse.Namespace, pipeline: Pipeline, env: Environment) -> int:
    """Take a movie down from the command line (a movie not here yet goes on the take-down
    list); exit 0 done, 5 not a code nor an id or a shared code, 1 the store failed."""
    from .takedown import AmbiguousCode, NoSuchMovie, reload_through_daemon, take_down

    by = (args.by or operator_name(env.env)).strip()[:64] or "operator"
    try:
        done = take_down(pipeline, args.movie, by, keep_on_screen=args.keep_on_screen,
                         reload_screen=reload_through_daemon(pipeline))
    except (NoSuchMovie, AmbiguousCode) as exc:
        env.complain(f"unpublish: {exc}")
        return ExitStatus.INVALID
    except StoreError as exc:
        env.complain(f"unpublish: the store failed ({exc}); the movie is marked taken down "
                     f"(or, not here yet, on the take-down list) and never published again, "
                     f"but it may still be on the website: run the same command again once "
                     f"the store answers")
        return ExitStatus.FAILURE
    env.say(done.describe(ZoneInfo(pipeline.settings.timezone)))
    return ExitStatus.OK


def _run(args: argparse.Namespace, pipeline: Pipeline, env: Environment,
         telemetry: ProcessorTelemetry | None = None) -> int:
    if args.command == "process":
        outcome = _process(args.package, args.keep, pipeline)
        env.say(outcome.value)
        return _EXIT[outcome]
    if args.command == "run":
        from .daemon import Daemon

        daemon = Daemon(pipeline, telemetry)

        def stop(signum: int, frame: FrameType | None) -> None:
            daemon.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        daemon.run()
        return ExitStatus.OK
    if args.command == "status":
        return _status(pipeline, args.json, env)
    if args.command == "unpublish":
        return _unpublish(args, pipeline, env)
    if args.command == "retry":
        pipeline.retry(args.package_id)
        outcome = pipeline.advance(args.package_id)
        env.say(outcome.value)
        return _EXIT[outcome]
    from .index import rebuild_index, sweep_owner_removals

    now = datetime.now(UTC)
    gone = sweep_owner_removals(pipeline.store, now, pipeline.index_lock, set(),
                                pipeline.settings.unit)
    hall = pipeline.settings.unit
    days = rebuild_index(pipeline.store, now, hall=hall, lock_path=pipeline.index_lock)
    removed = f" ({len(gone)} removed by their families taken out of the store)" if gone else ""
    env.say(f"index of the hall {hall}: {sum(len(day.movies) for day in days)} public movies "
            f"over {len(days)} days{removed}")
    return ExitStatus.OK
