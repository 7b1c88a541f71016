"""The insight page (/insight, /api/insight) and a movie's story (/movies/<id or code>)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, jsonify, redirect, render_template, request
from flask import url_for as url
from markupsafe import Markup
from werkzeug.wrappers import Response

from moviepkg.ids import movie_code, normalize_code

from .charts import hourly_bars, lines, log_range, movie_bars, step_chart
from .insight import duration_text, insight
from .movies import RESTARTS, STEPS, Movie
from .story import build_story, find, local_times, story_json
from .views import _common as common
from .views import console

bp = Blueprint("insight", __name__)
WAIT = ("wait", "held up (failed, quarantined)")
SCREEN_STEPS = [*((step.name, step.label) for step in STEPS if step.name != "publish"), WAIT]


def _parts(movie: Movie, publish: bool = False) -> list[tuple[str, str, float]]:
    """A movie's steps (up to the big screen, or all), and the time it spent stopped
    (failed or quarantined) until an operator sent it on."""
    passages = [p for p in movie.passages if p.step.name != "publish"]
    parts = [(p.step.name, p.step.label, p.seconds) for p in passages]
    gap = (movie.on_screen_after or 0.0) - sum(seconds for *_, seconds in parts)
    if gap > 1:  # held up before the step an operator sent it on to
        sent_on = [i for i, p in enumerate(passages) if p.start.kind in RESTARTS]
        parts.insert(sent_on[0] if sent_on else len(parts), (*WAIT, gap))
    published = movie.step("publish")
    if publish and published is not None:
        parts.append(("publish", published.step.label, published.seconds))
    return parts


def _movie_bars(movies: list[Movie], title: str) -> Markup:
    """The slowest movies' chart: a bar per movie, linked to its story."""
    rows = [(movie.code, movie.station or "", url("insight.story_page", key=movie.package_id),
             _parts(movie)) for movie in movies]
    return movie_bars(rows, title, duration_text, SCREEN_STEPS)


def _insight_context() -> dict[str, Any]:
    """What the insight page shows, now."""
    ops = console()
    now, zone = ops.clock(), ops.settings.timezone
    found = insight(ops.db, now, zone, ops.settings.processor)
    local = ZoneInfo(zone)
    scale = log_range([value for window in (found.hour, found.day) for numbers in
                       window.values() for value in (numbers.min, numbers.avg, numbers.max)])

    def rows(window: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """(css name, label, numbers) per step, in order."""
        return [(step.name, step.label, window[step.name]) for step in STEPS]

    since = f"{datetime.fromtimestamp(found.hour_since, local):%H:%M}"
    charts = {
        "hour": step_chart(rows(found.hour), f"The last hour (since {since})", scale,
                           duration_text),
        "day": step_chart(rows(found.day), "Today (since midnight)", scale, duration_text),
        "hours": hourly_bars(found.hours, found.per_station,
                             "Movies finished per hour, per station"),
        "outbox": lines(list(found.queues["outbox"].items()), found.day_since, now,
                        "Movies waiting in each station's outbox", zone),
        "processor": lines([("in the pipeline", found.queues["pipeline"]),
                            ("waiting to publish", found.queues["publish_backlog"])],
                           found.day_since, now, "The processing unit's queues", zone),
        "slowest": _movie_bars(found.slowest, "Slowest today: shot finished → on the big "
                                              "screen"),
    }
    table = [{"label": step.label, "from": step.start, "to": step.end, "where": step.where,
              "hour": found.hour[step.name], "day": found.day[step.name]} for step in STEPS]
    moving = [{"code": movie_code(p.package_id), "package_id": p.package_id,
               "step": p.step.label, "where": p.step.where,
               "running": duration_text(p.running(now)),
               "since": f"{datetime.fromtimestamp(p.start.received, local):%H:%M:%S}"}
              for p in found.on_the_way[:15]]
    return {**common(ops, now), "charts": charts, "table": table, "moving": moving,
            "more_moving": max(0, len(found.on_the_way) - 15), "zone": zone,
            "day": f"{datetime.fromtimestamp(now, local):%A %d %B %Y}",
            "duration": duration_text, "total_today": sum(sum(counts) for counts in
                                                          found.per_station.values())}


@bp.route("/insight")
def insight_page() -> str:
    """How long each step takes, movies per hour, the queues, the slowest movies."""
    return render_template("insight.html", **_insight_context())


@bp.route("/api/insight")
def insight_api() -> Response:
    """The insight page's numbers as JSON."""
    ops = console()
    found = insight(ops.db, ops.clock(), ops.settings.timezone, ops.settings.processor)
    return jsonify(found.to_json())


@bp.route("/movies")
def find_movie() -> Response | tuple[str, int]:
    """The "find a movie" box: go to the story of a code or package id."""
    text = request.args.get("q", "").strip()
    ids, code = find(console().db, text)
    if not ids:
        return _unknown(text)
    return redirect(url("insight.story_page", key=ids[0] if len(ids) == 1 else code))


def _unknown(text: str) -> tuple[str, int]:
    """A page saying, in words, that no movie has this code or id (404)."""
    ops = console()
    return render_template("story.html", story=None, asked=text[:80],
                           **common(ops, ops.clock())), 404


@bp.route("/movies/<key>")
def story_page(key: str) -> str | tuple[str, int]:
    """A movie's whole story, by package id or code."""
    ops = console()
    now = ops.clock()
    ids, code = find(ops.db, key)
    if not ids:
        return _unknown(key)
    if len(ids) > 1:
        return render_template("story.html", story=None, asked=key, choices=ids,
                               **common(ops, now))
    story = build_story(ops.db, ids[0], code or normalize_code(key) or "", now,
                        ops.settings.processor)
    folder = ops.settings.posters_dir
    poster = folder is not None and (folder / f"{ids[0]}.jpg").is_file()
    chart = None
    if story.movie is not None and story.movie.passages:
        parts = _parts(story.movie, publish=True)
        chart = movie_bars([(story.code, story.station or "",
                             url("insight.story_page", key=ids[0]), parts)],
                           "Where its time went", duration_text,
                           [(name, label) for name, label, _ in parts], "single")
    return render_template("story.html", story=story, asked=key, poster=poster, chart=chart,
                           times=local_times(story, ops.settings.timezone),
                           duration=duration_text, **common(ops, now))


@bp.route("/api/movies/<key>")
def story_api(key: str) -> Response | tuple[Response, int]:
    """A movie's story as JSON (404 with an error for an unknown id or code)."""
    ops = console()
    now = ops.clock()
    ids, code = find(ops.db, key)
    if len(ids) != 1:
        return jsonify({"error": "no movie with this id or code" if not ids else
                        "several movies have this code", "package_ids": ids}), \
            404 if not ids else 409
    return jsonify(story_json(build_story(ops.db, ids[0], code or "", now,
                                          ops.settings.processor), now))
