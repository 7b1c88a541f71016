"""`python -m processor process|run|status|retry|reindex`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from moviepkg.logs import setup_logging

from .config import Settings, load_settings
from .encode import Progress
from .errors import ConfigError, ExitStatus
from .index import rebuild_index
from .pipeline import Outcome, Pipeline
from .screen import FakeScreen, NullScreen, Screen
from .state import FINAL
from .store import StoreError, open_store

log = logging.getLogger("stopmo.processor")

_EXIT = {Outcome.PUBLISHED: ExitStatus.OK, Outcome.SHOWN: ExitStatus.OK,
         Outcome.DUPLICATE: ExitStatus.OK, Outcome.QUARANTINED: ExitStatus.INVALID,
         Outcome.INCOMPLETE: ExitStatus.INVALID, Outcome.RETRY: ExitStatus.FAILURE,
         Outcome.FAILED: ExitStatus.FAILURE}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="processor", description="stopmo processing unit")
    parser.add_argument("--config", type=Path, help="TOML settings file "
                        "(default /etc/stopmo/processor.toml if present)")
    parser.add_argument("--debug", action="store_true", help="log more, show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    process = sub.add_parser("process", help="process one package now (exit 0 published, "
                             "2 invalid, 3 bad settings, 1 other failure)")
    process.add_argument("package", type=Path)
    process.add_argument("--keep", action="store_true",
                         help="copy the package into the work dir instead of moving it")
    sub.add_parser("run", help="the daemon: watch the inbox and process what arrives")
    sub.add_parser("status", help="list packages and where each stands")
    retry = sub.add_parser("retry", help="let a failed package try again")
    retry.add_argument("package_id")
    sub.add_parser("reindex", help="rebuild movies/index.json from the published records")
    return parser


def make_screen(settings: Settings) -> Screen:
    """Build the screen the settings ask for."""
    if settings.screen == "fake":
        assert settings.screen_log is not None
        return FakeScreen(settings.screen_log)
    return NullScreen()


def _terminal_bar(package_id: str) -> Progress:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(1, total)
        sys.stderr.write(f"\r{package_id[:32]} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{total} frames")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _log_quarters(package_id: str) -> Progress:
    reported = [-1]

    def show(done: int, total: int) -> None:
        quarter = 4 * done // max(1, total)
        if quarter > reported[0]:
            reported[0] = quarter
            log.info("encoding: %d of %d frames", done, total,
                     extra={"package_id": package_id, "percent": 25 * quarter})
    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    setup_logging("processor", logging.DEBUG if args.debug else logging.INFO)
    if not args.debug:
        for chatty in ("botocore", "boto3", "urllib3", "s3transfer", "watchdog"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        settings = load_settings(args.config)
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings.store_url)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return ExitStatus.CONFIG
    except (ValueError, OSError) as exc:
        print(f"settings: {exc}", file=sys.stderr)
        return ExitStatus.CONFIG
    on_tty = sys.stderr.isatty()
    pipeline = Pipeline(settings, store, make_screen(settings),
                        progress=_terminal_bar if on_tty and args.command == "process"
                        else _log_quarters)
    try:
        return _run(args, pipeline)
    except StoreError as exc:
        log.error("store: %s", exc, exc_info=args.debug)
        return ExitStatus.FAILURE
    except Exception as exc:
        if args.debug:
            raise
        log.error("%s: %s", type(exc).__name__, exc)
        return ExitStatus.FAILURE


def _process(package: Path, keep: bool, pipeline: Pipeline) -> Outcome:
    pipeline.clean_up()
    earlier = pipeline.states.load(package.name)
    if not package.exists() and earlier is not None and earlier.step not in FINAL:
        # Taken in by an earlier run that failed: the package waits in the work dir.
        pipeline.retry(earlier.package_id)
        return pipeline.advance(earlier.package_id)
    outcome, state = pipeline.receive(package.absolute(), keep=keep)
    if state is not None and state.step not in FINAL and outcome in (None, Outcome.DUPLICATE):
        # Just taken in, or taken by a run that was killed before it finished.
        return pipeline.advance(state.package_id)
    assert outcome is not None
    return outcome


def _run(args: argparse.Namespace, pipeline: Pipeline) -> int:
    if args.command == "process":
        outcome = _process(args.package, args.keep, pipeline)
        print(outcome.value)
        return _EXIT[outcome]
    if args.command == "run":
        from .daemon import Daemon

        daemon = Daemon(pipeline)

        def stop(signum: int, frame: FrameType | None) -> None:
            daemon.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        daemon.run()
        return ExitStatus.OK
    if args.command == "status":
        for state in pipeline.states.all():
            error = f"  {state.last_error}" if state.last_error else ""
            print(f"{state.package_id}  {state.status}  attempts={state.attempts}{error}")
        return ExitStatus.OK
    if args.command == "retry":
        pipeline.retry(args.package_id)
        outcome = pipeline.advance(args.package_id)
        print(outcome.value)
        return _EXIT[outcome]
    index = rebuild_index(pipeline.store, datetime.now(UTC), lock_path=pipeline.index_lock)
    print(f"index: {len(index.movies)} public movies")
    return ExitStatus.OK
