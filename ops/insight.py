"""Insight into the movies' way: how long each step takes, where movies wait, which were
slow, and the slow-step alert's findings.

Pure functions over the console's database, each given `now` (a test drives them with its
own clock). Durations come from the events' own `at` times and are clamped at zero; why,
and how a movie's steps are read, is said in ops.movies.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from moviepkg.ids import movie_code
from moviepkg.times import format_utc

from .config import Thresholds
from .db import Database
from .movies import STEPS, Movie, Passage, Step, load_movies

HOUR_S = 3600.0
WATCH_S = 86400.0  # the slow-step alert watches the movies heard of in the last day
MIN_COMPLETIONS = 10  # no "slower than usual" before a step has this many completions


@dataclass(frozen=True, slots=True)
class Stats:
    """How many times a step finished, and its shortest, average, p95 and longest."""

    count: int = 0
    min: float | None = None
    avg: float | None = None
    p95: float | None = None
    max: float | None = None

    def to_json(self) -> dict[str, Any]:
        """For /api/insight: seconds, rounded to a millisecond; null without any."""
        def rounded(value: float | None) -> float | None:
            """A millisecond's precision, or None."""
            return None if value is None else round(value, 3)
        return {"count": self.count, "min_s": rounded(self.min), "avg_s": rounded(self.avg),
                "p95_s": rounded(self.p95), "max_s": rounded(self.max)}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated linearly between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stats(values: Sequence[float]) -> Stats:
    """Count, min, average, p95 and max of durations."""
    if not values:
        return Stats()
    return Stats(len(values), min(values), sum(values) / len(values), percentile(values, 95),
                 max(values))


def duration_text(seconds: float | None) -> str:
    """`0.4 s`, `45 s`, `7 min 05 s`, `2 h 05 min`, or a dash."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


# -- the numbers --------------------------------------------------------------------------------

def day_start(now: float, zone: str) -> float:
    """The festival day's start: local midnight in the console's time zone."""
    local = datetime.fromtimestamp(now, ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def step_stats(movies: Iterable[Movie], since: float) -> dict[str, Stats]:
    """Each step's numbers over the passages that ended at or after since (their `at`)."""
    durations: dict[str, list[float]] = {step.name: [] for step in STEPS}
    for movie in movies:
        for passage in movie.passages:
            assert passage.end is not None
            if passage.end.at >= since:
                durations[passage.step.name].append(passage.seconds)
    return {name: stats(values) for name, values in durations.items()}


def finished_per_hour(movies: Iterable[Movie], since: float, now: float, zone: str
                      ) -> tuple[list[str], dict[str, list[int]]]:
    """Movies finished (shot_finished) per station per local hour, since a time.

    The hours run from the first hour with a movie to the current one.
    """
    local = ZoneInfo(zone)
    counts: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for movie in movies:
        shot = movie.first("shot_finished")
        if shot is not None and since <= shot.at <= now + HOUR_S:
            hour = datetime.fromtimestamp(shot.at, local).replace(minute=0, second=0,
                                                                  microsecond=0)
            counts[shot.device][hour] += 1
    if not counts:
        return [], {}
    first = min(hour for per in counts.values() for hour in per)
    last = max(datetime.fromtimestamp(now, local).replace(minute=0, second=0, microsecond=0),
               max(hour for per in counts.values() for hour in per))
    hours = []
    while first <= last:
        hours.append(first)
        first = (first + timedelta(hours=1, minutes=5)).replace(minute=0)  # across DST
    stations = sorted(counts, key=_natural)
    return ([f"{hour:%H:%M}" for hour in hours],
            {name: [counts[name].get(hour, 0) for hour in hours] for name in stations})


