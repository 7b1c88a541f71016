"""encode.codec: a named encoder as it is; `auto` tries the hardware once, else libx264.

The hardware encoder cannot run here (no V4L2 device): the real test encode fails as it
would on a board without one, and a runner that puts libx264 in its place stands in for
a board where it works.
"""

from __future__ import annotations

import glob
import logging
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from processor.config import load_settings
from processor.encoders import (
    EncoderChoice,
    choose_encoder,
    codec_args,
    default_bitrate_kbps,
    ffmpeg_reason,
    probe_args,
    try_encoder,
)
from processor.errors import ConfigError
from processor.pipeline import Pipeline
from tests.processor.conftest import add_package
from tests.services import require_binary

SIZE = (320, 180)


def as_software(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A board where the hardware encoder works: libx264 does its part (it takes -b:v)."""
    assert "h264_v4l2m2m" in command
    return subprocess.run(["libx264" if arg == "h264_v4l2m2m" else arg for arg in command],
                          **kwargs)


def test_each_encoder_has_its_own_options() -> None:
    assert codec_args("libx264", preset="fast", crf=20, bitrate_kbps=900) == [
        "-c:v", "libx264", "-preset", "fast", "-crf", "20"]
    assert codec_args("h264_v4l2m2m", preset="fast", crf=20, bitrate_kbps=900) == [
        "-c:v", "h264_v4l2m2m", "-b:v", "900k"]
    assert default_bitrate_kbps((1280, 720), 10) == 922
    assert default_bitrate_kbps((320, 180), 1) == 100  # never below 100 kbit/s
    args = probe_args("h264_v4l2m2m", (1280, 720), 10, Path("/t/test.mp4"))
    assert "testsrc=size=1280x720:rate=10:duration=1" in args and args[-1] == "/t/test.mp4"


def test_a_named_encoder_is_used_without_a_test() -> None:
    def never(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise AssertionError("no test encode for a named encoder")

    assert choose_encoder("libx264", SIZE, run=never).codec == "libx264"
    assert choose_encoder("h264_v4l2m2m", SIZE, run=never) == EncoderChoice(
        "h264_v4l2m2m", "set in encode.codec")


def test_auto_falls_back_to_libx264_with_ffmpegs_reason(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    require_binary("ffmpeg")
    if glob.glob("/dev/video*"):
        pytest.skip("this machine has V4L2 devices: the hardware encoder may work here")
    with caplog.at_level(logging.INFO, logger="stopmo.processor.encode"):
        choice = choose_encoder("auto", SIZE)
    assert choice.codec == "libx264"
    assert "Could not find a valid device" in choice.reason
    lines = [r for r in caplog.records if r.name == "stopmo.processor.encode"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert lines[0].getMessage() == (
        "encode.codec auto: the hardware encoder h264_v4l2m2m cannot encode here (Could not "
        "find a valid device; can't configure encoder); encoding with libx264")


def test_auto_takes_the_hardware_encoder_when_its_test_movie_is_right(
        caplog: pytest.LogCaptureFixture) -> None:
    require_binary("ffmpeg")
    with caplog.at_level(logging.INFO, logger="stopmo.processor.encode"):
        choice = choose_encoder("auto", SIZE, run=as_software)
    assert choice.codec == "h264_v4l2m2m"
    assert "works here" in caplog.records[-1].getMessage()


def test_a_test_movie_that_is_wrong_is_a_failure(tmp_path: Path) -> None:
    require_binary("ffmpeg")

    def wrong_size(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        command = [arg.replace("size=320x180", "size=160x90") for arg in command]
        return as_software(command, **kwargs)

    assert try_encoder("h264_v4l2m2m", SIZE, run=wrong_size) == (
        "its test movie is 160x90, not 320x180")

    def nothing(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 0, "", "")  # exits 0, writes nothing

    assert try_encoder("h264_v4l2m2m", SIZE, run=nothing).startswith(  # type: ignore[union-attr]
        "its test movie is unreadable")

    def hangs(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    assert try_encoder("h264_v4l2m2m", SIZE, run=hangs, timeout=3) == (
        "no test movie after 3 s")
    choice = choose_encoder("auto", SIZE, run=hangs)
    assert choice.codec == "libx264" and "no test movie after" in choice.reason


def test_ffmpegs_reason_is_its_first_messages() -> None:
    assert ffmpeg_reason("[h264_v4l2m2m @ 0x55] Could not find a valid device\n"
                         "[h264_v4l2m2m @ 0x55] can't configure encoder\n"
                         "Error initializing output stream 0:0 -- boom\n") == (
        "Could not find a valid device; can't configure encoder")
    assert ffmpeg_reason("") == ""


def test_the_setting_is_read_and_checked(tmp_path: Path) -> None:
    base = {"STOPMO_WORK_DIR": str(tmp_path / "work"), "STOPMO_INBOX": str(tmp_path / "in")}
    assert load_settings(None, base).codec == "libx264"
    settings = load_settings(None, {**base, "STOPMO_ENCODE_CODEC": "auto",
                                    "STOPMO_ENCODE_BITRATE_KBPS": "1500"})
    assert (settings.codec, settings.bitrate_kbps) == ("auto", 1500)
    with pytest.raises(ConfigError) as refused:
        load_settings(None, {**base, "STOPMO_ENCODE_CODEC": "h265"})
    assert refused.value.problems == [
        "STOPMO_ENCODE_CODEC: expected one of libx264, h264_v4l2m2m, auto, found 'h265'"]


def test_the_pipeline_chooses_once_and_encodes_with_the_choice(pipeline: Pipeline) -> None:
    asked: list[str] = []

    def choose(setting: str, size: tuple[int, int]) -> EncoderChoice:
        asked.append(setting)
        return EncoderChoice("libx264", "auto: h264_v4l2m2m failed its test (no device)")

    auto = Pipeline(replace(pipeline.settings, codec="auto"), pipeline.store, pipeline.screen,
                    choose=choose)
    for minutes in range(2):
        package = add_package(auto.settings.inbox, frames=3, minutes=minutes)
        outcome, state = auto.receive(package)
        assert outcome is None and state is not None
        auto.advance(package.name)
    assert asked == ["auto"]
    assert auto.last_encode is not None and auto.last_encode.codec == "libx264"
    assert auto.last_encode.fps > 0
