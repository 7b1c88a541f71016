"""`python -m moviepkg validate DIR` and `python -m moviepkg make-demo DIR`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .demo import make_demo
from .errors import PackageError
from .exitcodes import ExitStatus
from .manifest import MAX_FRAMES
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
    demo = sub.add_parser("make-demo", help="write a valid package of synthetic frames")
    demo.add_argument("dir", type=Path, help="the outbox folder the package is written into")
    demo.add_argument("--frames", type=int, default=20)
    demo.add_argument("--nopublish", action="store_true")
    demo.add_argument("--station", default="demo")
    demo.add_argument("--title", default="A ball goes bouncing")
    demo.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the frames")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "validate":
        limits = Limits(max_frames=args.max_frames, max_frame_bytes=args.max_frame_bytes,
                        max_frame_pixels=args.max_frame_pixels,
                        max_total_bytes=args.max_total_bytes)
        try:
            package = read_package(args.dir, limits)
        except PackageError as exc:
            print(f"invalid: {exc}")
            return ExitStatus.INVALID
        except OSError as exc:  # not the package's fault: unreadable, I/O error...
            print(f"error: {exc}", file=sys.stderr)
            return ExitStatus.FAILURE
        flag = "PUBLISH" if package.publish else "NOPUBLISH"
        print(f"valid: {package.package_id} code {package.code}, {len(package.frames)} frames, "
              f"{package.total_bytes} bytes, {flag}")
        return ExitStatus.OK
    if not 1 <= args.frames <= MAX_FRAMES:
        print(f"error: --frames: expected 1 to {MAX_FRAMES}, found {args.frames}",
              file=sys.stderr)
        return ExitStatus.FAILURE
    try:
        width, height = (int(part) for part in args.size.lower().split("x"))
        path = make_demo(args.dir, frames=args.frames, publish=not args.nopublish,
                         station_id=args.station, title=args.title, width=width, height=height)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitStatus.FAILURE
    print(path)
    return ExitStatus.OK
