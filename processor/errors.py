"""The processor's errors and exit statuses."""

from __future__ import annotations

from moviepkg.exitcodes import ExitStatus

__all__ = [
    "ConfigError",
    "ContentError",
    "DaemonRunning",
    "EncodeError",
    "ExitStatus",
    "ProcessorError",
]


class ProcessorError(Exception):
    """Base class: a step failed for a reason that a retry may cure."""


class ConfigError(ProcessorError):
    """One or more settings are wrong; each line is `section.key: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DaemonRunning(ProcessorError):
    """Another processor daemon holds the work dir."""


class EncodeError(ProcessorError):
    """ffmpeg failed, or what it produced is not the movie it should be."""


class ContentError(Exception):
    """The package's own content is bad (a frame that does not decode, ...): never retried.

    `frame` names the frame at fault when one is known; the message says what was wrong.
    Not a ProcessorError: a retry cannot cure it, so the pipeline quarantines at once.
    """

    def __init__(self, message: str, frame: str | None = None) -> None:
        self.frame = frame
        super().__init__(f"{frame}: {message}" if frame else message)
