"""Commands: at most once, never late, answered in words; over a real mosquitto with the ACL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moviepkg.broker import TelemetrySettings
from moviepkg.commands import (
    CATALOGUE,
    Command,
    CommandRunner,
    Refused,
    new_command,
    parse_command,
    parse_result,
)
from moviepkg.reporting import Reporter
from moviepkg.telemetry import PROGRAMS, TelemetryError, topic
from tests.moviepkg.watcher import Watcher
from tests.services import MosquittoServer

T0 = datetime(2026, 7, 10, 12, 0, 0, tzinfo=UTC)
ACL = (Path(__file__).resolve().parents[2] / "ansible/roles/broker/templates/acl.j2")


def command(name: str, minutes: int = 5, command_id: str = "c0ffee-0001", **args: Any
            ) -> Command:
    return Command(command_id, name, "ana", T0, T0 + timedelta(minutes=minutes), args)


class Kiosk:
    """Handlers as a program would give them, counting what really ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.shooting = False

    def handlers(self) -> dict[str, Any]:
        def identify(cmd: Command) -> str:
            self.ran.append("identify")
            return "shown for 15 s"

        def restart(cmd: Command) -> str:
            if self.shooting and not cmd.args.get("force"):
                raise Refused("a child is shooting a movie (12 frames); force it to restart")
            self.ran.append("restart")
            return "restarting"

        def capture(cmd: Command) -> tuple[str, dict[str, Any]]:
            self.ran.append("capture")
            return "a test picture", {"jpeg": "/9j/4AAQ"}

        def broken(cmd: Command) -> str:
            raise OSError("the camera is gone")

        return {"identify": identify, "restart-kiosk": restart, "test-capture": capture,
                "broken": broken}


def runner(tmp_path: Path, kiosk: Kiosk, now: datetime = T0) -> CommandRunner:
    return CommandRunner(kiosk.handlers(), tmp_path / "answered.json",
                         clock=lambda: now.timestamp())


def answer(run: CommandRunner, cmd: Command) -> dict[str, Any]:
    said = run.handle(cmd.to_json())
    assert said is not None
    result = parse_result(said)
    return {"outcome": result.outcome, "detail": result.detail, "data": result.data}


def test_messages_round_trip_and_bad_ones_are_named() -> None:
    cmd = command("restart-kiosk", force=True)
    assert parse_command(cmd.to_json()) == cmd
    doc = json.loads(cmd.to_json())
    for field, value, words in (("id", "x", "cmd.id"), ("name", "Rm -rf", "cmd.name"),
                                ("sender", "", "cmd.sender"), ("expires", "soon", "cmd.expires"),
                                ("args", [], "cmd.args")):
        with pytest.raises(TelemetryError, match=words):
            parse_command(json.dumps({**doc, field: value}).encode())


def test_done_refused_failed_and_unknown(tmp_path: Path) -> None:
    kiosk = Kiosk()
    run = runner(tmp_path, kiosk)
    assert answer(run, command("identify", command_id="c0ffee-0001"))["outcome"] == "done"
    kiosk.shooting = True
    refused = answer(run, command("restart-kiosk", command_id="c0ffee-0002"))
    assert refused == {"outcome": "refused", "data": {},
                       "detail": "a child is shooting a movie (12 frames); force it to restart"}
    forced = answer(run, command("restart-kiosk", command_id="c0ffee-0003", force=True))
    assert forced["outcome"] == "done"
    assert answer(run, command("test-capture", command_id="c0ffee-0004"))["data"] == {
        "jpeg": "/9j/4AAQ"}
    failed = answer(run, command("broken", command_id="c0ffee-0005"))
    assert failed["outcome"] == "failed" and "the camera is gone" in failed["detail"]
    unknown = answer(run, command("dance", command_id="c0ffee-0006"))
    assert unknown["outcome"] == "refused" and "does not know 'dance'" in unknown["detail"]
    assert kiosk.ran == ["identify", "restart", "capture"]


def test_catalogued_arguments_are_checked_before_any_handler_runs(tmp_path: Path) -> None:
    kiosk = Kiosk()
    run = runner(tmp_path, kiosk)
    wrong = answer(run, command("restart-kiosk", command_id="c0ffee-0101", force="yes"))
    assert wrong == {"outcome": "refused", "detail": "force must be true or false", "data": {}}
    extra = answer(run, command("identify", command_id="c0ffee-0102", colour="red"))
    assert extra["outcome"] == "refused" and extra["detail"] == "identify takes no colour"
    assert kiosk.ran == []
    assert CATALOGUE["take-down"].problem({}) == "take-down needs movie"
    assert CATALOGUE["take-down"].problem({"movie": "7AXKMY", "keep_on_screen": True}) is None


def test_new_commands_expire_after_their_ttl_and_travel_to_their_program() -> None:
    made = new_command("test-capture", "ana", {}, T0)
    assert made.expires - made.at == timedelta(seconds=30)
    assert parse_command(made.to_json()) == made
    assert {spec.program for spec in CATALOGUE.values()} <= set(PROGRAMS)
    assert new_command("identify", "ana", {}, T0).id != made.id


