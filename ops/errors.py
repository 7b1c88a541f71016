"""The console's errors and exit statuses."""

from __future__ import annotations

from moviepkg.exitcodes import ExitStatus

__all__ = ["ConfigError", "ExitStatus", "OpsError"]


class OpsError(Exception):
    """Base class: something the console cannot do."""


class ConfigError(OpsError):
    """One or more settings are wrong; each line is `section.key: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
