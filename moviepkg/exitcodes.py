"""The exit statuses of every stopmo command, one table (docs/commands.md shows it).

argparse already exits 2 for a bad command line; the rest follow from that.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What every stopmo command exits with."""

    OK = 0
    FAILURE = 1  # did not finish; nothing is lost, and it can be tried again
    USAGE = 2  # the command line is wrong (also argparse's own status)
    CONFIG = 3  # a setting is wrong or missing: fix the settings, then start again
    BUSY = 4  # another instance holds the lock (a daemon or an agent already runs)
    INVALID = 5  # the input (a movie package) is invalid: refused or quarantined
