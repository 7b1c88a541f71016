"""`processor receive`'s command line, kept apart so sshd's forced command starts quickly.

sshd runs `stopmo-processor receive ...` for every delivery and every heartbeat of every
station, before rsync can start: processor/entry.py (the console script, and `python -m
processor`) sends that command straight here, which imports only what receiving needs
(processor/receiver.py), not the rest of the processor's command line (settings,
pipeline, stores: about 20 ms more per session on the 2-core machine, twice per cycle).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from moviepkg.environment import Environment
from moviepkg.logs import setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `receive` options (all fixed by the forced command, none by the station);
    processor/receiver.py serves them."""
    parser.add_argument("--station", required=True, help="the station this key belongs to")
    parser.add_argument("--inbox", required=True, type=Path, help="the processor's inbox")
    parser.add_argument("--status-dir", type=Path, help="where heartbeats go "
                        "(default INBOX/.status)")
    parser.add_argument("--min-free-mb", type=int, default=100, help="refuse uploads while "
                        "the inbox has less free space, stop one that gets there (default 100)")
    parser.add_argument("--max-package-mb", type=int, help="what one station's staged uploads "
                        "may take on disk (default: the largest valid package, about 2.1 GB)")
    parser.add_argument("--rsync", default=shutil.which("rsync") or "/usr/bin/rsync",
                        help="the rsync binary")
    parser.add_argument("--log", type=Path, help="append JSON log lines to this file")


def main(argv: Sequence[str], env: Environment | None = None) -> int:
    """`processor receive ARGS` (argv without the word `receive`): serve one request."""
    parser = argparse.ArgumentParser(prog="processor receive",
                                     description="the forced command of a station's SSH key: "
                                     "take one delivery (docs/delivery.md)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    env = env or Environment.of_process()
    setup_logging("processor", logging.INFO, stream=env.stderr)
    from . import receiver

    return receiver.main(args, env)
