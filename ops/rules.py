"""The alert rules: what is wrong with the fleet right now, each with its severity.

A rule only looks at the fleet; the engine decides when a condition becomes an alert
(`for_s`), whether it makes a noise (mutes, opening hours) and when it is resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from .config import Thresholds
from .fleet import Device, Fleet
from .hours import OpeningHours
from .insight import SlowStep, duration_text

RED, AMBER = "red", "amber"
PROGRAM_NAMES = {"kiosk": "the kiosk", "sync": "the sync agent", "system": "the box",
                 "processor": "the processor", "screen": "the big screen"}


@dataclass(frozen=True, slots=True)
class Condition:
    """Something wrong now; `for_s`: how long it must last before it is an alert."""

    rule: str
    device: str
    subject: str  # the program concerned, or ""
    severity: str
    message: str
    for_s: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies one alert: the rule, the device and the subject."""
        return self.rule, self.device, self.subject


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules need besides the fleet."""

    now: float
    thresholds: Thresholds
    hours: OpeningHours
    timezone: str
    fresh_since: float  # the console (re)connected then: nothing is stale before + stale_s
    broker_down_since: float | None = None
    slow: tuple[SlowStep, ...] = ()  # steps of movies that took or take too long (insight)


def minutes(seconds: float) -> str:
    """`45 s`, `7 min`, `2 h 05 min`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _presence(device: Device, ctx: Context) -> list[Condition]:
    found, zone = [], ZoneInfo(ctx.timezone)
    offline = [name for name in device.expected if device.program(name).online is False]
    if len(offline) > 1 and len(offline) == len(device.expected):
        # The whole box is gone (power, network): one alert, not one per program.
        return [Condition("offline", device.name, "", RED,
                          f"{device.name}: the whole box is offline", ctx.thresholds.offline_s)]
    for name in device.expected:
        program, what = device.program(name), PROGRAM_NAMES.get(name, name)
        if name in offline:
            found.append(Condition("offline", device.name, name, RED,
                                   f"{device.name}: {what} is offline",
                                   ctx.thresholds.offline_s))
            continue
        if ctx.broker_down_since is not None:
            continue  # nobody is heard while the broker is away: that is one alert, below
        heard = max(program.state_received or 0.0, ctx.fresh_since)
        if ctx.now - heard > ctx.thresholds.stale_s:
            last = program.state_received
            since = "has never reported" if last is None else \
                f"has not reported since {datetime.fromtimestamp(last, zone):%H:%M:%S}"
            found.append(Condition("silent", device.name, name, RED,
                                   f"{device.name}: {what} {since}"))
    return found


def _station(device: Device, ctx: Context) -> list[Condition]:
    th, found = ctx.thresholds, []
    kiosk, sync = device.program("kiosk"), device.program("sync")
    if kiosk.online is not False and kiosk.get("screen") == "helper":
        found.append(Condition("helper", device.name, "kiosk", AMBER,
                               f"{device.name}: the kiosk asks for a helper", th.helper_s))
    if kiosk.online is not False and kiosk.get("camera_ok") is False:
        found.append(Condition("camera", device.name, "kiosk", RED,
                               f"{device.name}: the camera is not working"))
    problem = kiosk.get("website_url_problem")
    if kiosk.online is not False and isinstance(problem, str) and problem:
        found.append(Condition("qr_address", device.name, "kiosk", AMBER,
                               f"{device.name}: families cannot reach its QR codes: "
                               f"{problem[:160]}"))
    oldest = sync.get("oldest_waiting_s")
    if isinstance(oldest, int | float) and oldest > th.outbox_s:
        found.append(Condition("outbox", device.name, "sync", AMBER,
                               f"{device.name}: a movie has waited {minutes(oldest)} in the "
                               f"outbox ({sync.get('waiting', '?')} waiting)"))
    now = datetime.fromtimestamp(ctx.now, UTC)
    opened = ctx.hours.open_since(now, ctx.timezone)
    if opened is not None and kiosk.online is True:
        since = max(device.last_finished or 0.0, opened.timestamp(), device.first_seen or 0.0,
                    ctx.fresh_since)
        if ctx.now - since > th.no_movie_s:
            found.append(Condition("no_movie", device.name, "kiosk", AMBER,
                                   f"{device.name}: no movie finished for "
                                   f"{minutes(ctx.now - since)}"))
    return found


def _processor(device: Device, ctx: Context) -> list[Condition]:
    found = []
    screen = device.program("screen")
    if screen.online is not False and screen.get("connected") is False:
        found.append(Condition("player", device.name, "screen", RED,
                               f"{device.name}: the big screen's player (mpv) does not answer",
                               ctx.thresholds.offline_s))
    oldest = device.program("processor").get("publish_oldest_s")
    if isinstance(oldest, int | float) and oldest > ctx.thresholds.publish_s:
        backlog = device.program("processor").get("publish_backlog", "?")
        found.append(Condition("publish", device.name, "processor", AMBER,
                               f"{device.name}: movies have waited {minutes(oldest)} to "
                               f"publish ({backlog} waiting; is the uplink down?)"))
    return found


