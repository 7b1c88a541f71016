"""Fixtures for the movie-package tests: a small, valid package to spoil."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.demo import make_demo


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A valid PUBLISH package of 3 small frames."""
    return make_demo(tmp_path / "outbox", frames=3, width=64, height=48)


def _load(pkg: Path) -> dict[str, Any]:
    return json.loads((pkg / "MANIFEST").read_text())


@pytest.fixture
def edit_manifest(package: Path) -> Callable[[Callable[[dict[str, Any]], None]], None]:
    """Change MANIFEST's JSON with a function, as a careless writer might."""

    def edit(change: Callable[[dict[str, Any]], None]) -> None:
        doc = _load(package)
        change(doc)
        (package / "MANIFEST").write_text(json.dumps(doc, ensure_ascii=False))

    return edit


@pytest.fixture
def replace_frame(package: Path) -> Callable[[str, bytes], None]:
    """Put new bytes in a frame and make MANIFEST agree (size and sha256)."""

    def replace(name: str, data: bytes) -> None:
        (package / name).write_bytes(data)
        doc = _load(package)
        for entry in doc["frames"]:
            if entry["name"] == name:
                entry["size"] = len(data)
                entry["sha256"] = hashlib.sha256(data).hexdigest()
        (package / "MANIFEST").write_text(json.dumps(doc))

    return replace
