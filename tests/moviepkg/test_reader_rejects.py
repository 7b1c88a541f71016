"""Every way a package can be wrong gets its own, specific reason."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moviepkg import errors
from moviepkg.reader import Limits, read_package

Edit = Callable[[Callable[[dict[str, Any]], None]], None]
Replace = Callable[[str, bytes], None]


def rejects(path: Path, kind: type[errors.PackageError], *words: str,
            limits: Limits | None = None) -> errors.PackageError:
    with pytest.raises(kind) as info:
        read_package(path, limits)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return info.value


def test_the_fixture_package_is_valid(package: Path) -> None:
    assert read_package(package).package_id == package.name


# --- names, folders, links, stray files -------------------------------------------------

def test_folder_name_with_uppercase(package: Path) -> None:
    moved = package.rename(package.with_name("Demo-Movie"))
    rejects(moved, errors.BadName, "Demo-Movie", "package id")


def test_hidden_folder_name(package: Path) -> None:
    moved = package.rename(package.with_name(".sneaky"))
    rejects(moved, errors.BadName, ".sneaky")


def test_path_traversal_in_folder_path(package: Path) -> None:
    rejects(package / "..", errors.BadName, "'..'")


def test_package_folder_is_a_symlink(package: Path) -> None:
    link = package.with_name("linked-package")
    link.symlink_to(package)
    rejects(link, errors.SymlinkFound, "linked-package", "symbolic link")


def test_missing_folder(tmp_path: Path) -> None:
    rejects(tmp_path / "no-such-package", errors.StrayEntry, "no such folder")


def test_symlinked_frame(package: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.jpg"
    shutil.copy(package / "0001.jpg", outside)
    (package / "0001.jpg").unlink()
    (package / "0001.jpg").symlink_to(outside)
    rejects(package, errors.SymlinkFound, "0001.jpg", "symbolic link")


def test_subfolder(package: Path) -> None:
    (package / "extra").mkdir()
    rejects(package, errors.SubfolderFound, "extra", "folder")


def test_stray_file(package: Path) -> None:
    (package / "notes.txt").write_text("hello")
    rejects(package, errors.StrayEntry, "notes.txt", "stray")


def test_hidden_file(package: Path) -> None:
    (package / ".DS_Store").write_bytes(b"\0")
    rejects(package, errors.BadName, ".DS_Store", "hidden")


def test_special_file(package: Path) -> None:
    os.mkfifo(package / "pipe")
    rejects(package, errors.StrayEntry, "pipe", "special file")


@pytest.mark.parametrize("odd", ["1.jpg", "00001.jpg", "0001.JPG", "0001.jpeg"])
def test_odd_frame_names(package: Path, odd: str) -> None:
    shutil.copy(package / "0000.jpg", package / odd)
    rejects(package, errors.BadName, odd, "4 digits")


# --- numbering and frames -----------------------------------------------------------------

def test_gap_in_numbering(package: Path) -> None:
    (package / "0001.jpg").unlink()
    rejects(package, errors.FrameNumberingError, "0002.jpg", "gap at 0001.jpg")


def test_numbering_does_not_start_at_zero(package: Path) -> None:
    (package / "0000.jpg").unlink()
    rejects(package, errors.FrameNumberingError, "0001.jpg", "gap at 0000.jpg")


def test_more_frames_than_manifest_lists(package: Path) -> None:
    shutil.copy(package / "0002.jpg", package / "0003.jpg")
    rejects(package, errors.FrameMismatch, "3 as MANIFEST lists", "4 files")


def test_frame_size_mismatch(package: Path) -> None:
    with open(package / "0002.jpg", "ab") as fh:
        fh.write(b"\0")
    rejects(package, errors.FrameMismatch, "0002.jpg", "bytes as MANIFEST says")


def test_frame_checksum_mismatch(package: Path) -> None:
    data = bytearray((package / "0001.jpg").read_bytes())
    data[len(data) // 2] ^= 0x55
    (package / "0001.jpg").write_bytes(bytes(data))
    rejects(package, errors.FrameMismatch, "0001.jpg", "sha256")


def test_duplicate_frame_in_manifest(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc["frames"].__setitem__(1, dict(doc["frames"][0])))
    rejects(package, errors.ManifestError, "frames[1].name", "'0001.jpg'", "'0000.jpg'")


def test_path_traversal_in_manifest_frame_name(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc["frames"][0].__setitem__("name", "../0000.jpg"))
    rejects(package, errors.ManifestError, "frames[0].name", "../0000.jpg")


def test_bad_sha256_format(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc["frames"][2].__setitem__("sha256", "ABC"))
    rejects(package, errors.ManifestError, "frames[2].sha256", "64 lowercase hex")


def test_frame_entry_with_extra_key(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc["frames"][0].__setitem__("width", 64))
    rejects(package, errors.ManifestError, "frames[0]", "name, size, sha256")


# --- JPEG content -----------------------------------------------------------------------------

def test_png_instead_of_jpeg(package: Path, replace_frame: Replace) -> None:
    replace_frame("0001.jpg", b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    rejects(package, errors.JpegError, "0001.jpg", "start marker")


def test_truncated_jpeg(package: Path, replace_frame: Replace) -> None:
    data = (package / "0002.jpg").read_bytes()
    replace_frame("0002.jpg", data[: len(data) // 2])
    rejects(package, errors.JpegError, "0002.jpg", "end marker")


def test_jpeg_without_frame_header(package: Path, replace_frame: Replace) -> None:
    replace_frame("0000.jpg", b"\xff\xd8\xff\xe0\x00\x04ab\xff\xd9")
    rejects(package, errors.JpegError, "0000.jpg", "no frame header")


def test_jpeg_with_broken_segment_length(package: Path, replace_frame: Replace) -> None:
    replace_frame("0000.jpg", b"\xff\xd8\xff\xe0\xff\xff" + b"\0" * 20 + b"\xff\xd9")
    rejects(package, errors.JpegError, "0000.jpg", "bad length")


def test_decompression_bomb(package: Path, replace_frame: Replace) -> None:
    data = bytearray((package / "0000.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    replace_frame("0000.jpg", bytes(data))
    rejects(package, errors.LimitExceeded, "0000.jpg", "pixels", "60000x60000")


# --- flags and MANIFEST presence ----------------------------------------------------------

def test_both_flags(package: Path) -> None:
    (package / "NOPUBLISH").touch()
    rejects(package, errors.FlagError, "both")


def test_neither_flag(package: Path) -> None:
    (package / "PUBLISH").unlink()
    error = rejects(package, errors.IncompletePackage, "neither", "not finished")
    assert error.reason == "incomplete"


def test_no_manifest(package: Path) -> None:
    (package / "MANIFEST").unlink()
    rejects(package, errors.IncompletePackage, "MANIFEST", "not finished")


def test_flag_with_content(package: Path) -> None:
    (package / "PUBLISH").write_text("yes please")
    rejects(package, errors.FlagError, "PUBLISH", "empty file", "10 bytes")


# --- MANIFEST content -----------------------------------------------------------------------

def test_manifest_not_json(package: Path) -> None:
    (package / "MANIFEST").write_text("format: stopmo-package\n")
    rejects(package, errors.ManifestError, "MANIFEST", "invalid JSON at line 1")


def test_manifest_not_utf8(package: Path) -> None:
    (package / "MANIFEST").write_bytes(b'{"title": "caf\xe9"}')
    rejects(package, errors.ManifestError, "UTF-8")


def test_manifest_too_large(package: Path) -> None:
    rejects(package, errors.LimitExceeded, "MANIFEST", "at most 100 bytes",
            limits=Limits(max_manifest_bytes=100))


def test_manifest_is_a_list(package: Path) -> None:
    (package / "MANIFEST").write_text("[1, 2, 3]")
    rejects(package, errors.ManifestError, "a JSON object", "a list")


@pytest.mark.parametrize(("value", "found"), [("10", "a string"), (True, "a boolean"),
                                              (10.0, "a number")])
def test_fps_wrong_type(edit_manifest: Edit, package: Path, value: object, found: str) -> None:
    edit_manifest(lambda doc: doc.__setitem__("fps", value))
    rejects(package, errors.ManifestError, "MANIFEST fps", "an integer", found)


@pytest.mark.parametrize("fps", [0, 31, -10])
def test_fps_out_of_range(edit_manifest: Edit, package: Path, fps: int) -> None:
    edit_manifest(lambda doc: doc.__setitem__("fps", fps))
    rejects(package, errors.ManifestError, "MANIFEST fps", "1 to 30", str(fps))


def test_frames_not_a_list(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("frames", {"0000.jpg": 1}))
    rejects(package, errors.ManifestError, "MANIFEST frames", "a list", "an object")


def test_unknown_version(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("version", 3))
    rejects(package, errors.ManifestError, "MANIFEST version", "expected 1 or 2", "found 3")


def test_owner_key_hash_in_a_v1_manifest(edit_manifest: Edit, package: Path) -> None:
    def v1_with_owner(doc: dict[str, Any]) -> None:
        doc["version"] = 1
        doc["owner_key_sha256"] = "a" * 64
    edit_manifest(v1_with_owner)
    rejects(package, errors.ManifestError, "MANIFEST", "only v1 keys", "'owner_key_sha256'")


def test_owner_key_hash_not_hex(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("owner_key_sha256", "the key itself"))
    rejects(package, errors.ManifestError, "MANIFEST owner_key_sha256", "64 lowercase hex",
            "the key itself")


def test_wrong_format(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("format", "zip"))
    rejects(package, errors.ManifestError, "MANIFEST format", "stopmo-package", "zip")


def test_unknown_key(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("colour", "blue"))
    rejects(package, errors.ManifestError, "unknown key 'colour'")


def test_missing_key(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.pop("station_id"))
    rejects(package, errors.ManifestError, "MANIFEST station_id", "no such key")


def test_package_id_differs_from_folder(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("package_id", "someone-else"))
    rejects(package, errors.ManifestError, "package_id", package.name, "someone-else")


def test_bad_station_id(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("station_id", "Station 1"))
    rejects(package, errors.ManifestError, "MANIFEST station_id", "Station 1")


@pytest.mark.parametrize("stamp", ["2026-05-01 12:00:00", "2026-05-01T12:00:00+02:00",
                                   "2026-13-01T12:00:00Z", "yesterday"])
def test_bad_timestamp(edit_manifest: Edit, package: Path, stamp: str) -> None:
    edit_manifest(lambda doc: doc.__setitem__("created_at", stamp))
    rejects(package, errors.ManifestError, "MANIFEST created_at", "ending in Z", stamp)


def test_finished_before_created(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("finished_at", "2001-01-01T00:00:00Z"))
    rejects(package, errors.ManifestError, "MANIFEST finished_at", "not before created_at")


def test_title_too_long(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("title", "ש" * 81))
    rejects(package, errors.ManifestError, "MANIFEST title", "1 to 80 characters", "found 81")


def test_title_with_newline(edit_manifest: Edit, package: Path) -> None:
    edit_manifest(lambda doc: doc.__setitem__("title", "two\nlines"))
    rejects(package, errors.ManifestError, "MANIFEST title", "control characters")


# --- limits ---------------------------------------------------------------------------------------

def test_too_many_frames(package: Path) -> None:
    rejects(package, errors.LimitExceeded, "frames", "at most 2", "3",
            limits=Limits(max_frames=2))


def test_frame_too_large(package: Path) -> None:
    rejects(package, errors.LimitExceeded, "0000.jpg", "at most 100 bytes",
            limits=Limits(max_frame_bytes=100))


def test_total_too_large(package: Path) -> None:
    total = sum(p.stat().st_size for p in package.glob("*.jpg"))
    rejects(package, errors.LimitExceeded, "frames", "in all", f"{total} bytes",
            limits=Limits(max_total_bytes=total - 1))


def test_every_error_names_where_what_and_found(package: Path) -> None:
    (package / "0001.jpg").unlink()
    error = rejects(package, errors.FrameNumberingError)
    assert (error.where, error.reason) == ("0002.jpg", "numbering")
    assert str(error) == f"{error.where}: expected {error.expected}, found {error.found}"


def test_manifest_nested_too_deeply(package: Path) -> None:
    (package / "MANIFEST").write_text("[" * 200_000)
    rejects(package, errors.ManifestError, "nested too deeply")


def test_unsupported_jpeg_kind(package: Path, replace_frame: Replace) -> None:
    data = bytearray((package / "0000.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 1] = 0xC3  # lossless: valid JPEG, but no camera makes it and ffmpeg balks
    replace_frame("0000.jpg", bytes(data))
    rejects(package, errors.JpegError, "0000.jpg", "unsupported JPEG kind")


def test_a_package_still_arriving_is_incomplete_not_invalid(package: Path) -> None:
    (package / "PUBLISH").unlink()
    (package / ".0003.jpg.Xy12ab").write_bytes(b"half a frame")  # rsync at work
    rejects(package, errors.IncompletePackage, "not finished")


def test_odd_characters_in_names_stay_on_one_line(package: Path) -> None:
    (package / "evil\nname\x1b[31m").write_text("x")
    error = rejects(package, errors.StrayEntry)
    assert "\n" not in str(error) and "\x1b" not in str(error)
    assert "'evil\\nname\\x1b[31m'" in str(error)
