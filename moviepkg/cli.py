"""`python -m moviepkg validate DIR`: check a movie package (exit 0 valid, 5 invalid)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .environment import Environment
from .errors import PackageError
from .exitcodes import ExitStatus
from .reader import Limits, read_package

_DEFAULTS = Limits()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moviepkg", description="stopmo movie packages")
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check a package folder; exit 5 if invalid")
    validate.add_argument("dir", type=Path)
    validate.add_argument("--max-frames", type=int, default=_DEFAULTS.max_frames)
    validate.add_argument("--max-frame-bytes", type=int, default=_DEFAULTS.max_frame_bytes)
    validate.add_argument("--max-frame-pixels", type=int, default=_DEFAULTS.max_frame_pixels)
    validate.add_argument("--max-total-bytes", type=int, default=_DEFAULTS.max_total_bytes)
    return parser


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """Run the command line with env's streams and variables; return the exit status."""
    env = env or Environment.of_process()
    args = _parser().parse_args(argv)
    if args.command == "validate":
        limits = Limits(max_frames=args.max_frames, max_frame_bytes=args.max_frame_bytes,
                        max_frame_pixels=args.max_frame_pixels,
                        max_total_bytes=args.max_total_bytes)
        try:
            package = read_package(args.dir, limits)
        except PackageError as exc:
            env.say(f"invalid: {exc}")
            return ExitStatus.INVALID
        except OSError as exc:  # not the package's fault: unreadable, I/O error...
            env.complain(f"error: {exc}")
            return ExitStatus.FAILURE
        flag = "PUBLISH" if package.publish else "NOPUBLISH"
        env.say(f"valid: {package.package_id} code {package.code}, {len(package.frames)} "
                f"frames, {package.total_bytes} bytes, {flag}")
        return ExitStatus.OK
    raise AssertionError(f"unknown command {args.command}")  # argparse refuses it
