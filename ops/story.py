"""A movie's story: its whole way, station to store, and what operators did to it, in order.

Built from the event stream (ops.insight reads a movie's steps) and the commands' audit
log (Database.movie_commands: those naming the package id, its code or a quarantine
entry), said in the audit log's own words (ops.audit, ops.commands). Times are shown in
the console's time zone; durations come from the events' own `at` times, as on the
insight page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from moviepkg.ids import is_package_id, movie_code, normalize_code
from moviepkg.times import format_utc

from .audit import outcome
from .commands import MOVIE_ARGS, arguments
from .db import Database, Row
from .insight import duration_text
from .movies import PROBLEMS, RESTARTS, Movie, build_movie, load_movie

WORDS = {
    "shot_started": "Shooting started", "shot_finished": "Shot finished",
    "delivered": "Delivered to the processing unit", "received": "Received",
    "validated": "Validated", "encoded": "Encoded", "on_screen": "On the big screen",
    "published": "Published on the website", "quarantined": "Quarantined",
    "failed": "Failed (its retries used up)", "publish_failed": "Publishing failed",
    "retried": "Retried", "released": "Released from quarantine", "deleted": "Deleted",
    "taken_down": "Taken down",
}
OPERATOR = RESTARTS | {"deleted", "taken_down"}  # what an operator does to a movie


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the story: an event, or a command an operator sent."""

    when: float  # epoch: the event's `at`, or when the command was sent
    kind: str  # the event kind, or "command"
    what: str
    device: str
    program: str
    detail: str = ""
    after: float | None = None  # seconds since the previous event
    step: str = ""  # the step this event ends (ops.insight.STEPS' name)
    step_label: str = ""
    step_s: float | None = None  # how long that step took
    tone: str = ""  # "problem", "action" or ""
    sender: str = ""  # a command's operator
    outcome: str = ""  # a command's status (ops.audit.status): done, refused, ... expired
    outcome_label: str = ""  # and in words, as the audit log says it


@dataclass(slots=True)
class Story:
    """Everything the story page says about one movie."""

    package_id: str | None
    code: str
    movie: Movie | None
    lines: list[Line] = field(default_factory=list)
    status: str = ""

    @property
    def station(self) -> str | None:
        """The station that shot it."""
        return self.movie.station if self.movie else None


def find(db: Database, text: str) -> tuple[list[str], str | None]:
    """The package ids a typed id or code stands for, and the code (None: not a code).

    A package id the console heard of comes first (a code in lowercase is a valid package
    id too); package ids are lowercase, so one typed in capitals is found as well.
    """
    key = text.strip().lower()
    if is_package_id(key) and db.query("SELECT 1 FROM events WHERE package_id = ? LIMIT 1",
                                       (key,)):
        return [key], movie_code(key)
    code = normalize_code(key)
    if code is not None:
        rows = db.query("SELECT DISTINCT package_id FROM events WHERE code = ? "
                        "ORDER BY package_id", (code,))
        if rows:
            return [row["package_id"] for row in rows], code
    if is_package_id(key) and db.movie_commands(key, movie_code(key), limit=1):
        return [key], movie_code(key)
    return [], code


def _command_line(row: Row, now: float) -> Line:
    """A line of the story for one command of the audit log (without the movie's own id)."""
    status, label, words = outcome(row, now)
    shown = arguments(row["args"], leave_out=MOVIE_ARGS)
    return Line(row["sent"], "command",
                f"{row['sender']} sent “{row['name']}”" + (f" ({shown})" if shown else ""),
                row["device"], row["program"], detail=words, tone="action",
                sender=row["sender"], outcome=status, outcome_label=label)


def _status(movie: Movie | None, now: float) -> str:
    """Where the movie is now, in words."""
    if movie is None or not movie.moments:
        return "no event of this movie has reached the console"
    if movie.stopped is not None:
        said = f": {movie.stopped.detail}" if movie.stopped.detail else ""
        return f"{WORDS[movie.stopped.kind].lower()}{said}"
    if movie.open is not None:
        step = movie.open.step
        return (f"in {step.label} ({step.where}) for "
                f"{duration_text(movie.open.running(now))}")
    if movie.first("published"):
        return "on the big screen and published"
    if movie.first("on_screen"):
        return "on the big screen (NOPUBLISH: not published)"
    return f"last heard: {WORDS[movie.moments[-1].kind].lower()}"


def build_story(db: Database, package_id: str | None, code: str, now: float,
                processor: str = "processor") -> Story:
    """A movie's story: its events in order with the time since the previous one, the
    step each ends and how long it took, problems and operators' actions marked, and the
    commands about it, among them by time."""
    movie = load_movie(db, package_id, processor) if package_id else None
    story = Story(package_id, code, movie)
    ends = {p.end.id: p for p in movie.passages if p.end is not None} if movie else {}
    previous: float | None = None
    for moment in movie.moments if movie else []:
        passage = ends.get(moment.id)
        tone = "problem" if moment.kind in PROBLEMS else \
            "action" if moment.kind in OPERATOR else ""
        story.lines.append(Line(
            moment.at, moment.kind, WORDS.get(moment.kind, moment.kind), moment.device,
            moment.program, moment.detail,
            None if previous is None else max(0.0, moment.at - previous),
            passage.step.name if passage else "", passage.step.label if passage else "",
            passage.seconds if passage else None, tone))
        previous = moment.at
    names = [name for name in (package_id, code) if name]
    story.lines += [_command_line(row, now) for row in db.movie_commands(*names)]
    story.lines.sort(key=lambda line: line.when)  # stable: events keep their order
    story.status = _status(movie, now)
    return story


def story_json(story: Story, now: float) -> dict[str, Any]:
    """The /api/movies/<id> document."""
    movie = story.movie or build_movie(story.package_id or "", [])
    return {
        "package_id": story.package_id, "code": story.code, "station": story.station,
        "publish": movie.publish, "status": story.status,
        "stopped": movie.stopped.kind if movie.stopped else None,
        "in_step": None if movie.open is None else {
            "step": movie.open.step.name, "device": movie.open.device,
            "running_s": round(movie.open.running(now), 3)},
        "on_screen_after_s": None if movie.on_screen_after is None
        else round(movie.on_screen_after, 3),
        "steps": [{"step": p.step.name, "seconds": round(p.seconds, 3),
                   "device": p.device} for p in movie.passages],
        "timeline": [{"at": format_utc(datetime.fromtimestamp(line.when, UTC), millis=True),
                      "kind": line.kind, "what": line.what, "device": line.device,
                      "program": line.program, "detail": line.detail,
                      "after_s": None if line.after is None else round(line.after, 3),
                      "step": line.step or None,
                      "step_s": None if line.step_s is None else round(line.step_s, 3),
                      "tone": line.tone or None, "sender": line.sender or None,
                      "outcome": line.outcome or None} for line in story.lines],
    }


def local_times(story: Story, zone: str) -> list[tuple[str, str]]:
    """Each line's (date when it changes, else "", time) in the console's time zone."""
    local, found, day = ZoneInfo(zone), [], ""
    for line in story.lines:
        when = datetime.fromtimestamp(line.when, local)
        today = f"{when:%a %d %b}"
        found.append((today if today != day else "", f"{when:%H:%M:%S}"))
        day = today
    return found
