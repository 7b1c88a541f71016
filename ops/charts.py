"""Charts as inline SVG, drawn on the server (no script, no library): a device's history,
and the insight page's step durations, movies per hour, queues and slowest movies."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from .insight import Stats

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


# -- the insight page's charts: bars and lines that read at a glance -------------------------

# Ticks of the duration axis (seconds), drawn on a log scale: a 1 s validation and a
# 10 min publish both stay visible on one chart.
LOG_TICKS = {0.1: "0.1 s", 1.0: "1 s", 10.0: "10 s", 60.0: "1 min", 600.0: "10 min",
             3600.0: "1 h", 36000.0: "10 h"}
_WIDE = 640


def _t(x: float, y: float, text: object, css: str = "", anchor: str = "start") -> str:
    """A text element, escaped."""
    klass = f' class="{css}"' if css else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>'
            f'{escape(str(text))}</text>')


def _figure(title: str, summary: str, height: float, body: str, css: str = "") -> Markup:
    """A chart's figure: caption and SVG, with its summary for screen readers."""
    return Markup(
        f'<figure class="chart wide {css}"><figcaption>{escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {_WIDE} {height:.0f}" role="img" aria-label="{escape(summary)}">'
        f'{body}</svg></figure>')


def _legend(names: Sequence[tuple[str, str]], x0: float, y0: float = 16) -> tuple[str, float]:
    """Coloured squares and names ((css class, name)), wrapped in rows; and its height."""
    parts, x, y = [], x0, y0
    for css, name in names:
        wide = 26 + 7.2 * len(name)
        if x > x0 and x + wide > _WIDE:
            x, y = x0, y + 20
        parts.append(f'<rect class="{css}" x="{x:.1f}" y="{y - 11:.1f}" width="12" '
                     f'height="12" rx="2"/>{_t(x + 16, y, name, "legend")}')
        x += wide + 8
    return "".join(parts), y - y0 + 20


def log_range(values: Sequence[float | None]) -> tuple[float, float]:
    """The ticks (seconds) just around values, for a log-scale duration axis."""
    ticks = list(LOG_TICKS)
    found = [value for value in values if value is not None and value > 0]
    low = max((t for t in ticks if t <= min(found, default=1.0)), default=ticks[0])
    high = min((t for t in ticks if t >= max(found, default=10.0)), default=ticks[-1])
    if high <= low:
        high = ticks[min(ticks.index(low) + 1, len(ticks) - 1)]
    return low, high


def step_chart(rows: Sequence[tuple[str, str, Stats]], title: str,
               scale: tuple[float, float], duration: Callable[[float | None], str]) -> Markup:
    """Per step (css name, label, numbers): a bar to the average, a whisker from the
    shortest to the longest, a mark at the p95; on a log scale shared by both windows."""
    low, high = scale
    left, right, top, row_h = 92, 138, 8, 40
    plot_w = _WIDE - left - right
    height = top + row_h * len(rows) + 26
    bottom = height - 22

    def x(seconds: float) -> float:
        """Where a duration falls on the log scale."""
        value = min(max(seconds, low), high)
        return left + plot_w * math.log(value / low) / math.log(high / low)

    body = []
    for tick, name in LOG_TICKS.items():
        if low <= tick <= high:
            body.append(f'<line class="grid" x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" '
                        f'y2="{bottom}"/>{_t(x(tick), height - 6, name, "tick", "middle")}')
    summary = [title]
    for index, (css, label, numbers) in enumerate(rows):
        middle = top + index * row_h + 16
        body.append(_t(left - 8, middle + 5, label, "label", "end"))
        body.append(_t(left - 8, middle + 20, f"{numbers.count} done", "small", "end"))
        if numbers.count == 0 or numbers.avg is None or numbers.min is None \
                or numbers.max is None or numbers.p95 is None:
            body.append(_t(left + 6, middle + 5, "none yet", "small"))
            summary.append(f"{label}: none")
            continue
        tip = (f"{label}: {numbers.count} done, quickest {duration(numbers.min)}, average "
               f"{duration(numbers.avg)}, p95 {duration(numbers.p95)}, slowest "
               f"{duration(numbers.max)}")
        summary.append(tip)
        body.append(
            f'<g><title>{escape(tip)}</title>'
            f'<rect class="bar step-{css}" x="{left}" y="{middle - 8}" '
            f'width="{max(x(numbers.avg) - left, 2):.1f}" height="16" rx="2"/>'
            f'<line class="whisker" x1="{x(numbers.min):.1f}" y1="{middle}" '
            f'x2="{x(numbers.max):.1f}" y2="{middle}"/>'
            f'<line class="whisker" x1="{x(numbers.min):.1f}" y1="{middle - 6}" '
            f'x2="{x(numbers.min):.1f}" y2="{middle + 6}"/>'
            f'<line class="whisker" x1="{x(numbers.max):.1f}" y1="{middle - 6}" '
            f'x2="{x(numbers.max):.1f}" y2="{middle + 6}"/>'
            f'<line class="p95" x1="{x(numbers.p95):.1f}" y1="{middle - 11}" '
            f'x2="{x(numbers.p95):.1f}" y2="{middle + 11}"/></g>')
        body.append(_t(_WIDE - right + 12, middle + 5, f"avg {duration(numbers.avg)}",
                       "value"))
        body.append(_t(_WIDE - right + 12, middle + 20, f"p95 {duration(numbers.p95)}",
                       "small"))
    body.append(f'<line class="axis" x1="{left}" y1="{bottom}" x2="{_WIDE - right}" '
                f'y2="{bottom}"/>')
    return _figure(title, "; ".join(summary), height, "".join(body), "steps")


