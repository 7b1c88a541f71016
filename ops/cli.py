"""`stopmo-ops serve|passwd|check`: run the console, set a password, check the settings."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from moviepkg.atomic import write_atomic
from moviepkg.environment import Environment
from moviepkg.logs import setup_logging
from moviepkg.notify import sd_notify
from moviepkg.settings import add_program_arguments

from .auth import USER_RE
from .config import DEFAULT_CONFIG, Settings, load_settings
from .errors import ConfigError, ExitStatus

log = logging.getLogger("stopmo.ops")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stopmo-ops", description="stopmo operators' console")
    add_program_arguments(parser, DEFAULT_CONFIG)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="listen to the broker, raise alerts, serve the pages")
    sub.add_parser("check", help="check the settings and say where the console will listen")
    passwd = sub.add_parser("passwd", help="set an operator's password (read from stdin)")
    passwd.add_argument("user")
    passwd.add_argument("--file", type=Path, help="the users file (default: web.users_file)")
    passwd.add_argument("--print", action="store_true",
                        help="print the `user:hash` line instead of writing the file")
    return parser


def set_password(path: Path, user: str, password: str) -> str:
    """Write user's password hash into the users file (atomically); return the line."""
    line = f"{user}:{generate_password_hash(password)}"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [old for old in lines if old.partition(":")[0] != user]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, ("\n".join([*kept, line]) + "\n").encode())
    os.chmod(path, 0o640)
    return line


def _read_password(env: Environment) -> str:
    if env.stdin.isatty():
        first = getpass.getpass("New password: ")
        if first != getpass.getpass("Again: "):
            raise ValueError("the two passwords differ")
        return first
    return env.stdin.readline().decode("utf-8").rstrip("\r\n")


def _passwd(args: argparse.Namespace, settings: Settings, env: Environment) -> int:
    if not USER_RE.fullmatch(args.user):
        env.complain("passwd: a user name is letters, digits and . _ @ - (at most 64)")
        return ExitStatus.USAGE
    try:
        password = _read_password(env)
    except ValueError as exc:
        env.complain(f"passwd: {exc}")
        return ExitStatus.USAGE
    if len(password) < 10:
        env.complain("passwd: use at least 10 characters")
        return ExitStatus.USAGE
    if args.print:
        env.say(f"{args.user}:{generate_password_hash(password)}")
        return ExitStatus.OK
    path = args.file or settings.users_file
    set_password(path, args.user, password)
    env.say(f"passwd: set the password of {args.user} in {path}")
    return ExitStatus.OK


def _serve(settings: Settings) -> int:
    from .app import create_app
    from .console import Console

    console = Console(settings)
    console.start()
    app = create_app({"OPS_CONSOLE": console})
    server = make_server(settings.bind, settings.port, app, threaded=True)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("console listening", extra={"url": f"http://{settings.bind}:{settings.port}/"})
    sd_notify("READY=1")
    try:
        server.serve_forever()
    finally:
        console.stop()
    return ExitStatus.OK


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """Run the command line with env's streams and variables; return the exit status."""
    env = env or Environment.of_process()
    args = _parser().parse_args(argv)
    setup_logging("ops", logging.DEBUG if args.debug else logging.INFO, stream=env.stderr)
    if not args.debug:  # one access line per page refresh (every 3 s per operator) is noise
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        settings = load_settings(args.config, environ=env.env)
    except ConfigError as exc:
        return env.refuse_settings(exc.problems)
    if args.command == "passwd":
        return _passwd(args, settings, env)
    if args.command == "check":
        users = settings.users_file
        env.say(f"ok: broker {settings.mqtt_url} as {settings.mqtt_user}; pages on "
                f"http://{settings.bind}:{settings.port}/; database {settings.db_path}; "
                f"{len(settings.alert_urls)} alert URL(s); opening hours "
                f"{settings.opening_hours}; users file {users}"
                f"{'' if users.exists() else ' (missing: nobody can log in)'}")
        return ExitStatus.OK
    try:
        return _serve(settings)
    except (OSError, ValueError) as exc:
        if args.debug:
            raise
        log.error("%s: %s", type(exc).__name__, exc)
        return ExitStatus.FAILURE
