"""One place decides: the package's fault is quarantined at once, the world's is retried."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from moviepkg.errors import (
    FrameMismatch,
    IncompletePackage,
    JpegError,
    LimitExceeded,
    ManifestError,
    PackageError,
)
from processor.errors import ContentError, EncodeError
from processor.failures import is_permanent
from processor.store import StoreError
from tests.corpus import CORPUS


@pytest.mark.parametrize("exc", [
    ContentError("ffmpeg cannot decode this frame (overread 8)", frame="0003.jpg"),
    ContentError("12-bit samples"),
    FrameMismatch("0002.jpg", "size 10", "11"),
    JpegError("0001.jpg", "a JPEG", "garbage"),
    ManifestError("MANIFEST", "JSON", "text"),
    LimitExceeded("0001.jpg", "at most 4096x4096 pixels", "30000x30000"),
    IncompletePackage("MANIFEST", "a file", "none"),  # in the work dir: a local copy gone bad
], ids=type)
def test_the_package_at_fault_is_permanent(exc: BaseException) -> None:
    assert is_permanent(exc)


@pytest.mark.parametrize("exc", [
    StoreError("s3://festival/movies/x.mp4", "upload failed: EndpointConnectionError"),
    StoreError("s3://festival", "SlowDown Please reduce your request rate"),
    EncodeError("ffmpeg exited with -9: killed"),
    OSError(errno.ENOSPC, "No space left on device"),
    FileNotFoundError("ffmpeg"),
    subprocess.TimeoutExpired("ffprobe", 120),
    ConnectionResetError(),
    TimeoutError(),
], ids=type)
def test_the_world_at_fault_is_transient(exc: BaseException) -> None:
    assert not is_permanent(exc)


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_every_bad_package_of_the_corpus_is_the_packages_fault(case: str,
                                                                 tmp_path: Path) -> None:
    from moviepkg.reader import read_package
    from tests.processor.conftest import add_package

    spoil, _ = CORPUS[case]
    entry = spoil(add_package(tmp_path, frames=3))
    with pytest.raises(PackageError) as caught:
        read_package(entry)
    assert is_permanent(caught.value)
