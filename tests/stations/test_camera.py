"""The camera adapters: picamera2 against a small fake module, and the fake camera."""

from __future__ import annotations

import io
import types
from typing import Any, ClassVar

import pytest
from PIL import Image

from moviepkg.jpeg import jpeg_info
from stations.camera import (
    AF_CONTINUOUS,
    AF_MANUAL,
    CameraError,
    FakeCamera,
    Picamera2Camera,
    yuv420_to_image,
)
from stations.thumbs import Thumbnails, thumbnail


class FakeArray(bytes):
    """Enough of a numpy array for the adapter: a buffer with a shape."""

    shape: tuple[int, int]


class FakePicamera2:
    """Records what the adapter asks of picamera2's Picamera2 class."""

    instances: ClassVar[list[FakePicamera2]] = []

    def __init__(self, autofocus: bool = True) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.camera_controls = {"AfMode": (0, 2, 0)} if autofocus else {}
        FakePicamera2.instances.append(self)

    def create_still_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create_still_configuration", kwargs))
        return {"still": kwargs}

    def configure(self, config: Any) -> None:
        self.calls.append(("configure", config))

    def start(self) -> None:
        self.calls.append(("start", None))

    def capture_file(self, target: io.BytesIO, format: str) -> None:
        self.calls.append(("capture_file", format))
        Image.new("RGB", (1920, 1080), (10, 200, 30)).save(target, "JPEG")

    def capture_array(self, name: str) -> FakeArray:
        self.calls.append(("capture_array", name))
        h, stride = 360, 640
        # A mid-grey frame: Y=128, U=V=128 (no colour).
        array = FakeArray(bytes([128]) * (stride * h + 2 * (stride // 2) * (h // 2)))
        array.shape = (h * 3 // 2, stride)
        return array

    def capture_metadata(self) -> dict[str, Any]:
        return {"ExposureTime": 12000, "AnalogueGain": 2.0, "ColourGains": (1.5, 1.8),
                "LensPosition": 3.5}

    def set_controls(self, controls: dict[str, Any]) -> None:
        self.calls.append(("set_controls", controls))

    def stop(self) -> None:
        self.calls.append(("stop", None))

    def close(self) -> None:
        self.calls.append(("close", None))


def fake_module(autofocus: bool = True) -> types.ModuleType:
    module = types.ModuleType("picamera2")
    module.Picamera2 = lambda: FakePicamera2(autofocus)  # type: ignore[attr-defined]
    return module


def test_configured_once_with_main_and_lores() -> None:
    FakePicamera2.instances.clear()
    camera = Picamera2Camera((1920, 1080), (640, 360), module=fake_module())
    for _ in range(3):
        jpeg = camera.capture()
        assert (jpeg_info(jpeg).width, jpeg_info(jpeg).height) == (1920, 1080)
        preview = camera.preview()
        assert preview.size == (640, 360) and preview.mode == "RGB"
    assert len(FakePicamera2.instances) == 1  # never re-created per capture
    calls = [name for name, _ in FakePicamera2.instances[0].calls]
    assert calls[:3] == ["create_still_configuration", "configure", "start"]
    assert calls.count("configure") == 1 and calls.count("capture_file") == 3
    config = FakePicamera2.instances[0].calls[0][1]
    assert config["main"] == {"size": (1920, 1080)}
    assert config["lores"] == {"size": (640, 360), "format": "YUV420"}


def test_lock_and_unlock_exposure_white_balance_and_focus() -> None:
    camera = Picamera2Camera(module=fake_module(autofocus=True))
    camera.lock()
    controls = FakePicamera2.instances[-1].calls[-1][1]
    assert controls == {"AeEnable": False, "AwbEnable": False, "ExposureTime": 12000,
                        "AnalogueGain": 2.0, "ColourGains": (1.5, 1.8), "AfMode": AF_MANUAL,
                        "LensPosition": 3.5}
    camera.unlock()
    assert FakePicamera2.instances[-1].calls[-1][1] == {"AeEnable": True, "AwbEnable": True,
                                                         "AfMode": AF_CONTINUOUS}
    plain = Picamera2Camera(module=fake_module(autofocus=False))
    plain.lock()
    assert "AfMode" not in FakePicamera2.instances[-1].calls[-1][1]
    plain.close()
    assert [n for n, _ in FakePicamera2.instances[-1].calls[-2:]] == ["stop", "close"]


def test_no_camera_is_a_clear_error() -> None:
    module = types.ModuleType("picamera2")

    def no_camera() -> None:
        raise IndexError("list index out of range")

    module.Picamera2 = no_camera  # type: ignore[attr-defined]
    with pytest.raises(CameraError, match="cannot open the camera"):
        Picamera2Camera(module=module)


def test_yuv420_with_stride() -> None:
    w, h, stride = 6, 4, 8
    y = bytes([200]) * (stride * h)
    chroma = bytes([128]) * ((stride // 2) * (h // 2))
    image = yuv420_to_image(y + chroma + chroma, stride, (w, h))
    assert image.size == (w, h)
    assert all(abs(c - 200) <= 2 for c in image.getpixel((2, 2)))  # type: ignore[union-attr]


def test_fake_camera_moves_and_captures_real_jpegs() -> None:
    now = [0.0]
    camera = FakeCamera(size=(640, 360), preview_size=(320, 180), clock=lambda: now[0])
    first = camera.preview().tobytes()
    now[0] = 0.7
    assert camera.preview().tobytes() != first  # the scene is alive
    jpeg = camera.capture()
    assert (jpeg_info(jpeg).width, jpeg_info(jpeg).height) == (640, 360)


def test_thumbnails_are_bounded_and_follow_deletes() -> None:
    camera = FakeCamera(size=(1920, 1080))
    thumbs = Thumbnails(size=(320, 180), limit=3)
    frames = [camera.capture() for _ in range(4)]
    for index, jpeg in enumerate(frames):
        thumbs.add(index, jpeg)
    assert len(thumbs) == 3 and thumbs.get(0) is None  # the oldest went
    got = thumbs.get(3)
    assert got is not None and got.size == (240, 135)  # 1/8: at least 3/4 of 320x180
    thumbs.drop(3)
    assert thumbs.last is not None and thumbs.get(3) is None
    assert thumbnail(frames[0], (320, 180)).size == (320, 180)  # as large as fits
