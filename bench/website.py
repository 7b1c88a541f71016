"""The website at archive scale: two site processes sharing one Redis, against no cache.

For each size (2,000, 20,000 and 100,000 movies, in day indexes of two halls, as the
processing units write them), two gunicorns (2 workers each) share one Redis; a load
generator in separate processes drives both at once. Prints, per size:
- cached requests per second and p50/p95 latency for `/`, `/api/movies` and a random
  gallery page (aim: p95 < 20 ms at 100,000);
- the same app without a cache (each request reads the store), and the cached/uncached
  throughput ratio (aim >= 50 at 2,000);
- the cold fill (the first refresh loading every movie into Redis);
- a new movie in the store -> listed on the other site (aim < 2 s + the cache's max age);
- the workers' resident memory after the load (aim < 150 MB at 100,000).
Usage: python bench/website.py [--sizes 2000,20000,100000] [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from moviepkg.ids import movie_code  # noqa: E402
from moviepkg.record import (  # noqa: E402
    MovieIndex,
    MovieRecord,
    poster_key,
    record_from_dict,
    video_key,
)
from tests.services import RedisServer, free_port, wait_until  # noqa: E402
from tests.website.served import refreshes  # noqa: E402

MAX_AGE = 2  # the cache's max age for the run (seconds)
LOAD = r"""
import http.client, json, random, sys, threading, time
host, ports, path, seconds, concurrency, pages = sys.argv[1], sys.argv[2].split(","), \
    sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
latencies, errors, lock = [], [0], threading.Lock()
deadline = time.perf_counter() + seconds
def worker(port):
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    mine = []
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        asked = path.replace("{page}", str(random.randint(1, pages)))
        try:
            conn.request("GET", asked)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors[0] += 1
        except Exception:
            errors[0] += 1
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            continue
        mine.append(time.perf_counter() - start)
    with lock:
        latencies.extend(mine)
threads = [threading.Thread(target=worker, args=(ports[i % len(ports)],))
           for i in range(concurrency)]
for t in threads: t.start()
for t in threads: t.join()
latencies.sort()
def q(p): return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0
# Over the time until the last answer: a slow request may end well after the deadline.
took = time.perf_counter() - (deadline - seconds)
print(json.dumps({"requests": len(latencies), "errors": errors[0], "rps": len(latencies) / took,
                  "p50_ms": q(0.5) * 1000, "p95_ms": q(0.95) * 1000}))
