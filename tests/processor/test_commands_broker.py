"""The daemon answers the console's commands over a real mosquitto with the fleet's ACL, once."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moviepkg.commands import new_command
from moviepkg.ids import movie_code
from moviepkg.telemetry import topic
from tests.listing import listed_ids
from tests.moviepkg.test_commands import ACL
from tests.moviepkg.watcher import Message, Watcher
from tests.processor.conftest import add_package, daemon, daemon_env
from tests.services import MosquittoServer

pytestmark = pytest.mark.slow  # the daemon, twice, on a broker

USERS = {"processor": "processor-pw", "console": "console-pw"}


def fleet_acl() -> str:
    return "".join(line.replace("{{ broker_console_user }}", "console")
                   for line in ACL.read_text().splitlines(keepends=True)
                   if "ansible_managed" not in line)


def wait_count(watcher: Watcher, name: str, count: int, timeout: float = 30.0,
               **fields: Any) -> list[Message]:
    """Wait until count messages on topic name have these fields; return them."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in watcher.on(name)
                 if all(m.doc.get(k) == v for k, v in fields.items())]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)} of {count} messages on {name} with {fields}")
        time.sleep(0.05)


def test_a_take_down_is_answered_over_the_broker_and_never_run_twice(tmp_path: Path) -> None:
    password = tmp_path / "mqtt-password"
    password.write_text(USERS["processor"] + "\n")
    with MosquittoServer(tmp_path / "broker", users=USERS, acl=fleet_acl()) as broker:
        env = daemon_env(tmp_path, (tmp_path / "store").as_uri(), {
            "STOPMO_MQTT_URL": broker.url, "STOPMO_MQTT_PASSWORD_FILE": str(password),
            "STOPMO_OUTPUT_SIZE": "640x360"})
        console = Watcher(broker.port, "console", USERS["console"])
        online = topic("processor", "processor", "online")
        events = topic("processor", "processor", "event")
        cmd, result = (topic("processor", "processor", kind) for kind in ("cmd", "cmd/result"))
        log = tmp_path / "daemon.log"
        try:
            with daemon(env, log) as proc:
                wait_count(console, online, 1, status="online")
                package = add_package(tmp_path / "inbox")
                console.wait(events, 60, kind="published", package_id=package.name)
                sent = new_command("take-down", "ana", {"movie": movie_code(package.name)},
                                   datetime.now(UTC))
                console.client.publish(cmd, sent.to_json(), qos=1).wait_for_publish(5)
                first = console.wait(result, 30, id=sent.id)
                assert first.doc["outcome"] == "done", first.doc
                assert first.doc["detail"].startswith(f"taken down: {package.name}")
                console.wait(events, 10, kind="taken_down", package_id=package.name)
                movies = tmp_path / "store" / "movies"
                assert sorted(p.name for p in movies.iterdir()) in ([], ["index"])
                assert listed_ids(tmp_path / "store") == []
                reload = new_command("reload", "ana", {}, datetime.now(UTC))
                console.client.publish(topic("processor", "screen", "cmd"), reload.to_json(),
                                       qos=1).wait_for_publish(5)
                reloaded = console.wait(topic("processor", "screen", "cmd/result"), 30,
                                        id=reload.id)
                assert (reloaded.doc["outcome"], reloaded.doc["detail"]) == (
                    "done", "the loop has 0 movies")
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            state_file = tmp_path / "work" / "state" / f"{package.name}.json"
            before = json.loads(state_file.read_text())
            assert before["taken_down_by"] == "ana"
            with daemon(env, log):
                wait_count(console, online, 2, status="online")
                # The broker or the console replays it after the restart: the first answer
                # comes back, and nothing runs again.
                console.client.publish(cmd, sent.to_json(), qos=1).wait_for_publish(5)
                answers = wait_count(console, result, 2, id=sent.id)
                assert answers[1].doc == first.doc
                late = new_command("take-down", "bob", {"movie": package.name},
                                   datetime.now(UTC) - timedelta(minutes=11))
                console.client.publish(cmd, late.to_json(), qos=1).wait_for_publish(5)
                refused = console.wait(result, 30, id=late.id)
                assert refused.doc["outcome"] == "refused"
                assert "arrived too late" in refused.doc["detail"]
                time.sleep(0.5)  # an event would have come with its answer
            assert len([m for m in console.on(events) if m.doc["kind"] == "taken_down"]) == 1
            assert json.loads(state_file.read_text())["taken_down_at"] == \
                before["taken_down_at"]
            answered = json.loads((tmp_path / "work" / "commands" / "processor.json")
                                  .read_text())
            assert set(answered) == {sent.id, late.id}
        finally:
            console.close()