def _nice_max(value: float) -> int:
    """A round upper end for a count axis."""
    if value <= 5:
        return max(1, math.ceil(value))
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return math.ceil(step * magnitude)
    return math.ceil(value)


def hourly_bars(hours: Sequence[str], series: Mapping[str, Sequence[int]],
                title: str) -> Markup:
    """Bars per hour, one per station side by side, with each hour's total above them."""
    if not hours:
        return Markup(f'<p class="nodata">{escape(title)}: no movie yet today.</p>')
    names = list(series)
    totals = [sum(counts[i] for counts in series.values()) for i in range(len(hours))]
    most = _nice_max(max(max(counts, default=0) for counts in series.values()))
    left = 36
    legend, legend_h = _legend([(f"series-{i % 8}", name) for i, name in enumerate(names)],
                               left)
    top = legend_h + 24
    height = top + 200
    bottom = height - 24
    plot_w, plot_h = _WIDE - left - 6, bottom - top
    group = plot_w / len(hours)
    bar = group * 0.8 / max(len(names), 1)
    body = [legend]
    for tick in sorted({0, most // 2, most}):
        y = bottom - plot_h * tick / most
        body.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{_WIDE - 6}" '
                    f'y2="{y:.1f}"/>{_t(left - 6, y + 5, tick, "tick", "end")}')
    every = max(1, math.ceil(len(hours) / 12))
    for h, hour in enumerate(hours):
        x0 = left + h * group + group * 0.1
        for s, name in enumerate(names):
            count = series[name][h]
            if count:
                tall = plot_h * count / most
                body.append(f'<rect class="series-{s % 8}" x="{x0 + s * bar:.1f}" '
                            f'y="{bottom - tall:.1f}" width="{max(bar - 1, 1):.1f}" '
                            f'height="{tall:.1f}"><title>{escape(name)}, {escape(hour)}: '
                            f'{count}</title></rect>')
        if totals[h]:
            tallest = max(series[name][h] for name in names)
            body.append(_t(left + (h + 0.5) * group, bottom - plot_h * tallest / most - 5,
                           totals[h], "total", "middle"))
        if h % every == 0:
            body.append(_t(left + (h + 0.5) * group, height - 6, hour, "tick", "middle"))
    body.append(f'<line class="axis" x1="{left}" y1="{bottom}" x2="{_WIDE - 6}" '
                f'y2="{bottom}"/>')
    summary = f"{title}: " + "; ".join(f"{hour} {total}" for hour, total in zip(hours, totals,
                                                                                strict=True))
    return _figure(title, summary, height, "".join(body), "hours")


def lines(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], since: float,
          now: float, title: str, zone: str) -> Markup:
    """Counts over time, one stepped line per series, from since to now."""
    drawn = [(name, points) for name, points in series if points]
    if not drawn:
        return Markup(f'<p class="nodata">{escape(title)}: no history yet today.</p>')
    start = max(since, min(points[0][0] for _, points in drawn))  # from the first sample
    most = _nice_max(max(value for _, points in drawn for _, value in points))
    left = 36
    legend, legend_h = _legend([(f"series-{i % 8}", name) for i, (name, _) in
                                enumerate(drawn)], left)
    top = legend_h + 14
    height = top + 170
    bottom = height - 24
    plot_w, plot_h, span = _WIDE - left - 10, bottom - top, max(now - start, 60.0)

    def x(t: float) -> float:
        """Where a time falls."""
        return left + plot_w * (min(max(t, start), now) - start) / span

    def y(value: float) -> float:
        """Where a count falls."""
        return bottom - plot_h * min(value, most) / most

    body = [legend]
    for tick in sorted({0, most // 2, most}):
        body.append(f'<line class="grid" x1="{left}" y1="{y(tick):.1f}" x2="{_WIDE - 10}" '
                    f'y2="{y(tick):.1f}"/>{_t(left - 6, y(tick) + 5, tick, "tick", "end")}')
    local = ZoneInfo(zone)
    hours = max(1, math.ceil(span / 3600 / 8))
    first = datetime.fromtimestamp(start, local).replace(minute=0, second=0, microsecond=0)
    tick_at = first.timestamp() + 3600
    while tick_at <= now:
        stamp = datetime.fromtimestamp(tick_at, local)
        if stamp.hour % hours == 0:
            body.append(f'<line class="grid" x1="{x(tick_at):.1f}" y1="{top}" '
                        f'x2="{x(tick_at):.1f}" y2="{bottom}"/>'
                        f'{_t(x(tick_at), height - 6, f"{stamp:%H:%M}", "tick", "middle")}')
        tick_at += 3600
    summary = [title]
    for index, (name, points) in enumerate(drawn):
        path, previous = [], None
        for t, value in points:
            if previous is not None:
                path.append(f"{x(t):.1f},{y(previous):.1f}")
            path.append(f"{x(t):.1f},{y(value):.1f}")
            previous = value
        path.append(f"{x(now):.1f},{y(points[-1][1]):.1f}")
        body.append(f'<polyline class="line series-{index % 8}" points="{" ".join(path)}"/>')
        values = [value for _, value in points]
        summary.append(f"{name}: up to {_number(max(values))}, now {_number(values[-1])}")
    body.append(f'<line class="axis" x1="{left}" y1="{bottom}" x2="{_WIDE - 10}" '
                f'y2="{bottom}"/>')
    return _figure(title, "; ".join(summary), height, "".join(body), "queues")


def movie_bars(rows: Sequence[tuple[str, str, str, Sequence[tuple[str, str, float]]]],
               title: str, duration: Callable[[float | None], str],
               steps: Sequence[tuple[str, str]], css: str = "") -> Markup:
    """One bar per movie (label, note, link, its steps as (css, label, seconds)): where its
    time went, step by step, on one linear scale; each bar links to the movie's story."""
    if not rows:
        return Markup(f'<p class="nodata">{escape(title)}: no movie on the screen yet.</p>')
    left, right, row_h = 118, 84, 30
    legend, legend_h = _legend([(f"step-{name}", label) for name, label in steps], 8)
    top = legend_h + 10
    totals = [sum(seconds for _, _, seconds in parts) for *_, parts in rows]
    most = max(max(totals), 1.0)
    height = top + row_h * len(rows) + 4
    plot_w = _WIDE - left - right
    body = [legend]
    for index, ((label, note, href, parts), total) in enumerate(zip(rows, totals,
                                                                    strict=True)):
        y = top + index * row_h
        x = float(left)
        segments = []
        for name, what, seconds in parts:
            wide = plot_w * seconds / most
            segments.append(f'<rect class="step-{name}" x="{x:.1f}" y="{y + 4}" '
                            f'width="{max(wide, 0.5):.1f}" height="20"><title>'
                            f'{escape(what)}: {escape(duration(seconds))}</title></rect>')
            x += wide
        body.append(
            f'<a href="{escape(href)}"><title>{escape(label)} {escape(note)}: '
            f'{escape(duration(total))}</title>'
            f'{_t(8, y + 19, label, "code")}{_t(left - 6, y + 19, note, "small", "end")}'
            f'{"".join(segments)}{_t(x + 6, y + 19, duration(total), "value")}</a>')
    summary = f"{title}: " + "; ".join(f"{label} {duration(total)}" for (label, *_), total
                                       in zip(rows, totals, strict=True))
    return _figure(title, summary, height, "".join(body), f"movies {css}".strip())
