"""The website under load: warm Redis cache against no cache, same app, same run.

A store with 2,000 movie records, gunicorn with 2 workers on loopback, a load
generator in a separate process. Prints requests per second and p50/p95 latency
for `/` and `/api/movies`, and the cached/uncached throughput ratio (aim >= 50,
cached p95 < 20 ms).
Usage: python bench/website.py [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moviepkg.ids import movie_code  # noqa: E402
from moviepkg.record import INDEX_KEY, MovieIndex, MovieRecord, poster_key, video_key  # noqa: E402
from tests.services import RedisServer, free_port, wait_until  # noqa: E402

LOAD = r"""
import http.client, json, sys, threading, time
host, port, path, seconds, concurrency = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
    float(sys.argv[4]), int(sys.argv[5])
latencies, errors, lock = [], [0], threading.Lock()
deadline = time.perf_counter() + seconds
def worker():
    conn = http.client.HTTPConnection(host, port, timeout=10)
    mine = []
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors[0] += 1
        except Exception:
            errors[0] += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            continue
        mine.append(time.perf_counter() - start)
    with lock:
        latencies.extend(mine)
threads = [threading.Thread(target=worker) for _ in range(concurrency)]
for t in threads: t.start()
for t in threads: t.join()
latencies.sort()
def q(p): return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0
print(json.dumps({"requests": len(latencies), "errors": errors[0], "rps": len(latencies) / seconds,
                  "p50_ms": q(0.5) * 1000, "p95_ms": q(0.95) * 1000}))
"""


def make_store(root: Path, count: int) -> None:
    movies = root / "movies"
    movies.mkdir(parents=True)
    records = []
    start = datetime(2026, 5, 1, tzinfo=UTC)
    for n in range(count):
        package_id = f"st-{n % 12 + 1}-20260501t{n // 60 % 24:02d}{n % 60:02d}00z-{n:04x}"
        record = MovieRecord(id=package_id, code=movie_code(package_id),
                             title=f"Movie {n}: the cat who flew", station_id=f"st-{n % 12 + 1}",
                             created_at=start + timedelta(minutes=n), duration_s=16.0, fps=10,
                             frames=120, video=video_key(package_id),
                             poster=poster_key(package_id), public=True)
        (movies / f"{package_id}.json").write_bytes(record.to_json())
        records.append(record)
    (root / INDEX_KEY).write_bytes(MovieIndex.build(records, datetime.now(UTC)).to_json())


def serve(store: Path, redis_url: str, port: int) -> subprocess.Popen[bytes]:
    # No Redis and CACHE_SECONDS=0 switch every cache off: each request reads the store.
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2", "STORAGE_URL": store.as_uri(),
           "REDIS_URL": redis_url, "CACHE_SECONDS": "600" if redis_url else "0",
           "SECRET_KEY": "bench"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config",
                             "website/gunicorn_conf.py", "--access-logfile", "/dev/null",
                             "website.app:create_app()"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    wait_until(up, timeout=30, message="gunicorn up")
    return proc


def load(port: int, path: str, seconds: float, concurrency: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", LOAD, "127.0.0.1", str(port), path,
                           str(seconds), str(concurrency)], capture_output=True, text=True,
                          check=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--movies", type=int, default=2000)
    args = parser.parse_args()
    results: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        make_store(store, args.movies)
        with RedisServer(Path(tmp) / "redis") as redis_server:
            for mode, redis_url in (("cached", redis_server.url), ("uncached", "")):
                port = free_port()
                proc = serve(store, redis_url, port)
                try:
                    for path in ("/", "/api/movies"):
                        load(port, path, 1.0, args.concurrency)  # warm up
                        results[(mode, path)] = load(port, path, args.seconds, args.concurrency)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.movies} movies; gunicorn 2 workers x 4 threads; "
          f"load: {args.concurrency} keep-alive connections for {args.seconds:.0f} s")
    print(f"{'path':<12} {'mode':<9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
    for (mode, path), r in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        print(f"{path:<12} {mode:<9} {r['rps']:>8.0f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
              f"{r['errors']:>7.0f}")
    for path in ("/", "/api/movies"):
        ratio = results[("cached", path)]["rps"] / max(results[("uncached", path)]["rps"], 0.001)
        print(f"ratio cached/uncached {path}: {ratio:.1f}x (aim >= 50); cached p95 "
              f"{results[('cached', path)]['p95_ms']:.1f} ms (aim < 20)")


if __name__ == "__main__":
    main()
