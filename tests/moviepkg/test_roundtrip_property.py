"""Whatever the writer produces, the reader reads back identically."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from moviepkg.reader import read_package
from moviepkg.writer import PackageWriter, clean_title
from tests.demo import encode_blocks

colours = st.tuples(*[st.integers(0, 255)] * 3)


@st.composite
def jpegs(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(1, 80))
    height = draw(st.integers(1, 64))
    cells = [[draw(colours) for _ in range((width + 15) // 16)] for _ in range((height + 15) // 16)]
    return encode_blocks(cells, width, height)


# An action is a frame to add, or None for "delete the last frame".
actions = st.lists(st.one_of(jpegs(), st.none()), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(actions=actions, last=jpegs(), title=st.one_of(st.none(), st.text(max_size=120)),
       publish=st.booleans(), fps=st.integers(1, 30), station=st.from_regex(
           r"\A[a-z0-9][a-z0-9-]{0,40}\Z"), minutes=st.integers(0, 10_000))
def test_writer_output_reads_back_identically(actions: list[bytes | None], last: bytes,
                                              title: str | None, publish: bool, fps: int,
                                              station: str, minutes: int) -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    with tempfile.TemporaryDirectory() as outbox:
        writer = PackageWriter.start(outbox, station, now=start)
        expected: list[bytes] = []
        for action in [*actions, last]:
            if action is None:
                if expected:
                    writer.delete_last_frame()
                    expected.pop()
            else:
                writer.add_frame(action)
                expected.append(action)
        written = writer.finish(title, publish, now=start + timedelta(seconds=90), fps=fps)
        package = read_package(writer.path)
        assert package.manifest == written
        assert package.publish is publish
        assert package.manifest.title == clean_title(title)
        assert package.manifest.station_id == station
        assert [Path(writer.path, f.name).read_bytes() for f in package.frames] == expected
        assert package.total_bytes == sum(map(len, expected))
