"""`processor receive`, the forced command of a station key: what it serves, what it refuses."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moviepkg.delivery import PROTOCOL, VERDICT_PREFIX
from processor.errors import ExitStatus
from processor.receiver import Receiver
from processor.request import Refused, StatusReport, Upload, parse_request
from tests.demo import make_demo
from tests.services import SshServer, generate_keypair, require_binary

PACKAGE = "st-1-20260501t100000z-beef"
OPTIONS = "-tre.iLsfxCIvu --timeout=60 --delete --stats --partial-dir .rsync-partial"
T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def upload(dest: str, options: str = OPTIONS) -> str:
    return f"rsync --server {options} . {dest}"


# --- what a station may ask -------------------------------------------------------------------

def test_the_agents_own_upload_is_allowed() -> None:
    request = parse_request(upload(f".partial/{PACKAGE}/"), "st-1")
    assert request == Upload(PACKAGE, ("-tre.iLsfxCIvu", "--timeout=60", "--delete", "--stats",
                                       "--partial-dir=.rsync-partial"))
    assert parse_request(upload(f".partial/{PACKAGE}", "-vtrze.iLsfxCIvu --bwlimit=100"),
                         "st-1") == Upload(PACKAGE, ("-vtrze.iLsfxCIvu", "--bwlimit=100"))
    assert parse_request("status", "st-1") == StatusReport()


@pytest.mark.parametrize(("command", "why"), [
    (None, "no command"),
    ("", "no command"),
    ("cat /etc/passwd", "only rsync uploads and status"),
    ("sh -c 'rsync --server -tr . .partial/x/'", "only rsync uploads"),
    ("status; cat /etc/passwd", "only rsync uploads"),
    ("rsync --server --sender -tre.iLsfxCIvu . .partial/" + PACKAGE + "/", "--sender"),
    (upload(f".partial/{PACKAGE}/", "-logDtpre.iLsfxCIvu"), "-logDtpre.iLsfxCIvu"),
    (upload(f".partial/{PACKAGE}/", "-stre.iLsfxCIvu"), "-stre"),
    (upload(f".partial/{PACKAGE}/", "-tre.iLsfxCIvu --log-file=/tmp/x"), "--log-file"),
    (upload(f".partial/{PACKAGE}/", "-tre.iLsfxCIvu --partial-dir /tmp"), "--partial-dir=/tmp"),
    (upload(f".partial/{PACKAGE}/", "-tre.iLsfxCIvu --temp-dir=/tmp"), "--temp-dir"),
    (upload(f".partial/{PACKAGE}/", "--timeout=60"), "one bundle"),
    (upload(f".partial/{PACKAGE}/", "-tr -tv"), "one bundle"),
    ("rsync --server -tre.iLsfxCIvu", "only rsync uploads"),
    ("rsync --server -tre.iLsfxCIvu x .partial/" + PACKAGE + "/", "after '.'"),
    (upload("/tmp/elsewhere/"), "only .partial/<package id>/"),
    (upload(f"{PACKAGE}/"), "only .partial/<package id>/"),
    (upload(".partial/../evil/"), "only .partial/<package id>/"),
    (upload(f".partial/{PACKAGE}/../../etc/"), "only .partial/<package id>/"),
    (upload(".partial/"), "only .partial/<package id>/"),
    (upload(f".partial/{PACKAGE}/0000.jpg"), "only .partial/<package id>/"),
    (upload(".partial/st-2-20260501t100000z-beef/"), "not a package id of station st-1"),
    (upload(".partial/st-1-2-20260501t100000z-beef/"), "not a package id of station st-1"),
    (upload(".partial/demo/"), "not a package id of station st-1"),
    ("rsync --server -tre.iLsfxCIvu . '.partial/a b/'", "only .partial/<package id>/"),
    ("rsync --server 'unbalanced", "cannot parse"),
])
def test_anything_else_is_refused(command: str | None, why: str) -> None:
    with pytest.raises(Refused, match=re.escape(why)):
        parse_request(command, "st-1")


# --- commit: validate the staged copy, then one rename ----------------------------------------

def stage(inbox: Path, frames: int = 3) -> Path:
    staged = make_demo(inbox / ".partial", frames=frames, station_id="st-1", width=160,
                       height=120, now=T0)
    return staged


def test_a_valid_staged_package_is_renamed_into_the_inbox_with_a_receipt(tmp_path: Path) -> None:
    staged = stage(tmp_path)
    digest = hashlib.sha256((staged / "MANIFEST").read_bytes()).hexdigest()
    receiver = Receiver("st-1", tmp_path)
    assert receiver.commit(staged.name) == (ExitStatus.OK, f"ok {staged.name} sha256={digest}")
    assert (tmp_path / staged.name / "MANIFEST").is_file() and not staged.exists()
    assert (tmp_path / ".received" / staged.name).read_text() == f"{digest}\n"
    # The processor takes it away; a later upload of the same id is answered from the receipt.
    shutil.rmtree(tmp_path / staged.name)
    status, verdict = receiver.upload(Upload(staged.name, ()))
    assert (status, verdict) == (ExitStatus.OK, f"ok {staged.name} sha256={digest} "
                                                "received-before")
    assert not (tmp_path / staged.name).exists()  # no duplicate for the processor


def test_a_copy_already_in_the_inbox_counts_as_delivered(tmp_path: Path) -> None:
    staged = stage(tmp_path)
    shutil.copytree(staged, tmp_path / staged.name)  # delivered, receipt lost in a crash
    status, verdict = Receiver("st-1", tmp_path).commit(staged.name)
    assert status == ExitStatus.OK and verdict.endswith("received-before")
    assert not staged.exists()


def test_an_invalid_staged_package_is_refused_with_the_reason(tmp_path: Path) -> None:
    staged = stage(tmp_path)
    frame = staged / "0001.jpg"
    data = bytearray(frame.read_bytes())
    data[-10] ^= 0xFF  # same size, other bytes
    frame.write_bytes(bytes(data))
    status, verdict = Receiver("st-1", tmp_path).commit(staged.name)
    assert status == ExitStatus.INVALID
    assert verdict.startswith(f"invalid {staged.name} mismatch: 0001.jpg: expected sha256")
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []
    assert not staged.exists()  # it can never be committed: its bytes go, its reason stays
    assert (tmp_path / ".refused" / staged.name).read_text().split(" ", 1)[1] == f"{verdict}\n"


def test_a_refused_package_is_deleted_without_being_written_back_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The flush runs beside the validation; a package refused early stops it, and nothing
    # touches the files once they are deleted.
    staged = stage(tmp_path, frames=40)
    (staged / "PUBLISH").unlink()  # incomplete: refused at once
    flushed: list[str] = []
    gone = threading.Event()

    def slow_fsync(path: Path) -> None:
        assert not gone.is_set(), f"{path.name} flushed after the package was deleted"
        flushed.append(path.name)
        time.sleep(0.02)

    monkeypatch.setattr("processor.receiver.fsync_file", slow_fsync)
    status, verdict = Receiver("st-1", tmp_path).commit(staged.name)
    gone.set()
    assert status == ExitStatus.INVALID and verdict.startswith(f"incomplete {staged.name}:")
    assert not staged.exists()
    assert len(flushed) < 10, flushed  # of 41 files
    time.sleep(0.1)  # a flush still running would fail its assertion (and count) now
    assert len(flushed) < 10
    assert [t.name for t in threading.enumerate() if t.name == "flush"] == []


def test_an_incomplete_staged_package_is_refused(tmp_path: Path) -> None:
    staged = stage(tmp_path)
    (staged / "PUBLISH").unlink()
    status, verdict = Receiver("st-1", tmp_path).commit(staged.name)
    assert status == ExitStatus.INVALID and verdict.startswith(f"incomplete {staged.name}:")
    assert not (tmp_path / staged.name).exists()
    assert not staged.exists()  # rsync ended well, so nothing more is coming for it


def test_uploads_are_refused_when_free_space_is_low(tmp_path: Path) -> None:
    status, verdict = Receiver("st-1", tmp_path, min_free_bytes=2**62).upload(
        Upload(PACKAGE, ()))
    assert status == ExitStatus.FAILURE and verdict.startswith("full: ")


# --- heartbeat --------------------------------------------------------------------------------

def test_status_keeps_the_latest_per_station(tmp_path: Path) -> None:
    receiver = Receiver("st-1", tmp_path)
    for n in (1, 2):
        doc = {"station_id": "st-1", "queued_packages": n}
        assert receiver.take_status(json.dumps(doc).encode()) == (ExitStatus.OK, "ok status")
    kept = json.loads((tmp_path / ".status" / "st-1.json").read_text())
    assert kept["queued_packages"] == 2 and kept["received_at"].endswith("Z")


@pytest.mark.parametrize("data", [b"not json", b"[1]", b'{"station_id": "st-2"}',
                                  b'{"queued_packages": 1}', b"\xff",
                                  b'{"station_id": "st-1", "x": "' + b"y" * 70000 + b'"}'])
def test_a_bad_status_is_refused(tmp_path: Path, data: bytes) -> None:
    status, verdict = Receiver("st-1", tmp_path).take_status(data)
    assert status == ExitStatus.INVALID and verdict.startswith("refused: ")
    assert not (tmp_path / ".status").exists()


def test_the_cli_refuses_a_misconfigured_forced_command(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "processor", "receive", "--station", "ST 1",
                           "--inbox", "relative/inbox"], capture_output=True, text=True,
                          env={"SSH_ORIGINAL_COMMAND": "status", "PATH": "/usr/bin:/bin"},
                          timeout=30)
    assert done.returncode == ExitStatus.CONFIG
    assert "stopmo-receive: error: the receiver is misconfigured" in done.stderr
    assert "--station: expected a station id" in done.stderr and "--inbox:" in done.stderr



@pytest.mark.parametrize("log", [[], ["--log", "/dev/full"]], ids=["syslog", "full-disk"])
def test_the_station_hears_one_verdict_line_and_nothing_else(tmp_path: Path,
                                                             log: list[str]) -> None:
    # No --log: the receiver logs to syslog, or nowhere where there is none (as here, or
    # when syslog stops); a --log on a full disk loses its lines. Either way the station's
    # stderr carries the verdict alone, never logging's traceback of the failure.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    done = subprocess.run([sys.executable, "-m", "processor", "receive", "--station", "st-1",
                           "--inbox", str(inbox), "--min-free-mb", "0", *log],
                          capture_output=True,
                          text=True, env={"SSH_ORIGINAL_COMMAND": "cat /etc/passwd",
                                          "PATH": "/usr/bin:/bin"}, timeout=30)
    assert done.returncode == ExitStatus.INVALID
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("stopmo-receive: refused: "), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize("command", [["stopmo-processor"], ["-m", "processor"]])
def test_receive_starts_without_the_rest_of_the_processor(tmp_path: Path,
                                                          command: list[str]) -> None:
    # The forced command (ansible's authorized_keys: the console script) and `python -m`
    # both take the short path: sshd starts one per session, before rsync can start.
    argv = ([str(Path(sys.executable).parent / command[0])] if len(command) == 1
            else [sys.executable, *command])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    done = subprocess.run([*argv, "receive", "--station", "st-1", "--inbox", str(inbox)],
                          capture_output=True, text=True, timeout=30,
                          env={"SSH_ORIGINAL_COMMAND": "status", "PATH": "/usr/bin:/bin",
                               "PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "processor.receiver" in imported
    assert not {"processor.cli", "processor.pipeline", "processor.config"} & imported
    assert "stopmo-receive: " in done.stderr

# --- through a real sshd: the restricted key --------------------------------------------------

class Processor:
    """sshd on loopback with one station key whose forced command is `processor receive`."""

    def __init__(self, root: Path) -> None:
        require_binary("rsync")
        self.root = root
        self.inbox = root / "inbox"
        self.inbox.mkdir()
        self.server = SshServer(root / "sshd")
        self.key = root / "st-1_key"
        public = generate_keypair(self.key, "st-1")
        command = (f"{sys.executable} -m processor receive --station st-1 --inbox {self.inbox} "
                   "--min-free-mb 0")
        self.server.authorize(f'command="{command}",restrict {public}')

    def ssh(self, *command: str, options: tuple[str, ...] = (), stdin: bytes = b""
            ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.server.ssh_args(self.key), *options,
                               self.server.destination, *command], input=stdin,
                              capture_output=True, timeout=30)

    def rsync(self, source: str, dest: str, *options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["rsync", "-rt", *options, "-e", self.server.rsync_rsh(self.key),
                               source, dest], capture_output=True, text=True, timeout=30)

    def remote(self, path: str) -> str:
        return f"{self.server.destination}:{path}"

    def visible(self) -> list[str]:
        return sorted(p.name for p in self.inbox.iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    side = Processor(tmp_path_factory.mktemp("receiving"))
    with side.server:
        yield side


def test_the_key_cannot_run_commands(processor: Processor) -> None:
    for command in (("cat", "/etc/passwd"), ("sh", "-c", "id"), ("rsync", "--version")):
        done = processor.ssh(*command)
        assert done.returncode != 0 and b"root:" not in done.stdout and b"uid=" not in done.stdout
        assert b"stopmo-receive: refused: only rsync uploads and status" in done.stderr
    interactive = subprocess.run([*processor.server.ssh_args(processor.key),
                                  processor.server.destination], capture_output=True,
                                 input=b"id\n", timeout=30)
    assert b"refused: no command" in interactive.stderr and b"uid=" not in interactive.stdout


def test_the_key_cannot_forward_ports(processor: Processor) -> None:
    done = processor.ssh(options=("-N", "-o", "ExitOnForwardFailure=yes", "-R",
                                  "0:127.0.0.1:9"))
    assert done.returncode == 255 and b"forwarding failed" in done.stderr


@pytest.mark.parametrize(("source", "dest", "options"), [
    ("package/", "/tmp/{root}/elsewhere/", ()),  # another path
    ("package/", "{id}/", ()),  # straight into the inbox, skipping staging
    ("package/", ".partial/st-2-20260501t100000z-beef/", ()),  # another station's id
    ("package/", ".partial/../escape/", ()),  # path traversal
    ("package/", "../", ()),
    ("package/", ".partial/{id}/", ("-a",)),  # owners, devices, links
    ("package/", ".partial/{id}/", ("--remote-option=--log-file=/tmp/{root}/log",)),
    ("package/", ".partial/{id}/", ("-s",)),  # arguments hidden from the command line
    ("remote", "pulled/", ()),  # reading instead of writing
])
def test_rsync_anywhere_else_is_refused(processor: Processor, tmp_path: Path, source: str,
                                        dest: str, options: tuple[str, ...]) -> None:
    package = make_demo(tmp_path, frames=2, station_id="st-1", width=160, height=120)
    fill = {"root": tmp_path.name, "id": package.name}
    if source == "remote":
        done = processor.rsync(processor.remote(f".partial/{package.name}/"),
                               str(tmp_path / "pulled") + "/")
        assert not (tmp_path / "pulled").exists() or not list((tmp_path / "pulled").iterdir())
    else:
        done = processor.rsync(f"{package}/", processor.remote(dest.format(**fill)),
                               *(option.format(**fill) for option in options))
    assert done.returncode != 0
    assert "stopmo-receive: refused:" in done.stderr, done.stderr
    assert not Path(f"/tmp/{tmp_path.name}").exists()
    assert processor.visible() == []
    assert not (processor.inbox / ".partial" / package.name).exists()
    assert not (processor.inbox.parent / "escape").exists()


def test_an_invalid_package_is_refused_with_its_reason_and_never_reaches_the_inbox(
        processor: Processor, tmp_path: Path) -> None:
    package = make_demo(tmp_path, frames=3, station_id="st-1", width=160, height=120)
    (package / "0002.jpg").unlink()  # MANIFEST still lists it
    done = processor.rsync(f"{package}/", processor.remote(f".partial/{package.name}/"))
    assert done.returncode != 0
    verdict = [line for line in done.stderr.splitlines() if line.startswith("stopmo-receive:")]
    assert verdict == [f"stopmo-receive: invalid {package.name} mismatch: frames: expected 3 "
                       "as MANIFEST lists, found 2 files"], done.stderr
    assert processor.visible() == []


def test_a_status_of_another_station_is_refused(processor: Processor) -> None:
    done = processor.ssh("status", stdin=json.dumps({"station_id": "st-2"}).encode())
    assert b"stopmo-receive: refused: status must be a JSON object with station_id 'st-1'" \
        in done.stderr
    ok = processor.ssh("status", stdin=b'{"station_id": "st-1"}')
    assert b"stopmo-receive: ok status" in ok.stderr
    assert (processor.inbox / ".status" / "st-1.json").exists()


# --- the protocol's version: stations and the processor are upgraded separately ------------

def test_requests_may_name_the_protocol_version() -> None:
    assert isinstance(parse_request(f"{PROTOCOL} status", "st-1"), StatusReport)
    assert parse_request(f"{PROTOCOL} {upload(f'.partial/{PACKAGE}/')}", "st-1") == \
        parse_request(upload(f".partial/{PACKAGE}/"), "st-1")  # before versioning: the same
    with pytest.raises(Refused, match=r"speaks stopmo/1, the station stopmo/2: upgrade"):
        parse_request("stopmo/2 status", "st-1")


def test_old_new_and_future_stations_over_the_real_key(processor: Processor,
                                                       tmp_path: Path) -> None:
    old, new, future = (make_demo(tmp_path / name, frames=2, station_id="st-1", width=160,
                                  height=120, now=T0.replace(minute=m))
                        for m, name in enumerate(("old", "new", "future")))

    def verdicts(done: subprocess.CompletedProcess[str]) -> list[str]:
        return [line for line in done.stderr.splitlines() if line.startswith(VERDICT_PREFIX)]

    # A station from before versioning sends no version word: it still delivers.
    done = processor.rsync(f"{old}/", processor.remote(f".partial/{old.name}/"))
    assert [v.split()[1:3] for v in verdicts(done)] == [["ok", old.name]], done.stderr
    # Today's station names its version (rsync_args does this) and delivers.
    done = processor.rsync(f"{new}/", processor.remote(f".partial/{new.name}/"),
                           f"--rsync-path={PROTOCOL} rsync")
    assert [v.split()[1:3] for v in verdicts(done)] == [["ok", new.name]], done.stderr
    # A station newer than this receiver gets one clear line, and nothing is taken.
    done = processor.rsync(f"{future}/", processor.remote(f".partial/{future.name}/"),
                           "--rsync-path=stopmo/2 rsync")
    assert verdicts(done) == [f"{VERDICT_PREFIX} refused: this receiver speaks {PROTOCOL}, "
                              "the station stopmo/2: upgrade the processor, or install the "
                              "same release on the station"], done.stderr
    assert future.name not in processor.visible()
    beat = processor.ssh(f"{PROTOCOL} status", stdin=b'{"station_id": "st-1"}')
    assert beat.stderr.decode().startswith(f"{VERDICT_PREFIX} ok"), beat.stderr


def test_a_new_station_hears_plainly_from_an_older_receiver() -> None:
    from stations.delivery import parse_verdict, verdict_error

    # Word for word what the receiver of the release before versioning answers to
    # `stopmo/1 rsync --server ...` (it allowed only `rsync --server` and `status`).
    older = ("stopmo-receive: refused: only rsync uploads and status are allowed, not "
             "'stopmo/1 rsync --server -tre.iLsfxCIvu --timeout=60 --delete --stats --pa...'")
    verdict = parse_verdict(older)
    assert verdict is not None
    error = verdict_error(*verdict, "delivery")
    assert error.kind == "refused"
    assert f"does not speak {PROTOCOL}: upgrade the processor" in str(error)
