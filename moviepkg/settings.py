"""What every program's settings loader shares: TOML files and checked values.

Each program keeps its own keys and defaults; a value parser raises ValueError
with the message that follows `section.key: ` in the report of problems.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def read_toml(path: Path | None, default: Path, problems: list[str]) -> dict[str, Any]:
    """Read path (or default, if it exists) as `{"section.key": value}`; note any problem."""
    if path is None and default.exists():
        path = default
    if path is None:
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(f"{path}: cannot read ({exc.strerror})")
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: not valid TOML ({exc})")
        return {}
    return flatten(doc, problems)


def flatten(doc: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """Turn `[section] key = value` tables into `{"section.key": value}`."""
    flat: dict[str, Any] = {}
    for section, table in doc.items():
        if not isinstance(table, dict):
            problems.append(f"{section}: expected a [{section}] table")
            continue
        for key, value in table.items():
            flat[f"{section}.{key}"] = value
    return flat


def absolute_path(value: Any) -> Path:
    """An absolute path."""
    if not isinstance(value, str) or not value:
        raise ValueError("expected a path")
    if not value.startswith("/"):
        raise ValueError(f"expected an absolute path, found {value!r}")
    return Path(value)


def int_range(low: int, high: int) -> Callable[[Any], int]:
    """A parser of whole numbers from low to high (TOML integers or digits in a string)."""
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}, found {value!r}")
        return value
    return parse


def choice(*allowed: str) -> Callable[[Any], str]:
    """A parser that accepts only the allowed words."""
    def parse(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, found {value!r}")
        return str(value)
    return parse
