"""One logging helper: JSON lines off a terminal, text on one, package id on both."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from moviepkg.logs import package_context, setup_logging


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_package_id_and_extras() -> None:
    out = io.StringIO()
    setup_logging("processor", stream=out)
    log = logging.getLogger("stopmo.test")
    with package_context("st-1-20260501t120000z-beef"):
        log.info("encoded %d frames", 42, extra={"seconds": 1.5})
    log.warning("no package here")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["msg"] == "encoded 42 frames"
    assert first["package_id"] == "st-1-20260501t120000z-beef"
    assert first["seconds"] == 1.5
    assert (first["program"], first["level"], first["logger"]) == ("processor", "info",
                                                                  "stopmo.test")
    assert first["ts"].endswith("Z")
    assert "package_id" not in second and second["level"] == "warning"


def test_text_on_a_terminal() -> None:
    out = FakeTty()
    setup_logging("station", stream=out)
    logging.getLogger("x").info("captured", extra={"package_id": "pkg-1", "frame": 3})
    line = out.getvalue().strip()
    assert "INFO  station [pkg-1] captured frame=3" in line
    assert not line.startswith("{")


def test_exceptions_are_logged_with_traceback() -> None:
    out = io.StringIO()
    setup_logging("website", stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    doc = json.loads(out.getvalue())
    assert "RuntimeError: boom" in doc["exc"]


def test_setting_up_twice_does_not_double_lines() -> None:
    out = io.StringIO()
    setup_logging("station", stream=out)
    setup_logging("station", stream=out)
    logging.getLogger("x").info("once")
    assert len(out.getvalue().splitlines()) == 1
