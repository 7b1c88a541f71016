"""One logging set-up for every stopmo program.

Readable lines on a terminal, JSON lines otherwise (journald, files, CI), and
the package id on every line logged while one is in play, so one movie's whole
story can be found with one grep from the station to the website.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO

_package_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("package_id",
                                                                         default=None)
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@contextlib.contextmanager
def package_context(package_id: str | None) -> Iterator[None]:
    """Tag every log line inside the block with package_id."""
    token = _package_id.set(package_id)
    try:
        yield
    finally:
        _package_id.reset(token)


class _PackageFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "package_id", None) is None:
            record.package_id = _package_id.get()
        return True


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in record.__dict__.items()
            if key not in _STANDARD and key != "package_id" and not key.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, program, logger, msg, package_id, extras."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "program": self.program,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        package_id = getattr(record, "package_id", None)
        if package_id is not None:
            doc["package_id"] = package_id
        doc.update(_extras(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO  processor [package-id] message key=value` for a terminal."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        package_id = getattr(record, "package_id", None)
        tag = f" [{package_id}]" if package_id else ""
        extras = "".join(f" {key}={value}" for key, value in _extras(record).items())
        line = f"{when} {record.levelname:<5} {self.program}{tag} {record.getMessage()}{extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(program: str, level: int | str = logging.INFO, stream: IO[str] | None = None,
                  json_lines: bool | None = None) -> logging.Handler:
    """Send every log record to stream (stderr): text on a terminal, JSON lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    if json_lines is None:
        json_lines = not (hasattr(stream, "isatty") and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(program) if json_lines else TextFormatter(program))
    handler.addFilter(_PackageFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_stopmo", False)]:
        root.removeHandler(old)
    handler._stopmo = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