def _system(device: Device, ctx: Context) -> list[Condition]:
    system, th, found = device.program("system"), ctx.thresholds, []
    free, total = system.get("disk_free_bytes"), system.get("disk_total_bytes")
    if isinstance(free, int) and isinstance(total, int) and total > 0 \
            and 100 * free / total < th.disk_percent:
        found.append(Condition("disk", device.name, "system", RED,
                               f"{device.name}: only {100 * free / total:.0f} % of the disk "
                               f"is free"))
    if system.get("under_voltage_now") or system.get("throttled_now"):
        what = "under-voltage" if system.get("under_voltage_now") else "throttled"
        found.append(Condition("power", device.name, "system", AMBER,
                               f"{device.name}: {what} (check the power supply and cooling)"))
    temperature = system.get("cpu_temp_c")
    if isinstance(temperature, int | float) and temperature >= th.hot_c:
        found.append(Condition("hot", device.name, "system", AMBER,
                               f"{device.name}: the CPU is at {temperature:.0f} °C"))
    return found


def _slow_steps(ctx: Context) -> list[Condition]:
    """A slow or stuck step of a movie (ops.insight.slow_steps), named and measured."""
    found, zone = [], ZoneInfo(ctx.timezone)
    for slow in ctx.slow:
        movie = f"movie {slow.code} ({slow.package_id})"
        if slow.running:
            more = f"; {slow.others} more waiting" if slow.others else ""
            message = (f"{slow.device}: {movie} is stuck in {slow.step.label} since "
                       f"{datetime.fromtimestamp(slow.started, zone):%H:%M:%S}, longer than "
                       f"its limit of {duration_text(slow.against)}{more}")
        elif slow.p95 is None:
            message = (f"{slow.device}: {slow.step.label} of {movie} took "
                       f"{duration_text(slow.seconds)} (its limit is "
                       f"{duration_text(slow.against)})")
        else:
            message = (f"{slow.device}: {slow.step.label} of {movie} took "
                       f"{duration_text(slow.seconds)}, more than "
                       f"{ctx.thresholds.slow_factor:g} × the recent p95 of "
                       f"{duration_text(slow.p95)}")
        found.append(Condition("slow_step", slow.device, slow.step.name, AMBER, message))
    return found


def evaluate(fleet: Fleet, ctx: Context) -> list[Condition]:
    """Every condition that holds now, across the fleet."""
    found: list[Condition] = []
    if ctx.broker_down_since is not None and \
            ctx.now - ctx.broker_down_since > ctx.thresholds.offline_s:
        found.append(Condition("broker", "console", "", RED,
                               "the console cannot reach the MQTT broker"))
    for device in fleet.devices.values():
        found += _presence(device, ctx)
        if device.role == "station":
            found += _station(device, ctx)
        elif device.role == "processor":
            found += _processor(device, ctx)
        found += _system(device, ctx)
    return found + _slow_steps(ctx)


def worst(conditions: list[Condition]) -> str:
    """The tile colour for a device's conditions: red, amber or green."""
    severities = {condition.severity for condition in conditions}
    return RED if RED in severities else AMBER if AMBER in severities else "green"


# What an operator does about each rule (the console shows it beside the alert).
ADVICE = {
    "offline": "Look at the box: power, network cable or Wi-Fi; then restart the program "
               "(systemctl restart stopmo-<program>) or the box.",
    "silent": "The program is connected but says nothing: restart it; if it keeps "
              "happening, read its log (journalctl -u stopmo-<program>).",
    "broker": "Check mosquitto on the processing unit (systemctl status mosquitto) and the "
              "console's network.",
    "helper": "Go to the station: the child needs help, or the kiosk hit a fault.",
    "camera": "Check the camera cable and restart the kiosk; swap the camera if it persists.",
    "qr_address": "The station's QR codes lead to an address only the festival LAN knows: set "
                  "stopmo_public_url in the inventory to the public site and run the station "
                  "role (docs/website.md, \"Deploy to Heroku\").",
    "outbox": "The station cannot deliver to the processing unit: check the LAN and the "
              "processor's receiver; the movies are safe in the outbox.",
    "player": "mpv, the big screen's player, is down or stuck: systemctl restart "
              "stopmo-screen on the processing unit; check the TV's HDMI cable.",
    "publish": "Movies are shown but not published: check the uplink (4G router) and the "
               "store; nothing is lost, the queue drains when the store answers.",
    "disk": "Free disk space (old logs, the processor's work dir) before the box stops.",
    "power": "Use the official power supply and a short cable; check the fan and airflow.",
    "hot": "Check the fan, the case's airflow and the sun on the box.",
    "no_movie": "Nobody has finished a movie here for a while: check the station works and "
                "that visitors can find it.",
    "slow_step": "Open the movie's story (Insight, or find its code) to see where it waits. "
                 "Deliver: the station's network and sync agent (its outbox). Receive or "
                 "validate: the processor and its inbox (processor status). Encode: the "
                 "processing unit's CPU, temperature and disk. To screen: the big screen's "
                 "player. Publish: the uplink (4G router) and the store; nothing is lost.",
}
