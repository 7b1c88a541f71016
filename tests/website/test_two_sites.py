"""Two site processes on different ports share one Redis, as dynos do: while movies
are published and both are busy, only one refresh runs at a time across all their
workers, and both list every movie."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import pytest

from tests.services import RedisServer, wait_until
from tests.website.conftest import StoreBuilder, make_record
from tests.website.served import Site, get, refreshes

pytestmark = pytest.mark.slow  # two gunicorns under load


def test_one_refresh_at_a_time_across_two_sites(store: StoreBuilder, tmp_path: Path,
                                               redis_server: RedisServer) -> None:
    store.add(make_record(0))
    settings = {"STORAGE_URL": store.root.as_uri(), "REDIS_URL": redis_server.url,
                "CACHE_SECONDS": "1", "SECRET_KEY": "test"}
    with Site(tmp_path / "one", settings) as one, Site(tmp_path / "two", settings) as two:
        stop = threading.Event()

        def hammer(port: int) -> None:
            while not stop.is_set():
                get(port, "/api/movies?page=1")

        threads = [threading.Thread(target=hammer, args=(site.port,)) for site in (one, two)
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            for n in range(1, 9):  # the processor publishes, now and then
                time.sleep(0.6)
                store.add(make_record(n))
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)

        def both_list_all() -> bool:
            return all(json.loads(get(site.port, "/api/movies").body)["total"] == 9
                       for site in (one, two))

        wait_until(both_list_all, timeout=10, message="both sites listing all 9 movies")
        lines = refreshes(one.log_path) + refreshes(two.log_path)
    spans, open_at = [], {}
    for pid, what, when in sorted(lines, key=lambda line: line[2]):
        if what == "started":
            assert pid not in open_at, f"{pid} started twice"
            open_at[pid] = when
        else:
            spans.append((open_at.pop(pid), when, pid))
    assert len({pid for _, _, pid in spans}) >= 2, "refreshes came from one worker only"
    assert len(spans) >= 4, spans
    spans.sort()
    for (_, end, pid), (next_start, _, next_pid) in itertools.pairwise(spans):
        assert next_start >= end, f"{next_pid} began refreshing while {pid} still did"
