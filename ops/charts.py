"""Small history charts as inline SVG, drawn on the server (no script, no library)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 400, 150, 40, 24, 10


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def line_chart(points: Sequence[tuple[float, float]], since: float, now: float, label: str,
               zone: str) -> Markup:
    """A line of (time, value) points from since to now, with its range written out."""
    title = escape(label)
    if not points:
        return Markup(f'<p class="nodata">{title}: no history yet.</p>')
    values = [value for _, value in points]
    low, high = min(values), max(values)
    if high - low < 1e-9:  # a flat line: give it room, without going below zero for counts
        low, high = (low - 1, high + 1) if low >= 1 or low < 0 else (0.0, high + 1)
    span = max(now - since, 1.0)
    plot_w, plot_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP

    def x(t: float) -> float:
        return PAD_LEFT + plot_w * (min(max(t, since), now) - since) / span

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - (v - low) / (high - low))

    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    local = ZoneInfo(zone)
    start, end = (f"{datetime.fromtimestamp(t, local):%H:%M}" for t in (since, now))
    summary = escape(f"{label}: from {_number(min(values))} to {_number(max(values))}, "
                     f"last {_number(values[-1])}")
    bottom = HEIGHT - PAD_BOTTOM
    return Markup(
        f'<figure class="chart"><figcaption>{title}</figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{summary}">'
        f'<line class="axis" x1="{PAD_LEFT}" y1="{bottom}" x2="{WIDTH - 4}" y2="{bottom}"/>'
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{bottom}"/>'
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 12}" text-anchor="end">{_number(high)}</text>'
        f'<text x="{PAD_LEFT - 6}" y="{bottom}" text-anchor="end">{_number(low)}</text>'
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 4}">{start}</text>'
        f'<text x="{WIDTH - 4}" y="{HEIGHT - 4}" text-anchor="end">{end}</text>'
        f'<polyline class="line" points="{line}"/>'
        f'{_last_dot(x(points[-1][0]), y(points[-1][1]))}</svg></figure>')


def _last_dot(cx: float, cy: float) -> str:
    return f'<circle class="dot" cx="{cx:.1f}" cy="{cy:.1f}" r="3"/>'
