"""`stopmo-processor` and `python -m processor`: `receive` on its own short path.

sshd runs `stopmo-processor receive ...` (a station key's forced command) for every
delivery and every heartbeat of every station, before rsync can start. That command goes
to processor/receive_cli.py, which imports only what receiving needs; every other command
goes to processor/cli.py (settings, pipeline, stores: about 20 ms more to import).
"""

from __future__ import annotations

import sys


def main() -> int:
    """Run the command line of this process."""
    if sys.argv[1:2] == ["receive"]:
        from .receive_cli import main as receive

        return receive(sys.argv[2:])
    from .cli import main as everything_else

    return everything_else()