def _natural(name: str) -> tuple[Any, ...]:
    """Sort st-2 before st-10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in name.split("-"))


def slowest(movies: Iterable[Movie], since: float, limit: int = 10) -> list[Movie]:
    """The movies that took longest from shot_finished to on_screen (on screen since)."""
    shown = [movie for movie in movies if movie.on_screen_after is not None
             and (movie.first("on_screen") or movie.moments[0]).at >= since]
    return sorted(shown, key=lambda movie: -(movie.on_screen_after or 0.0))[:limit]


def queues(db: Database, since: float) -> dict[str, Any]:
    """The queues over time: each station's outbox, the pipeline and the publish backlog."""
    outbox: dict[str, list[tuple[float, float]]] = {}
    for row in db.query("SELECT DISTINCT device FROM samples WHERE metric = 'sync.waiting' "
                        "AND t >= ?", (since,)):
        outbox[row["device"]] = db.samples(row["device"], "sync.waiting", since)
    processors = [row["device"] for row in db.query(
        "SELECT DISTINCT device FROM samples WHERE metric IN ('processor.queued', "
        "'processor.publish_backlog') AND t >= ?", (since,))]
    pipeline: list[tuple[float, float]] = []
    backlog: list[tuple[float, float]] = []
    for device in processors:
        pipeline += db.samples(device, "processor.queued", since)
        backlog += db.samples(device, "processor.publish_backlog", since)
    return {"outbox": dict(sorted(outbox.items(), key=lambda item: _natural(item[0]))),
            "pipeline": sorted(pipeline), "publish_backlog": sorted(backlog)}


@dataclass(frozen=True, slots=True)
class Insight:
    """Everything the insight page shows, for one moment."""

    now: float
    zone: str
    hour_since: float
    day_since: float
    hour: dict[str, Stats]
    day: dict[str, Stats]
    hours: list[str]
    per_station: dict[str, list[int]]
    queues: dict[str, Any]
    slowest: list[Movie]
    on_the_way: list[Passage]  # the movies in a step now, longest first

    def to_json(self) -> dict[str, Any]:
        """The /api/insight document (times as UTC ISO 8601, durations in seconds)."""
        def when(stamp: float) -> str:
            """An epoch time as UTC ISO 8601."""
            return format_utc(datetime.fromtimestamp(stamp, UTC))

        def series(points: list[tuple[float, float]]) -> list[list[Any]]:
            """(time, value) points as [UTC time, value] pairs."""
            return [[when(t), value] for t, value in points]

        return {
            "now": when(self.now), "timezone": self.zone,
            "hour": {"since": when(self.hour_since)}, "day": {"since": when(self.day_since)},
            "steps": [{"step": step.name, "label": step.label, "from": step.start,
                       "to": step.end, "hour": self.hour[step.name].to_json(),
                       "day": self.day[step.name].to_json()} for step in STEPS],
            "finished_per_hour": {"hours": self.hours, "stations": self.per_station,
                                  "total": [sum(column) for column in
                                            zip(*self.per_station.values(), strict=True)]},
            "queues": {"outbox": {name: series(points)
                                  for name, points in self.queues["outbox"].items()},
                       "pipeline": series(self.queues["pipeline"]),
                       "publish_backlog": series(self.queues["publish_backlog"])},
            "slowest": [{"package_id": movie.package_id, "code": movie.code,
                         "station": movie.station, "total_s": round(movie.on_screen_after or 0, 3),
                         "on_screen": (movie.first("on_screen") or movie.moments[0]).at_text,
                         "steps": {p.step.name: round(p.seconds, 3) for p in movie.passages
                                   if p.step.name != "publish"}}
                        for movie in self.slowest],
            "on_the_way": [{"package_id": p.package_id, "code": movie_code(p.package_id),
                            "step": p.step.name, "device": p.device,
                            "running_s": round(p.running(self.now), 3)}
                           for p in self.on_the_way],
        }


def insight(db: Database, now: float, zone: str, processor: str = "processor") -> Insight:
    """The numbers of the last hour and of the festival day (since local midnight)."""
    day_since, hour_since = day_start(now, zone), now - HOUR_S
    movies = list(load_movies(db, min(day_since, hour_since), processor).values())
    hours, per_station = finished_per_hour(movies, day_since, now, zone)
    moving = [movie.open for movie in movies if movie.open is not None]
    return Insight(now, zone, hour_since, day_since, step_stats(movies, hour_since),
                   step_stats(movies, day_since), hours, per_station,
                   queues(db, day_since), slowest(movies, day_since),
                   sorted(moving, key=lambda p: -p.running(now)))


# -- the slow-step alert ---------------------------------------------------------------------