def test_a_command_waiting_behind_a_long_one_is_judged_on_its_arrival(tmp_path: Path) -> None:
    import threading

    clock = {"now": T0.timestamp()}
    started, release = threading.Event(), threading.Event()

    def deliver(cmd: Command) -> str:
        started.set()
        release.wait(5)
        return "2 movies delivered"

    run = CommandRunner({"deliver-now": deliver, "identify": lambda cmd: "shown"},
                        tmp_path / "answered.json", clock=lambda: clock["now"])
    answers: dict[str, bytes | None] = {}
    long = threading.Thread(target=lambda: answers.update(
        first=run.handle(command("deliver-now", command_id="c0ffee-0201").to_json())))
    long.start()
    assert started.wait(5)
    quick = threading.Thread(target=lambda: answers.update(
        second=run.handle(command("identify", minutes=1, command_id="c0ffee-0202").to_json())))
    quick.start()  # arrives in time, then waits for the delivery to end
    time.sleep(0.2)
    clock["now"] += 10 * 60  # the delivery took ten minutes
    release.set()
    long.join(5)
    quick.join(5)
    assert parse_result(answers["first"] or b"").outcome == "done"
    second = parse_result(answers["second"] or b"")
    assert (second.outcome, second.detail) == ("done", "shown")


def test_a_bulky_answer_is_remembered_without_its_picture(tmp_path: Path) -> None:
    picture = {"jpeg": "A" * 30_000, "width": 320, "height": 180}
    run = CommandRunner({"test-capture": lambda cmd: ("a test picture", picture)},
                        tmp_path / "answered.json", clock=lambda: T0.timestamp())
    first = parse_result(run.handle(command("test-capture").to_json()) or b"")
    assert first.data == picture
    assert (tmp_path / "answered.json").stat().st_size < 2048
    again = CommandRunner({}, tmp_path / "answered.json").handle(
        command("test-capture").to_json())
    replay = parse_result(again or b"")
    assert (replay.outcome, replay.detail, replay.data) == ("done", "a test picture", {})


def test_a_late_command_is_never_run(tmp_path: Path) -> None:
    kiosk = Kiosk()
    late = runner(tmp_path, kiosk, now=T0 + timedelta(minutes=6))
    result = answer(late, command("restart-kiosk", minutes=5))
    assert result["outcome"] == "refused" and "too late" in result["detail"]
    assert kiosk.ran == []


def test_a_replayed_command_is_answered_not_run_again_even_after_a_restart(
        tmp_path: Path) -> None:
    kiosk = Kiosk()
    first = runner(tmp_path, kiosk).handle(command("identify").to_json())
    again = runner(tmp_path, kiosk).handle(command("identify").to_json())  # a new process
    assert first == again and kiosk.ran == ["identify"]
    assert runner(tmp_path, kiosk).handle(b"not a command") is None


def test_over_the_broker_only_the_console_commands_and_the_device_answers(
        tmp_path: Path) -> None:
    acl = "".join(line.replace("{{ broker_console_user }}", "console")
                  for line in ACL.read_text().splitlines(keepends=True)
                  if "ansible_managed" not in line)
    users = {"st-3": "station-password", "st-4": "other-password", "console": "console-pw"}
    with MosquittoServer(tmp_path / "broker", users=users, acl=acl) as broker:
        kiosk = Kiosk()
        device = Reporter(TelemetrySettings(url=broker.url), "st-3", "kiosk",
                          password=users["st-3"],
                          commands=runner(tmp_path, kiosk, now=datetime.now(UTC)).handle)
        device.start()
        console = Watcher(broker.port, "console", users["console"])
        intruder = Watcher(broker.port, "st-4", users["st-4"])
        try:
            cmd_topic, result_topic = (topic("st-3", "kiosk", kind)
                                       for kind in ("cmd", "cmd/result"))
            console.wait(topic("st-3", "kiosk", "online"), status="online")
            now = datetime.now(UTC)
            sent = Command("f00d-0001", "identify", "ana", now, now + timedelta(minutes=1))
            intruder.client.publish(cmd_topic, sent.to_json(), qos=1).wait_for_publish(5)
            with pytest.raises(TimeoutError):  # another station may not command st-3
                console.wait(result_topic, timeout=2)
            console.client.publish(cmd_topic, sent.to_json(), qos=1).wait_for_publish(5)
            result = console.wait(result_topic, id="f00d-0001")
            assert result.doc["outcome"] == "done" and kiosk.ran == ["identify"]
            console.client.publish(cmd_topic, sent.to_json(), qos=1).wait_for_publish(5)
            console.wait(result_topic, timeout=5)
            assert kiosk.ran == ["identify"]  # replayed: answered, not run again
        finally:
            device.stop()
            console.close()
            intruder.close()
