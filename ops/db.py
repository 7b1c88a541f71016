"""The console's memory: last-known presence and state, events, history, in SQLite (WAL).

Times the console uses to judge freshness (`received`) are its own clock's, in epoch
seconds: a station without a real-time clock may report odd `at` times, which are kept
as text for display only.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from moviepkg.ids import is_package_id, movie_code

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (device TEXT PRIMARY KEY, first_seen REAL, last_seen REAL);
CREATE TABLE IF NOT EXISTS presence (device TEXT, program TEXT, online INTEGER, at TEXT,
    received REAL, PRIMARY KEY (device, program));
CREATE TABLE IF NOT EXISTS state (device TEXT, program TEXT, at TEXT, received REAL,
    fields TEXT, extra TEXT, PRIMARY KEY (device, program));
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, device TEXT, program TEXT,
    kind TEXT, package_id TEXT, at TEXT, detail TEXT, received REAL, code TEXT);
CREATE INDEX IF NOT EXISTS events_by_device ON events (device, id);
CREATE TABLE IF NOT EXISTS last_event (device TEXT, kind TEXT, received REAL,
    package_id TEXT, PRIMARY KEY (device, kind));
CREATE TABLE IF NOT EXISTS samples (device TEXT, metric TEXT, t REAL, value REAL);
CREATE INDEX IF NOT EXISTS samples_by_key ON samples (device, metric, t);
CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, rule TEXT, device TEXT,
    subject TEXT, severity TEXT, message TEXT, opened REAL, resolved REAL,
    fired_sent INTEGER NOT NULL DEFAULT 0, resolved_sent INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (resolved);
CREATE TABLE IF NOT EXISTS mutes (device TEXT PRIMARY KEY, until REAL, by TEXT, at REAL);
CREATE TABLE IF NOT EXISTS commands (id TEXT PRIMARY KEY, device TEXT, program TEXT,
    name TEXT, args TEXT, sender TEXT, sent REAL, expires REAL, movie TEXT, outcome TEXT,
    detail TEXT, data TEXT, answered REAL);
CREATE INDEX IF NOT EXISTS commands_by_device ON commands (device, sent);
CREATE INDEX IF NOT EXISTS commands_by_movie ON commands (movie);
"""
Row = dict[str, Any]


