"""A movie's way as the console heard it: its events, the steps between them, where it is.

A movie's way is a chain of events (moviepkg.telemetry.EVENTS); a step runs from one
event to the next (STEPS). Its duration is the difference of the two events' own `at`
times (UTC, the sending device's clock), never of the times the console received them:
while the broker is away a program keeps its events and sends them all when it is back,
so their received times say when the broker returned, not when the steps happened. A step
that spans two boxes (receive: the station says `delivered`, the processing unit says
`received`) spans two clocks too, so a small offset could make it negative: every duration
is clamped at zero. How long an unfinished step has been running is judged with the
console's own clock instead (since its start event arrived), as every other freshness is:
a station whose clock is behind must not make a movie look stuck.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from moviepkg.ids import movie_code
from moviepkg.times import parse_utc

from .db import Database, Row

ENDINGS = frozenset({"quarantined", "failed", "deleted", "taken_down"})  # the way stops
RESTARTS = frozenset({"retried", "released"})  # an operator sends it on again
PROBLEMS = frozenset({"quarantined", "failed", "publish_failed"})


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a movie's way: from one event to the next."""

    name: str  # also the alert's subject and the Thresholds field `step_<name>_s`
    label: str
    start: str  # the event that starts it
    end: str  # the event that ends it
    where: str  # who does it, in words


STEPS = (
    Step("deliver", "deliver", "shot_finished", "delivered", "the station's sync agent"),
    Step("receive", "receive", "delivered", "received", "the processor's inbox"),
    Step("validate", "validate", "received", "validated", "the processor"),
    Step("encode", "encode", "validated", "encoded", "the processor's ffmpeg"),
    Step("to_screen", "to screen", "encoded", "on_screen", "the big screen's playlist"),
    Step("publish", "publish", "on_screen", "published", "the uplink and the store"),
)
CHAIN = ("shot_finished", *(step.end for step in STEPS))


@dataclass(frozen=True, slots=True)
class Moment:
    """One event of a movie, its `at` read as epoch seconds."""

    id: int
    device: str
    program: str
    kind: str
    package_id: str
    at: float  # the device's clock
    at_text: str
    detail: str
    received: float  # the console's clock


@dataclass(frozen=True, slots=True)
class Passage:
    """A movie's way through one step: started, and finished or not yet."""

    package_id: str
    step: Step
    device: str  # the device that finished it (or is to finish it)
    start: Moment
    end: Moment | None = None

    @property
    def seconds(self) -> float:
        """How long the step took (its events' `at` times), at least zero."""
        assert self.end is not None, "an unfinished step has no duration"
        return max(0.0, self.end.at - self.start.at)

    def running(self, now: float) -> float:
        """How long an unfinished step has run, on the console's clock."""
        return max(0.0, now - self.start.received)


@dataclass(slots=True)
class Movie:
    """Everything the console heard about one movie, and its steps."""

    package_id: str
    moments: list[Moment]  # in order of `at`, then of arrival
    passages: list[Passage] = field(default_factory=list)  # finished ones, in STEPS order
    open: Passage | None = None  # the step it is in now, if any
    publish: bool | None = None  # PUBLISH or NOPUBLISH, when a shot_finished/received said
    stopped: Moment | None = None  # quarantined, failed, deleted or taken down (not since sent on)

    @property
    def code(self) -> str:
        """The movie's short code."""
        return movie_code(self.package_id)

    @property
    def station(self) -> str | None:
        """The station that shot it (the device of its first shot_finished)."""
        shot = self.first("shot_finished")
        return shot.device if shot else None

    def first(self, kind: str) -> Moment | None:
        """The earliest event of a kind."""
        return next((m for m in self.moments if m.kind == kind), None)

    def step(self, name: str) -> Passage | None:
        """The finished passage through a step, if any."""
        return next((p for p in self.passages if p.step.name == name), None)

    @property
    def on_screen_after(self) -> float | None:
        """Seconds from shot_finished to on_screen, when both happened."""
        shot, shown = self.first("shot_finished"), self.first("on_screen")
        return None if shot is None or shown is None else max(0.0, shown.at - shot.at)


def _moment(row: Row) -> Moment | None:
    """A row of the events table as a Moment (None when its `at` is not a time)."""
    try:
        at = parse_utc(row["at"]).timestamp()
    except (TypeError, ValueError):
        return None
    return Moment(row["id"], row["device"], row["program"], row["kind"], row["package_id"], at,
                  row["at"], row["detail"] or "", row["received"])


def build_movie(package_id: str, moments: Iterable[Moment], processor: str = "processor"
                ) -> Movie:
    """A movie's finished steps and the one it is in now, from its events.

    A step ends with the first event that ends it and starts with the latest start event
    before that (or an operator's retry or release in between, which sends it on again).
    """
    movie = Movie(package_id, sorted(moments, key=lambda m: (m.at, m.id)))
    kinds: dict[str, list[Moment]] = defaultdict(list)
    for moment in movie.moments:
        kinds[moment.kind].append(moment)
    for moment in movie.moments:
        if moment.kind in ("shot_finished", "received") and moment.detail in ("PUBLISH",
                                                                              "NOPUBLISH"):
            movie.publish = moment.detail == "PUBLISH"
            break
    restarts = [m for m in movie.moments if m.kind in RESTARTS]
    for step in STEPS:
        starts, ends = kinds.get(step.start), kinds.get(step.end)
        if not starts or not ends or (step.name == "publish" and movie.publish is False):
            continue
        end = ends[0]
        start = max((m for m in starts if m.at <= end.at), default=starts[0],
                    key=lambda m: (m.at, m.id))
        start = max((m for m in restarts if start.at < m.at <= end.at), default=start,
                    key=lambda m: (m.at, m.id))
        movie.passages.append(Passage(package_id, step, end.device, start, end))
    # Where it is now: after the last event of its chain, unless something stopped it.
    last_word = max((m for m in movie.moments if m.kind in ENDINGS | RESTARTS),
                    default=None, key=lambda m: m.id)
    if last_word is not None and last_word.kind in ENDINGS:
        movie.stopped = last_word
        return movie
    furthest = max((CHAIN.index(m.kind) for m in movie.moments if m.kind in CHAIN),
                   default=None)
    if furthest is None or furthest == len(STEPS) or \
            (STEPS[furthest].name == "publish" and movie.publish is False):
        return movie
    step = STEPS[furthest]
    start = max(kinds[step.start], key=lambda m: m.id)
    start = max((m for m in restarts if m.id > start.id), default=start, key=lambda m: m.id)
    device = start.device if step.name == "deliver" else processor
    movie.open = Passage(package_id, step, device, start)
    return movie


def load_movies(db: Database, since: float, processor: str = "processor") -> dict[str, Movie]:
    """Every movie with an event received since a time (console clock), with all its events."""
    rows = db.query("SELECT * FROM events WHERE package_id IN (SELECT DISTINCT package_id "
                    "FROM events WHERE received >= ?) ORDER BY id", (since,))
    moments: dict[str, list[Moment]] = defaultdict(list)
    for row in rows:
        moment = _moment(row)
        if moment is not None:
            moments[moment.package_id].append(moment)
    return {package_id: build_movie(package_id, found, processor)
            for package_id, found in moments.items()}


def load_movie(db: Database, package_id: str, processor: str = "processor") -> Movie:
    """One movie, from all its events."""
    rows = db.query("SELECT * FROM events WHERE package_id = ? ORDER BY id", (package_id,))
    return build_movie(package_id, (m for m in map(_moment, rows) if m is not None), processor)
