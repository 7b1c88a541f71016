"""What every program's settings loader shares: TOML files and checked values.

Each program keeps its own keys (a table of `Key` rows) and defaults; a value
parser raises ValueError with the message that follows `section.key: ` in the
report of problems, and `read_keys` collects every problem at once.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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


def number(low: float, high: float, unit: str) -> Callable[[Any], float]:
    """A parser of numbers above low and at most high (in unit, for the message)."""
    def parse(value: Any) -> float:
        try:
            found = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            found = float("nan")
        if not low < found <= high:
            raise ValueError(f"expected more than {low:g} and at most {high:g} {unit}, "
                             f"found {value!r}")
        return found
    return parse


def size(smallest: tuple[int, int], largest: tuple[int, int],
         even: bool = False) -> Callable[[Any], tuple[int, int]]:
    """A parser of WIDTHxHEIGHT within smallest..largest (both even, if asked)."""
    def parse(value: Any) -> tuple[int, int]:
        try:
            width, height = (int(part) for part in str(value).lower().split("x"))
        except ValueError:
            raise ValueError(f"expected WIDTHxHEIGHT like 1280x720, found {value!r}") from None
        if not (smallest[0] <= width <= largest[0] and smallest[1] <= height <= largest[1]) \
                or (even and (width % 2 or height % 2)):
            raise ValueError(f"expected {'even ' if even else ''}sizes from "
                             f"{smallest[0]}x{smallest[1]} to {largest[0]}x{largest[1]}, "
                             f"found {value!r}")
        return width, height
    return parse


def boolean(value: Any) -> bool:
    """true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    text_ = str(value).strip().lower()
    if text_ in ("1", "true", "yes", "on"):
        return True
    if text_ in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, found {value!r}")


def text(value: Any) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def timezone(value: Any) -> str:
    """An IANA time zone name, like Europe/Paris."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = text(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected a time zone like Europe/Paris, found {name!r}") from None
    return name


@dataclass(frozen=True, slots=True)
class Key:
    """One setting: where it lives in the file, how it is checked, its environment name.

    `field` names the settings attribute it sets when that differs from `name`.
    """

    section: str  # the TOML table
    name: str  # the TOML key
    parse: Callable[[Any], Any]
    env: str | None = None
    field: str = ""

    @property
    def dotted(self) -> str:
        """`section.key`, as problems are reported."""
        return f"{self.section}.{self.name}"

    @property
    def target(self) -> str:
        """The settings attribute this key sets."""
        return self.field or self.name


def read_keys(keys: Iterable[Key], raw: Mapping[str, Any], environ: Mapping[str, str],
              problems: list[str]) -> dict[Key, Any]:
    """Check each key's value (the environment wins over the file); note every problem.

    Unknown `section.key`s in raw are problems too. Keys with no value are left out.
    """
    keys = tuple(keys)
    known = {key.dotted for key in keys}
    problems += [f"{name}: unknown setting" for name in sorted(set(raw) - known)]
    values: dict[Key, Any] = {}
    for key in keys:
        source, value = key.dotted, raw.get(key.dotted)
        if key.env is not None and environ.get(key.env, "") != "":
            source, value = key.env, environ[key.env]
        if value is None:
            continue
        try:
            values[key] = key.parse(value)
        except ValueError as exc:
            problems.append(f"{source}: {exc}")
    return values


def load_values(keys: Iterable[Key], path: Path | None, default: Path,
                environ: Mapping[str, str] | None = None
                ) -> tuple[dict[Key, Any], list[str]]:
    """Read the file (or default) and the environment (os.environ unless given) for keys:
    the checked values, and every problem as `section.key: message`."""
    problems: list[str] = []
    raw = read_toml(path, default, problems)
    values = read_keys(keys, raw, os.environ if environ is None else environ, problems)
    return values, problems


def add_program_arguments(parser: Any, config: Path) -> None:
    """The options every program's command line has: --config FILE and --debug."""
    parser.add_argument("--config", type=Path, help=f"TOML settings file (default {config} "
                        "if present)")
    parser.add_argument("--debug", action="store_true", help="log more, show tracebacks")


def station_names(value: Any) -> dict[str, str]:
    """Station ids and their friendly names ("Dragon table"), every bad entry reported;
    ValueError says what is wrong (the processor's [title.stations], the website's
    STATION_NAMES)."""
    from .ids import is_station_id
    from .manifest import MAX_TITLE_CHARS

    if not isinstance(value, dict):
        raise ValueError('expected station ids and names, like {"st-1": "Dragon table"}')
    bad = [f"{key!r}: expected a station id like st-1" for key in value
           if not is_station_id(str(key))]
    bad += [f"{key}: expected a name of 1 to {MAX_TITLE_CHARS} characters, found {name!r}"
            for key, name in value.items() if not isinstance(name, str)
            or not name.strip() or len(name.strip()) > MAX_TITLE_CHARS]
    if bad:
        raise ValueError("; ".join(bad))
    return {str(key): name.strip() for key, name in value.items()}