class Database:
    """One SQLite file shared by the subscriber, the alert engine and the web threads."""

    def __init__(self, path: Path, sample_every_s: float = 60.0) -> None:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.sample_every_s = sample_every_s
        self._lock = threading.Lock()
        self._last_sample: dict[tuple[str, str], float] = {}
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a power cut loses the last
        self._conn.execute("PRAGMA busy_timeout=5000")  # moments at most, never the file
        self._conn.executescript(SCHEMA)
        self._add_codes()

    def _add_codes(self) -> None:
        """Give the events of an older file their movie code column, filled; index it."""
        self._conn.create_function("movie_code", 1, movie_code, deterministic=True)
        with self._tx() as conn:
            if "code" not in {row[1] for row in conn.execute("PRAGMA table_info(events)")}:
                conn.execute("ALTER TABLE events ADD COLUMN code TEXT")
                conn.execute("UPDATE events SET code = movie_code(package_id)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS events_by_package ON events "
                           "(package_id)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS events_by_code ON events (code)")

    def close(self) -> None:
        """Close the file (checkpointing the WAL)."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        """Run a read and return its rows as dicts."""
        with self._lock:
            return [dict(row) for row in self._conn.execute(sql, args).fetchall()]

    # -- what the subscriber writes ---------------------------------------------
    def _seen(self, conn: sqlite3.Connection, device: str, now: float) -> None:
        conn.execute("INSERT INTO devices VALUES (?, ?, ?) ON CONFLICT (device) "
                     "DO UPDATE SET last_seen = excluded.last_seen", (device, now, now))

    def record_presence(self, device: str, program: str, online: bool, at: str,
                        now: float) -> None:
        """Remember whether a device's program is online."""
        with self._tx() as conn:
            self._seen(conn, device, now)
            conn.execute("INSERT OR REPLACE INTO presence VALUES (?, ?, ?, ?, ?)",
                         (device, program, int(online), at, now))

    def record_state(self, device: str, program: str, at: str, fields: Mapping[str, Any],
                     extra: Mapping[str, Any], now: float,
                     metrics: Mapping[str, float] | None = None) -> None:
        """Remember a program's latest state, and sample its metrics for the history."""
        with self._tx() as conn:
            self._seen(conn, device, now)
            conn.execute("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?, ?)",
                         (device, program, at, now, json.dumps(fields), json.dumps(extra)))
            for metric, value in (metrics or {}).items():
                last = self._last_sample.get((device, metric))
                if last is None:
                    row = conn.execute("SELECT max(t) FROM samples WHERE device = ? AND "
                                       "metric = ?", (device, metric)).fetchone()
                    last = row[0] if row[0] is not None else float("-inf")
                if now - last >= self.sample_every_s:
                    conn.execute("INSERT INTO samples VALUES (?, ?, ?, ?)",
                                 (device, metric, now, float(value)))
                    last = now
                self._last_sample[(device, metric)] = last

    def record_event(self, device: str, program: str, kind: str, package_id: str, at: str,
                     detail: str, now: float) -> None:
        """Append a movie event, with its movie code (moviepkg.ids.movie_code)."""
        with self._tx() as conn:
            self._seen(conn, device, now)
            conn.execute("INSERT INTO events (device, program, kind, package_id, at, detail, "
                         "received, code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (device, program, kind, package_id, at, detail, now,
                          movie_code(package_id)))
            conn.execute("INSERT OR REPLACE INTO last_event VALUES (?, ?, ?, ?)",
                         (device, kind, now, package_id))

    def prune(self, now: float, keep_days: int) -> None:
        """Drop history, events, commands and resolved alerts older than keep_days."""
        cutoff = now - keep_days * 86400
        with self._tx() as conn:
            conn.execute("DELETE FROM samples WHERE t < ?", (cutoff,))
            conn.execute("DELETE FROM events WHERE received < ?", (cutoff,))
            conn.execute("DELETE FROM alerts WHERE resolved < ?", (cutoff,))
            conn.execute("DELETE FROM mutes WHERE until < ?", (now,))
            conn.execute("DELETE FROM commands WHERE sent < ?", (cutoff,))

    # -- reads ------------------------------------------------------------------
    def events(self, device: str | None = None, limit: int = 50) -> list[Row]:
        """The newest events, of one device or of all."""
        if device is None:
            return self.query("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))
        return self.query("SELECT * FROM events WHERE device = ? ORDER BY id DESC LIMIT ?",
                          (device, limit))

    def samples(self, device: str, metric: str, since: float) -> list[tuple[float, float]]:
        """One metric's history since a time, oldest first."""
        rows = self.query("SELECT t, value FROM samples WHERE device = ? AND metric = ? "
                          "AND t >= ? ORDER BY t", (device, metric, since))
        return [(row["t"], row["value"]) for row in rows]

    # -- commands: the audit log --------------------------------------------------
    def add_command(self, command_id: str, device: str, program: str, name: str,
                    args: Mapping[str, Any], sender: str, sent: float, expires: float,
                    movie: str | None = None, outcome: str | None = None,
                    detail: str | None = None) -> None:
        """Log a command as it goes out (outcome None: waiting) or as the console refuses it."""
        with self._tx() as conn:
            conn.execute("INSERT INTO commands (id, device, program, name, args, sender, sent, "
                         "expires, movie, outcome, detail, answered) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (command_id, device, program, name, json.dumps(dict(args)), sender,
                          sent, expires, movie, outcome, detail,
                          None if outcome is None else sent))

    def answer_command(self, command_id: str, device: str, program: str, outcome: str,
                       detail: str, data: Mapping[str, Any] | None, answered: float) -> bool:
        """Record the answer to a command from the device and program it went to; False
        when no command of theirs has that id (none at all, or another device's)."""
        with self._tx() as conn:
            cursor = conn.execute("UPDATE commands SET outcome = ?, detail = ?, data = ?, "
                                  "answered = ? WHERE id = ? AND device = ? AND program = ?",
                                  (outcome, detail, json.dumps(dict(data)) if data else None,
                                   answered, command_id, device, program))
            return cursor.rowcount > 0

    def note_command(self, command_id: str, detail: str) -> None:
        """Give a command still waiting for its answer the console's words about it."""
        with self._tx() as conn:
            conn.execute("UPDATE commands SET detail = ? WHERE id = ? AND outcome IS NULL",
                         (detail, command_id))

    def command(self, command_id: str) -> Row | None:
        """One command of the log (args and data as dicts), or None."""
        rows = self.query("SELECT * FROM commands WHERE id = ?", (command_id,))
        return _command_row(rows[0]) if rows else None

    def device_commands(self, device: str, limit: int = 30) -> list[Row]:
        """A device's commands, newest first (args and data as dicts)."""
        rows = self.query("SELECT * FROM commands WHERE device = ? ORDER BY sent DESC, "
                          "rowid DESC LIMIT ?", (device, limit))
        return [_command_row(row) for row in rows]

    def movie_commands(self, *movies: str, limit: int = 100) -> list[Row]:
        """The commands about a movie (its package id, code or quarantine entry), newest first.

        A package id among movies also finds its quarantine entries named `<id>-2`, `<id>-3`
        (the quarantine's second entry of the same name, and so on).
        """
        if not movies:
            return []
        marks = ", ".join("?" for _ in movies)
        entries = [f"{movie}-%" for movie in movies if is_package_id(movie)]
        also = "".join(" OR movie LIKE ?" for _ in entries)  # no % or _ in a package id
        rows = self.query(f"SELECT * FROM commands WHERE movie IN ({marks}){also} "
                          "ORDER BY sent DESC, rowid DESC LIMIT ?", (*movies, *entries, limit))
        return [_command_row(row) for row in rows]

    # -- alerts and mutes -------------------------------------------------------
    def open_alerts(self) -> list[Row]:
        """Alerts that have not cleared, oldest first."""
        return self.query("SELECT * FROM alerts WHERE resolved IS NULL ORDER BY opened, id")

    def unsent_resolved(self) -> list[Row]:
        """Cleared alerts whose firing was sent but whose resolution was not."""
        return self.query("SELECT * FROM alerts WHERE resolved IS NOT NULL AND fired_sent = 1 "
                          "AND resolved_sent = 0 ORDER BY resolved")

    def recent_alerts(self, since: float) -> list[Row]:
        """Alerts opened or cleared since a time, newest first."""
        return self.query("SELECT * FROM alerts WHERE opened >= ? OR resolved >= ? "
                          "ORDER BY coalesce(resolved, opened) DESC LIMIT 100", (since, since))

    def open_alert(self, rule: str, device: str, subject: str, severity: str, message: str,
                   now: float) -> int:
        """Open an alert and return its id."""
        with self._tx() as conn:
            cursor = conn.execute("INSERT INTO alerts (rule, device, subject, severity, message, "
                                  "opened) VALUES (?, ?, ?, ?, ?, ?)",
                                  (rule, device, subject, severity, message, now))
            return int(cursor.lastrowid or 0)

    def update_alert(self, alert_id: int, **values: Any) -> None:
        """Set columns of one alert (message, resolved, fired_sent, resolved_sent)."""
        allowed = {"message", "resolved", "fired_sent", "resolved_sent"}
        if not values or set(values) - allowed:
            raise ValueError(f"cannot set {sorted(set(values) - allowed)} on an alert")
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._tx() as conn:
            conn.execute(f"UPDATE alerts SET {assignments} WHERE id = ?",
                         (*values.values(), alert_id))

    def mute(self, device: str, until: float, by: str, now: float) -> None:
        """Keep a device's alerts quiet until a time."""
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO mutes VALUES (?, ?, ?, ?)",
                         (device, until, by, now))

    def unmute(self, device: str) -> None:
        """Let a device's alerts be heard again."""
        with self._tx() as conn:
            conn.execute("DELETE FROM mutes WHERE device = ?", (device,))

    def mutes(self, now: float) -> dict[str, Row]:
        """The devices muted now, with until when and by whom."""
        return {row["device"]: row
                for row in self.query("SELECT * FROM mutes WHERE until > ?", (now,))}


def _command_row(row: Row) -> Row:
    """A commands row with its JSON columns (args, data) read back into dicts."""
    return {**row, "args": json.loads(row["args"] or "{}"),
            "data": json.loads(row["data"]) if row["data"] else {}}