"""
HALLS = ("main", "small-hall")
START = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)


def record(n: int) -> MovieRecord:
    hall = HALLS[n % 2]
    created = START + timedelta(minutes=7 * n)
    package_id = f"st-{n % 12 + 1}-{created:%Y%m%dt%H%M%S}z-{n % 65536:04x}"
    return MovieRecord(id=package_id, code=movie_code(package_id),
                       title=f"Movie {n}: the cat who flew", station_id=f"st-{n % 12 + 1}",
                       created_at=created, duration_s=16.0, fps=10, frames=120,
                       video=video_key(package_id), poster=poster_key(package_id), public=True,
                       width=1280, height=720, festival=f"{created.year}", hall=hall)


def make_store(root: Path, count: int) -> None:
    """count movies in the day indexes of two halls (the records themselves are not read)."""
    days: dict[str, list[MovieRecord]] = {}
    for n in range(count):
        movie = record(n)
        days.setdefault(movie.index_key, []).append(movie)
    now = datetime.now(UTC)
    for key, movies in days.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(MovieIndex.build(movies, now).to_json())


def add_movie(root: Path, n: int) -> str:
    """Publish one more movie, as a processing unit does: its day index rewritten."""
    movie = record(n)
    path = root / movie.index_key
    data = json.loads(path.read_text()) if path.exists() else {"movies": []}
    listed = [record_from_dict(item) for item in data["movies"]]
    path.write_bytes(MovieIndex.build([*listed, movie], datetime.now(UTC)).to_json())
    return movie.id


def serve(store: Path, redis_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    # No Redis and CACHE_SECONDS=0 switch every cache off: each request reads the store.
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2", "STORAGE_URL": store.as_uri(),
           "REDIS_URL": redis_url, "CACHE_SECONDS": str(MAX_AGE) if redis_url else "0",
           "SECRET_KEY": "bench"}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config",
                                 "website/gunicorn_conf.py", "--access-logfile", "/dev/null",
                                 "--timeout", "120", "website.app:create_app()"], cwd=ROOT,
                                env=env, stdout=out, stderr=out)

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=300):
                return True
        except OSError:
            return False

    wait_until(up, timeout=600, message="gunicorn up")
    return proc


def first_refresh(*logs: Path) -> float:
    """How long the first refresh took (its two log lines, from whichever site ran it)."""
    lines = sorted((when, what) for log in logs for _, what, when in refreshes(log))
    start = next(when for when, what in lines if what == "started")
    end = next(when for when, what in lines if what == "done" and when >= start)
    return (end - start).total_seconds()


def fetch(port: int, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=120) as answer:
        doc: dict[str, object] = json.loads(answer.read())
        return doc


def fetch_text(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=600) as answer:
        return str(answer.read().decode())


def load(ports: list[int], path: str, seconds: float, concurrency: int,
         pages: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", LOAD, "127.0.0.1",
                           ",".join(map(str, ports)), path, str(seconds), str(concurrency),
                           str(pages)], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def worker_rss_mb(master: int) -> float:
    """The largest resident memory of master's worker processes, in MB."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    sizes = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return max(sizes, default=0.0)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def one_size(count: int, seconds: float, concurrency: int, tmp: Path,
             redis_url: str) -> list[str]:
    store = tmp / f"store-{count}"
    started = time.perf_counter()
    make_store(store, count)
    made_s = time.perf_counter() - started
    pages = max(1, count // 24)
    lines = [f"{count} movies ({made_s:.1f} s to write their day indexes)"]
    one, two = free_port(), free_port()
    sites = [serve(store, redis_url, one, tmp / f"one-{count}.log"),
             serve(store, redis_url, two, tmp / f"two-{count}.log")]
    results: dict[tuple[str, str], dict[str, float]] = {}
    try:
        total = fetch(one, "/api/movies")["total"]
        assert total == count, (total, count)
        lines.append(f"  cold fill (the first refresh loads every movie into Redis): "
                     f"{first_refresh(tmp / f'one-{count}.log', tmp / f'two-{count}.log'):.2f} s")
        for path in ("/", "/api/movies", "/?page={page}"):
            load([one, two], path, 1.0, concurrency, pages)  # warm up
            results[("cached", path)] = load([one, two], path, seconds, concurrency, pages)
        rss = max(worker_rss_mb(site.pid) for site in sites)
        delays = []
        for extra in range(3):
            new_id = add_movie(store, count + extra)
            started = time.perf_counter()
            wait_until(lambda new_id=new_id: any(  # type: ignore[misc]
                m["id"] == new_id for m in fetch(two, "/api/movies")["movies"]),  # type: ignore[attr-defined]
                timeout=60, interval=0.05, message="the new movie listed")
            delays.append(time.perf_counter() - started)
    finally:
        for site in sites:
            stop(site)
    port = free_port()
    uncached = serve(store, "", port, tmp / f"uncached-{count}.log")
    alone: dict[str, float] = {}
    uncached_seconds = max(2.0, seconds / 2)
    try:
        for path in ("/", "/api/movies"):
            started = time.perf_counter()
            fetch_text(port, path)
            alone[path] = time.perf_counter() - started
            if alone[path] < 30:  # the load generator's time-out: else nothing would end
                results[("uncached", path)] = load([port], path, uncached_seconds,
                                                   concurrency, pages)
    finally:
        stop(uncached)
    lines.append(f"  {'path':<14} {'mode':<9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
                 f"{'errors':>7}")
    for (mode, path), r in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        lines.append(f"  {path:<14} {mode:<9} {r['rps']:>8.1f} {r['p50_ms']:>8.1f} "
                     f"{r['p95_ms']:>8.1f} {r['errors']:>7.0f}")
    for path in ("/", "/api/movies"):
        cached = results[("cached", path)]
        bare = results.get(("uncached", path))
        if bare is None:
            ratio = f"n/a: one uncached request alone took {alone[path]:.1f} s, no load run"
        elif not bare["rps"]:
            ratio = f"n/a: no uncached request succeeded ({bare['errors']:.0f} errors)"
        else:
            ratio = f"{cached['rps'] / bare['rps']:.0f}x"
        lines.append(f"  ratio cached/uncached {path}: {ratio} (aim >= 50); cached p95 "
                     f"{cached['p95_ms']:.1f} ms (aim < 20)")
    lines.append(f"  a random gallery page, cached p95: "
                 f"{results[('cached', '/?page={page}')]['p95_ms']:.1f} ms")
    lines.append(f"  new movie in the store -> listed on the other site: "
                 f"{', '.join(f'{d:.2f}' for d in delays)} s (aim < 2 s + max age {MAX_AGE} s)")
    lines.append(f"  largest worker resident memory: {rss:.0f} MB (aim < 150 MB)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000,100000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; two sites x gunicorn 2 workers x 4 threads, one Redis; "
          f"load: {args.concurrency} keep-alive connections over both for {args.seconds:.0f} s; "
          f"cache max age {MAX_AGE} s")
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis_server:
        for count in sizes:
            redis.Redis.from_url(redis_server.url).flushall()
            for line in one_size(count, args.seconds, args.concurrency, Path(tmp),
                                 redis_server.url):
                print(line, flush=True)


if __name__ == "__main__":
    main()
