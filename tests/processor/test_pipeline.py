"""From an arriving package to a published movie, on real ffmpeg and a real store."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from moviepkg.locks import try_lock
from moviepkg.owner import key_hash, key_matches, new_owner_key
from moviepkg.reader import Package, read_package
from moviepkg.record import parse_record
from processor.mp4 import moov_before_mdat
from processor.pipeline import Outcome, Pipeline
from processor.s3store import S3Store
from processor.screen import FakeScreen, read_fake_screen
from processor.state import Step
from tests.corpus import CORPUS
from tests.listing import listed_ids
from tests.processor.conftest import add_package, ffprobe_json, with_settings
from tests.services import S3Server, skip_or_fail


def run_one(pipeline: Pipeline, entry: Path) -> Outcome:
    outcome, state = pipeline.receive(entry)
    if outcome is None:
        assert state is not None
        return pipeline.advance(state.package_id)
    return outcome


def test_publish_to_the_folder_store(pipeline: Pipeline, tmp_path: Path) -> None:
    package = add_package(pipeline.settings.inbox, frames=12, title="שלום — hello")
    assert run_one(pipeline, package) is Outcome.PUBLISHED
    store = tmp_path / "store" / "movies"
    movie = store / f"{package.name}.mp4"
    probe = ffprobe_json(movie)
    stream = probe["streams"][0]
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert (stream["width"], stream["height"]) == (640, 360)
    assert int(stream["nb_read_frames"]) == 40 + 12
    assert abs(float(probe["format"]["duration"]) - 5.2) < 0.05
    assert moov_before_mdat(movie)
    record = parse_record((store / f"{package.name}.json").read_bytes())
    assert record.title == "שלום — hello" and record.public and record.frames == 12
    assert abs(record.duration_s - 5.2) < 0.05
    assert listed_ids(tmp_path / "store") == [package.name]
    assert (store / "index" / "main" / "2026-05-01.json").is_file()  # the hall main's, that day
    assert (store / f"{package.name}.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert not package.exists(), "the package left the inbox"
    state = pipeline.states.load(package.name)
    assert state is not None and state.step is Step.DONE
    assert set(state.durations) == {"encoded", "shown", "published"}  # validated on arrival
    shown = read_fake_screen(pipeline.settings.screen_log)  # type: ignore[arg-type]
    assert [s["package_id"] for s in shown] == [package.name]
    assert not list((tmp_path / "store" / ".uploading").glob("*"))


def test_packages_of_both_formats_are_published_with_the_owner_hash_and_size(
        pipeline: Pipeline, tmp_path: Path) -> None:
    """v2 (today's stations: the owner key's hash) and v1 (before it) both publish."""
    key = new_owner_key()
    v2 = add_package(pipeline.settings.inbox, frames=3, minutes=1)
    manifest = json.loads((v2 / "MANIFEST").read_bytes())
    manifest["owner_key_sha256"] = key_hash(key)
    (v2 / "MANIFEST").write_text(json.dumps(manifest))
    v1 = add_package(pipeline.settings.inbox, frames=3, minutes=2)
    manifest = json.loads((v1 / "MANIFEST").read_bytes())
    assert manifest["version"] == 2 and "owner_key_sha256" not in manifest
    manifest["version"] = 1  # as the stations wrote it before the owner key
    (v1 / "MANIFEST").write_text(json.dumps(manifest))
    for package in (v2, v1):
        assert run_one(pipeline, package) is Outcome.PUBLISHED
    store = tmp_path / "store" / "movies"
    owned = parse_record((store / f"{v2.name}.json").read_bytes())
    older = parse_record((store / f"{v1.name}.json").read_bytes())
    assert key_matches(key, owned.owner_key_sha256) and older.owner_key_sha256 is None
    assert (owned.width, owned.height) == (older.width, older.height) == (640, 360)
    assert json.loads((store / f"{v1.name}.json").read_bytes())["version"] == 2
    assert set(listed_ids(tmp_path / "store")) == {v1.name, v2.name}


def test_nopublish_goes_to_the_screen_only(pipeline: Pipeline, tmp_path: Path) -> None:
    package = add_package(pipeline.settings.inbox, publish=False)
    assert run_one(pipeline, package) is Outcome.SHOWN
    assert not (tmp_path / "store" / "movies").exists() or \
        not list((tmp_path / "store" / "movies").glob(f"{package.name}*"))
    movie = pipeline.movies_dir / f"{package.name}.mp4"
    assert movie.exists()
    assert isinstance(pipeline.screen, FakeScreen)
    assert [(m.package_id, m.public, m.path) for m in pipeline.screen.shown] == [
        (package.name, False, movie)]


def test_a_done_package_arriving_again_is_ignored(pipeline: Pipeline) -> None:
    package = add_package(pipeline.settings.inbox)
    assert run_one(pipeline, package) is Outcome.PUBLISHED
    shutil.copytree(pipeline.packages_dir / package.name, package)  # delivered twice
    assert run_one(pipeline, package) is Outcome.DUPLICATE
    assert not package.exists()
    assert len(list(pipeline.duplicates_dir.iterdir())) == 1
    assert isinstance(pipeline.screen, FakeScreen) and len(pipeline.screen.shown) == 1


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_every_bad_package_is_quarantined_with_its_reason(pipeline: Pipeline, case: str) -> None:
    spoil, words = CORPUS[case]
    entry = spoil(add_package(pipeline.settings.inbox, frames=3))
    assert run_one(pipeline, entry) is Outcome.QUARANTINED
    [folder] = list(pipeline.settings.quarantine_dir.iterdir())
    reason = (folder / "REASON").read_text()
    assert words in reason and reason.endswith("\n") and reason.count("\n") == 1
    assert not (entry.exists() or entry.is_symlink())
    assert not pipeline.store.list_keys("movies/")


def test_incomplete_package_is_left_alone(pipeline: Pipeline) -> None:
    package = add_package(pipeline.settings.inbox)
    (package / "PUBLISH").unlink()
    assert run_one(pipeline, package) is Outcome.INCOMPLETE
    assert package.exists() and not list(pipeline.settings.quarantine_dir.iterdir())


def test_every_frame_is_checked_once_unless_its_folder_changed(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []

    def counted(path: Path) -> Package:
        reads.append(Path(path).name)
        return read_package(path)

    monkeypatch.setattr("processor.pipeline.read_package", counted)
    moved = add_package(pipeline.settings.inbox, frames=6)
    assert run_one(pipeline, moved) is Outcome.PUBLISHED
    assert reads == [moved.name]  # taken in by rename: its sha256 checks hold for the encode
    copied = add_package(pipeline.settings.inbox, frames=6, minutes=1)
    outcome, state = pipeline.receive(copied, keep=True)
    assert outcome is None and state is not None and state.step is Step.RECEIVED
    assert pipeline.advance(copied.name) is Outcome.PUBLISHED
    assert reads == [moved.name, copied.name, copied.name]  # the copy is checked again, once
    touched = add_package(pipeline.settings.inbox, frames=6, minutes=2)
    outcome, state = pipeline.receive(touched)
    assert outcome is None and state is not None
    frame = pipeline.packages_dir / touched.name / "0003.jpg"
    frame.write_bytes(frame.read_bytes())  # rewritten in place: the same bytes, a new mtime
    assert pipeline.advance(touched.name) is Outcome.PUBLISHED
    assert reads[-2:] == [touched.name, touched.name]  # read and checked again


def test_a_frame_lost_after_validation_never_makes_a_short_movie(pipeline: Pipeline) -> None:
    package = add_package(pipeline.settings.inbox, frames=10)
    outcome, state = pipeline.receive(package)
    assert outcome is None and state is not None
    (pipeline.packages_dir / package.name / "0004.jpg").unlink()
    assert pipeline.advance(package.name) is Outcome.QUARANTINED
    assert not pipeline.store.list_keys("movies/")
    reason = (pipeline.settings.quarantine_dir / package.name / "REASON").read_text()
    assert "gap at 0004.jpg" in reason


def test_failures_are_retried_with_backoff_then_given_up(pipeline: Pipeline) -> None:
    package = add_package(pipeline.settings.inbox)
    outcome, state = pipeline.receive(package)
    assert outcome is None and state is not None
    now = [1000.0]
    clocked = Pipeline(pipeline.settings, pipeline.store, pipeline.screen, clock=lambda: now[0])
    # The encode step fails for a reason an operator can cure: its output folder is a file.
    clocked.movies_dir.rmdir()
    clocked.movies_dir.write_text("in the way")
    assert clocked.advance(package.name) is Outcome.RETRY
    state = clocked.states.load(package.name)
    # retry_base_seconds (0.2) with jitter: between half of it and all of it
    assert state is not None and 1000.1 <= state.next_attempt_at <= 1000.2
    assert clocked.pending(now=1000.09) == []
    assert [s.package_id for s in clocked.pending(now=1000.3)] == [package.name]
    assert clocked.advance(package.name) is Outcome.RETRY
    state = clocked.states.load(package.name)
    assert state is not None and 1000.2 <= state.next_attempt_at <= 1000.4  # doubled
    assert clocked.advance(package.name) is Outcome.FAILED
    state = clocked.states.load(package.name)
    assert state is not None and state.gave_up and state.status == "failed"
    assert state.step is Step.VALIDATED and "movies" in state.last_error
    assert clocked.pending(now=1e9) == []
    clocked.movies_dir.unlink()
    clocked.movies_dir.mkdir()
    clocked.retry(package.name)
    assert clocked.advance(package.name) is Outcome.PUBLISHED


def test_publish_to_s3(pipeline: Pipeline, s3_server: S3Server) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="festival")
    store = S3Store("festival", "jff-2026", client=client)
    s3_pipeline = Pipeline(pipeline.settings, store, pipeline.screen)
    first = add_package(pipeline.settings.inbox, minutes=1)
    second = add_package(pipeline.settings.inbox, minutes=2, title=None)
    assert run_one(s3_pipeline, first) is Outcome.PUBLISHED
    assert run_one(s3_pipeline, second) is Outcome.PUBLISHED
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="festival")["Contents"])
    assert keys == sorted([f"jff-2026/movies/{p.name}{ext}" for p in (first, second)
                           for ext in (".mp4", ".jpg", ".json")]
                          + ["jff-2026/movies/index/main/2026-05-01.json"])
    head = client.head_object(Bucket="festival", Key=f"jff-2026/movies/{first.name}.mp4")
    assert head["ContentType"] == "video/mp4"
    assert listed_ids(store) == [second.name, first.name]


def test_a_package_folder_gone_missing_is_quarantined_once(pipeline: Pipeline) -> None:
    package = add_package(pipeline.settings.inbox)
    outcome, state = pipeline.receive(package)
    assert outcome is None and state is not None
    shutil.rmtree(pipeline.packages_dir / package.name)
    assert pipeline.advance(package.name) is Outcome.QUARANTINED
    assert list(pipeline.settings.quarantine_dir.iterdir()) == []  # nothing to move
    state = pipeline.states.load(package.name)
    assert state is not None and state.step is Step.QUARANTINED
    assert "no such folder" in state.last_error
    assert pipeline.pending(now=1e12) == []


def test_inbox_on_another_file_system(pipeline: Pipeline, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        skip_or_fail("no second file system here (/dev/shm as tmpfs)")
    inbox = Path(tempfile.mkdtemp(dir=shm, prefix="stopmo-inbox-"))
    try:
        other = with_settings(pipeline, inbox=inbox)
        good = add_package(inbox)
        assert run_one(other, good) is Outcome.PUBLISHED
        assert not good.exists()
        stray = inbox / "notes.txt"
        stray.write_text("hello")
        assert run_one(other, stray) is Outcome.QUARANTINED
        assert (pipeline.settings.quarantine_dir / "notes.txt" / "notes.txt").read_text() == \
            "hello"
        shutil.copytree(other.packages_dir / good.name, good)
        assert run_one(other, good) is Outcome.DUPLICATE
        assert not good.exists()
    finally:
        shutil.rmtree(inbox)


def test_one_process_at_a_time_per_package(pipeline: Pipeline) -> None:
    package = add_package(pipeline.settings.inbox)
    outcome, state = pipeline.receive(package)
    assert outcome is None and state is not None
    with try_lock(pipeline.settings.work_dir / "locks" / f"{package.name}.lock") as mine:
        assert mine
        assert pipeline.advance(package.name) is Outcome.DUPLICATE  # someone else has it
    assert pipeline.advance(package.name) is Outcome.PUBLISHED