def step_limit(thresholds: Thresholds, step: Step) -> float:
    """A step's limit in seconds (alerts.step_<name>_s)."""
    limit: float = getattr(thresholds, f"step_{step.name}_s")
    return limit


@dataclass(frozen=True, slots=True)
class SlowStep:
    """A step that took, or is taking, too long on one device: the worst movie of it."""

    step: Step
    device: str
    package_id: str
    seconds: float  # how long it took, or has run so far
    against: float  # what it was judged against: its limit, or factor x p95
    p95: float | None  # the recent p95, when that was the measure
    running: bool  # still unfinished (stuck)
    started: float = 0.0  # when its start event arrived (console clock)
    others: int = 0  # more movies stuck in the same step on the same device

    @property
    def code(self) -> str:
        """The movie's code."""
        return movie_code(self.package_id)


def slow_steps(movies: Iterable[Movie], now: float, th: Thresholds) -> list[SlowStep]:
    """What is slow now, one finding per (device, step).

    Stuck: a movie in a step for longer than its limit (console clock), for stuck_keep_s
    past it: one that will never move on (its outbox wiped, an event lost) then stops
    counting, so that its alert clears by itself. Slow: the step's latest finished passage
    on a device took longer than its limit, or than slow_factor x the p95 of the step's
    slow_window passages before it (once there are 10 of them, and only if it took
    slow_floor_s); it holds for slow_keep_s, or until a normal one follows.
    """
    movies = list(movies)
    found: dict[tuple[str, str], SlowStep] = {}
    stuck: dict[tuple[str, str], list[Passage]] = defaultdict(list)
    for movie in movies:
        if movie.open is not None:
            limit = step_limit(th, movie.open.step)
            if limit < movie.open.running(now) <= limit + th.stuck_keep_s:
                stuck[(movie.open.device, movie.open.step.name)].append(movie.open)
    for key, passages in stuck.items():
        worst = max(passages, key=lambda p: p.running(now))
        found[key] = SlowStep(worst.step, worst.device, worst.package_id, worst.running(now),
                              step_limit(th, worst.step), None, True, worst.start.received,
                              len(passages) - 1)
    finished: dict[str, list[Passage]] = defaultdict(list)
    for movie in movies:
        for passage in movie.passages:
            finished[passage.step.name].append(passage)
    for name, passages in finished.items():
        passages.sort(key=lambda p: p.end.id if p.end else 0)
        latest: dict[str, int] = {p.device: index for index, p in enumerate(passages)}
        for device, index in latest.items():
            passage = passages[index]
            assert passage.end is not None
            if (device, name) in found or now - passage.end.received > th.slow_keep_s:
                continue
            limit = step_limit(th, passage.step)
            before = [p.seconds for p in passages[:index]][-th.slow_window:]
            p95 = percentile(before, 95) if len(before) >= MIN_COMPLETIONS else None
            if passage.seconds > limit:
                found[(device, name)] = SlowStep(passage.step, device, passage.package_id,
                                                 passage.seconds, limit, None, False)
            elif p95 is not None and passage.seconds > th.slow_factor * p95 \
                    and passage.seconds >= th.slow_floor_s:
                found[(device, name)] = SlowStep(passage.step, device, passage.package_id,
                                                 passage.seconds, th.slow_factor * p95, p95,
                                                 False)
    return sorted(found.values(), key=lambda s: (s.device, STEPS.index(s.step)))


class StepWatch:
    """The slow-step findings for the alert engine; the events are read again only when
    new ones have arrived (or a minute has passed), since the engine asks every second."""

    def __init__(self, db: Database, processor: str) -> None:
        """Watch db's events; the processing unit is called processor."""
        self.db = db
        self.processor = processor
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] = ()
        self._movies: list[Movie] = []

    def check(self, now: float, thresholds: Thresholds) -> tuple[SlowStep, ...]:
        """The slow or stuck steps now."""
        with self._lock:
            newest = self.db.query("SELECT max(id) AS id FROM events")[0]["id"]
            key = (newest, int(now // 60))
            if key != self._key:
                self._movies = list(load_movies(self.db, now - WATCH_S,
                                                self.processor).values())
                self._key = key
            movies = self._movies
        return tuple(slow_steps(movies, now, thresholds))
