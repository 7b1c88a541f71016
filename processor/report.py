"""`processor status`: where every package stands, and the publish queue at a glance.

Read from the state files and the take-down list alone, so it works whether or not the
daemon runs. Times are the festival's local time (settings.timezone), as an operator
reads them. Movies taken down at a family's request are listed with who took them down
and when; so are take-downs still waiting for their movie to arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from moviepkg.ids import movie_code

from .state import Listed, PackageState


def clock_time(epoch: float, tz: ZoneInfo) -> str:
    """HH:MM in the festival's time zone ("?" for never)."""
    return datetime.fromtimestamp(epoch, tz).strftime("%H:%M") if epoch else "?"


def _since(epoch: float, now: float) -> str:
    """How long ago epoch was, in minutes (and hours, past one)."""
    minutes = max(0, int(now - epoch)) // 60
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def taken_down_words(state: PackageState, tz: ZoneInfo) -> str:
    """When and by whom a movie was taken down, where it still is."""
    words = f"at {clock_time(state.taken_down_at, tz)} by {state.taken_down_by}"
    if state.keep_on_screen:
        words += ", still on the big screen"
    if not state.unpublished_at:
        words += ", NOT yet removed from the store: take it down again"
    return words


def package_line(state: PackageState, tz: ZoneInfo) -> str:
    """One line per package: id, status, tries, last error (the waiting ones say more)."""
    if state.taken_down and not state.gave_up:
        return f"{state.package_id}  taken-down  {taken_down_words(state, tz)}"
    if state.waiting_to_publish:
        error = f", last error: {state.last_error}" if state.last_error else ""
        return (f"{state.package_id}  waiting-to-publish  on screen, waiting to publish since "
                f"{clock_time(state.waiting_since, tz)}, {state.attempts} tries{error}")
    error = f"  {state.last_error}" if state.last_error else ""
    return f"{state.package_id}  {state.status}  attempts={state.attempts}{error}"


def queue_summary(states: Iterable[PackageState], now: float, tz: ZoneInfo) -> dict[str, Any]:
    """The publish queue in numbers: how many wait, since when, the latest error."""
    waiting = sorted((s for s in states if s.waiting_to_publish),
                     key=lambda s: (s.created_at, s.package_id))
    latest = max(waiting, key=lambda s: s.updated_at if s.last_error else 0.0, default=None)
    oldest = min((s.waiting_since for s in waiting), default=0.0)
    return {"waiting": len(waiting),
            "oldest_waiting_since": clock_time(oldest, tz) if waiting else None,
            "oldest_waiting_seconds": round(now - oldest) if waiting else 0,
            "tries": sum(s.attempts for s in waiting),
            "last_error": latest.last_error if latest and latest.last_error else None}


def summary_line(summary: dict[str, Any], now: float) -> str:
    """The queue in one sentence for the operator."""
    if not summary["waiting"]:
        return "publish queue: empty"
    line = (f"publish queue: {summary['waiting']} movie(s) on screen waiting to publish, "
            f"oldest since {summary['oldest_waiting_since']} "
            f"({_since(now - summary['oldest_waiting_seconds'], now)})")
    if summary["last_error"]:
        line += f"; last error: {summary['last_error']}"
    return line


def pending_takedowns(takedowns: Iterable[Listed],
                      states: Iterable[PackageState]) -> list[Listed]:
    """The take-downs on the list whose movie is not here yet (no state carries them)."""
    done = [s.package_id for s in states if s.taken_down]
    return [entry for entry in takedowns
            if not any(entry.matches(package_id) for package_id in done)]


def pending_line(entry: Listed, tz: ZoneInfo) -> str:
    """One line per take-down waiting for its movie: what it names, when, by whom."""
    line = (f"{entry.package_id or entry.code}  pending-take-down  at "
            f"{clock_time(entry.at, tz)} by {entry.by}: not here yet; when it arrives it is "
            f"never published{'' if entry.keep_on_screen else ', nor shown'}")
    if not entry.unpublished_at:
        line += "; the store was NOT checked: take it down again once it answers"
    return line


def status_document(states: list[PackageState], now: float, tz: ZoneInfo,
                    takedowns: Sequence[Listed] = ()) -> dict[str, Any]:
    """Everything `processor status --json` prints (and telemetry may send)."""
    counts: dict[str, int] = {}
    for state in states:
        counts[state.status] = counts.get(state.status, 0) + 1
    return {"packages": counts, "publish_queue": queue_summary(states, now, tz),
            "waiting": [{"id": s.package_id, "since": s.waiting_since, "tries": s.attempts,
                         "last_error": s.last_error, "next_try_at": s.next_attempt_at}
                        for s in states if s.waiting_to_publish],
            "taken_down": [{"package_id": s.package_id, "code": movie_code(s.package_id),
                            "at": s.taken_down_at, "at_local": clock_time(s.taken_down_at, tz),
                            "by": s.taken_down_by, "keep_on_screen": s.keep_on_screen,
                            "removed_from_store": bool(s.unpublished_at)}
                           for s in states if s.taken_down],
            "taken_down_pending": [{"package_id": entry.package_id or None, "code": entry.code,
                                    "at": entry.at, "at_local": clock_time(entry.at, tz),
                                    "by": entry.by, "keep_on_screen": entry.keep_on_screen,
                                    "store_checked": bool(entry.unpublished_at)}
                                   for entry in pending_takedowns(takedowns, states)]}
