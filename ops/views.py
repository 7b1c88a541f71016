"""The pages: the overview, a device's page, their live fragments, the mute forms."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import flask
from flask import Blueprint, abort, current_app, redirect, render_template, request, session
from flask import url_for as url
from werkzeug.wrappers import Response

from moviepkg.ids import is_package_id
from moviepkg.telemetry import is_device
from moviepkg.times import parse_utc

from .audit import panel
from .charts import line_chart
from .console import Console
from .db import Row
from .fleet import Fleet, load_fleet
from .present import (
    LABELS,
    ago,
    clock_time,
    field_text,
    other_tile,
    overview,
    processor_tile,
    screen_tile,
    station_tile,
    uplink_tile,
)
from .recorder import METRIC_LABELS
from .rules import ADVICE, Condition, worst

bp = Blueprint("pages", __name__)
MUTE_CHOICES = {"15": 15 * 60, "60": 3600, "240": 4 * 3600, "1440": 86400}
HISTORY_S = 6 * 3600.0


def console() -> Console:
    """The app's console."""
    found: Console = current_app.extensions["stopmo.console"]
    return found


def _look() -> tuple[Console, float, Fleet, list[Condition]]:
    ops = console()
    now = ops.clock()
    fleet = load_fleet(ops.db, ops.settings.stations, ops.settings.processor)
    return ops, now, fleet, ops.engine.conditions(now)


def alert_rows(ops: Console, now: float, device: str | None = None) -> list[dict[str, Any]]:
    """The open alerts as the page shows them: what, since when, heard or quiet, advice."""
    mutes = ops.db.mutes(now)
    rows = []
    for row in ops.db.open_alerts():
        if device is not None and row["device"] != device:
            continue
        quiet = ops.engine.quiet(row["device"], now, mutes)
        rows.append({**row, "since": clock_time(row["opened"], ops.settings.timezone),
                     "ago": ago(row["opened"], now), "quiet": quiet,
                     "loud": not quiet, "advice": ADVICE.get(row["rule"], "")})
    return sorted(rows, key=lambda r: (r["severity"] != "red", -r["opened"]))


def _common(ops: Console, now: float) -> dict[str, Any]:
    return {"now": clock_time(now, ops.settings.timezone), "user": session.get("user"),
            "broker": ops.broker_connected, "hours": str(ops.settings.opening_hours),
            "open": ops.settings.opening_hours.is_open(
                datetime.fromtimestamp(now, ZoneInfo("UTC")), ops.settings.timezone)}


def _overview_context() -> dict[str, Any]:
    ops, now, fleet, conditions = _look()
    recent = [row for row in ops.db.recent_alerts(now - 3600) if row["resolved"] is not None]
    mutes = [{**row, "until_text": clock_time(row["until"], ops.settings.timezone)}
             for row in ops.db.mutes(now).values()]
    return {**_common(ops, now), **overview(fleet, conditions, now),
            "alerts": alert_rows(ops, now), "mutes": mutes,
            "resolved": [{**row, "at": clock_time(row["resolved"], ops.settings.timezone)}
                         for row in recent[:8]]}


@bp.route("/")
def overview_page() -> str:
    """Everything at a glance."""
    return render_template("overview.html", **_overview_context())


@bp.route("/live/overview")
def overview_live() -> str:
    """The overview's changing part, fetched every few seconds by ops.js."""
    return render_template("_overview.html", **_overview_context())


def _event_rows(ops: Console, device: str) -> list[dict[str, Any]]:
    zone = ZoneInfo(ops.settings.timezone)
    rows = []
    for row in ops.db.events(device, limit=50):
        try:
            when = f"{parse_utc(row['at']).astimezone(zone):%d %b %H:%M:%S}"
        except ValueError:
            when = row["at"]
        rows.append({**row, "when": when})
    return rows


def _device_context(name: str) -> dict[str, Any]:
    if not is_device(name):
        abort(404)
    ops, now, fleet, conditions = _look()
    device = fleet.devices.get(name)
    if device is None:
        abort(404)
    if device.role == "station":
        tiles = [station_tile(device, conditions, now)]
    elif device.role == "processor":
        tiles = [make(device, conditions, now)
                 for make in (processor_tile, screen_tile, uplink_tile)]
    else:
        tiles = [other_tile(device, conditions, now)]
    colour = worst([c for c in conditions if c.device == name])
    programs = []
    for program_name in device.expected:
        program = device.program(program_name)
        fields = {**program.fields, **program.extra}
        programs.append({"name": program_name, "online": program.online,
                         "presence_ago": ago(program.presence_received, now),
                         "state_ago": ago(program.state_received, now),
                         "fields": [(key.replace("_", " "), field_text(key, value))
                                    for key, value in sorted(fields.items())]})
    since = now - HISTORY_S
    charts = [line_chart(ops.db.samples(name, metric, since), since, now, label,
                         ops.settings.timezone)
              for metric, label in METRIC_LABELS.items()
              if metric.split(".")[0] in device.programs]
    muted: Row | None = ops.db.mutes(now).get(name)
    return {**_common(ops, now), "device": device, "tiles": tiles,
            "colour": colour, "label": LABELS[colour], "programs": programs,
            "charts": charts, "events": _event_rows(ops, name),
            "alerts": alert_rows(ops, now, name), "mute_choices": MUTE_CHOICES,
            **panel(ops, device, now),
            "muted": muted and {**muted, "until_text": clock_time(muted["until"],
                                                                 ops.settings.timezone)}}


@bp.route("/posters/<package_id>.jpg")
def poster(package_id: str) -> Response:
    """The poster of a movie on this processing unit (what the big screen plays)."""
    folder = console().settings.posters_dir
    if folder is None or not is_package_id(package_id):
        abort(404)
    path = folder / f"{package_id}.jpg"
    if not path.is_file():
        abort(404)
    return flask.send_file(path, mimetype="image/jpeg", max_age=3600)


@bp.route("/devices/<name>")
def device_page(name: str) -> str:
    """One device: its programs, recent events, history charts, the mute form."""
    return render_template("device.html", **_device_context(name))


@bp.route("/live/devices/<name>")
def device_live(name: str) -> str:
    """A device page's changing part."""
    return render_template("_device.html", **_device_context(name))


@bp.route("/devices/<name>/mute", methods=["POST"])
def mute(name: str) -> Response:
    """Keep a device's alerts quiet for a while."""
    seconds = MUTE_CHOICES.get(request.form.get("minutes", ""))
    if not is_device(name) or seconds is None:
        abort(400, "Choose how long to mute.")
    ops = console()
    now = ops.clock()
    ops.db.mute(name, now + seconds, str(session.get("user")), now)
    return redirect(url("pages.device_page", name=name))


@bp.route("/devices/<name>/unmute", methods=["POST"])
def unmute(name: str) -> Response:
    """Let a device's alerts be heard again."""
    if not is_device(name):
        abort(400)
    console().db.unmute(name)
    back = request.form.get("back") == "overview"
    return redirect(url("pages.overview_page") if back else url("pages.device_page", name=name))
