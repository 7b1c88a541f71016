"""What a command gets from its process: standard streams and environment variables.

Every command's `main(argv, env)` takes one of these instead of reaching for
`sys.stdin`, `sys.stdout`, `sys.stderr` and `os.environ` itself, so a test can run
it in-process with its own streams and variables, as well as a real process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from .exitcodes import ExitStatus


@dataclass(frozen=True, slots=True)
class Environment:
    """The streams and variables a command reads and writes."""

    stdin: IO[bytes]
    stdout: IO[str]
    stderr: IO[str]
    env: Mapping[str, str]

    @classmethod
    def of_process(cls) -> Environment:
        """This process's own."""
        return cls(stdin=sys.stdin.buffer, stdout=sys.stdout, stderr=sys.stderr,
                   env=os.environ)

    def say(self, text: str) -> None:
        """One line on stdout."""
        print(text, file=self.stdout, flush=True)

    def complain(self, text: str) -> None:
        """One line on stderr."""
        print(text, file=self.stderr, flush=True)

    def refuse_settings(self, problems: list[str]) -> int:
        """Say every settings problem, one a line; return the status for bad settings."""
        for problem in problems:
            self.complain(problem)
        return ExitStatus.CONFIG
