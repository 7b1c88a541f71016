"""The station camera: a Camera interface, the Pi camera through picamera2, and a fake.

`Picamera2Camera` configures the camera once (a full-resolution main stream for
captures and a small lores stream with the same field of view for live view),
locks exposure, white balance and focus while a movie is shot, and never
re-creates the camera (doing so fragments the Pi's CMA memory). It is kept thin:
everything it does is checked against a small fake `picamera2` module in the tests.
"""

from __future__ import annotations

import abc
import io
import math
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from PIL import Image, ImageDraw

AF_MANUAL, AF_CONTINUOUS = 0, 2  # libcamera's AfModeEnum values


class CameraError(Exception):
    """The camera cannot be opened or stopped answering."""


class Camera(abc.ABC):
    """A camera for stop motion. Implementations must:

    - `preview()`: return a small RGB image of what the camera sees, quickly (live view,
      about 10 to 30 times a second), with the same field of view as `capture()`;
    - `capture()`: return one full-resolution JPEG (bytes), ready for the package;
    - `lock()` / `unlock()`: freeze exposure, white balance and focus for a movie (so
      frames do not flicker), and let them follow the scene again afterwards;
    - `close()`: release the device.
    """

    @abc.abstractmethod
    def preview(self) -> Image.Image:
        """A small RGB image for live view."""

    @abc.abstractmethod
    def capture(self) -> bytes:
        """One full-resolution JPEG."""

    def lock(self) -> None:  # noqa: B027 - a camera without automatic settings has none
        """Freeze exposure, white balance and focus."""

    def unlock(self) -> None:  # noqa: B027
        """Let exposure, white balance and focus follow the scene again."""

    def close(self) -> None:  # noqa: B027
        """Release the camera."""


class FakeCamera(Camera):
    """A moving synthetic scene (clouds, a bouncing ball, a clock hand), so demos look alive."""

    def __init__(self, size: tuple[int, int] = (1920, 1080),
                 preview_size: tuple[int, int] = (640, 360),
                 clock: Callable[[], float] = time.monotonic, quality: int = 85) -> None:
        self.size = size
        self.preview_size = preview_size
        self.clock = clock
        self.quality = quality
        self.locked = False
        self.captures = 0

    def _scene(self, size: tuple[int, int]) -> Image.Image:
        w, h = size
        t = self.clock()
        image = Image.new("RGB", size, (120, 180, 235))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, int(h * 0.72), w, h), fill=(70, 150, 80))
        for i in range(3):  # clouds drifting
            x = (t * 0.05 * w + i * w / 3) % (w * 1.2) - w * 0.1
            y = h * (0.12 + 0.08 * i)
            draw.ellipse((x, y, x + w * 0.18, y + h * 0.09), fill=(250, 250, 250))
        phase = t * 1.3
        bx = w * (0.2 + 0.6 * (0.5 + 0.5 * math.sin(phase * 0.5)))
        by = h * 0.72 - abs(math.sin(phase)) * h * 0.45 - h * 0.08
        r = h * 0.08
        draw.ellipse((bx - r, by - r, bx + r, by + r), fill=(225, 60, 50))
        cx, cy, length = w * 0.85, h * 0.2, h * 0.12
        draw.line((cx, cy, cx + length * math.cos(t), cy + length * math.sin(t)),
                  fill=(40, 40, 60), width=max(2, h // 90))
        return image

    def preview(self) -> Image.Image:
        """The scene, small."""
        return self._scene(self.preview_size)

    def capture(self) -> bytes:
        """The scene at full size, as a JPEG."""
        self.captures += 1
        buf = io.BytesIO()
        self._scene(self.size).save(buf, "JPEG", quality=self.quality)
        return buf.getvalue()

    def lock(self) -> None:
        """Note the lock (the fake has no automatic settings)."""
        self.locked = True

    def unlock(self) -> None:
        """Note the unlock."""
        self.locked = False


def yuv420_to_image(data: bytes | memoryview, stride: int, size: tuple[int, int]) -> Image.Image:
    """Turn a YUV420 (I420) buffer with a row stride into an RGB image."""
    w, h = size
    buffer = bytes(data)
    y = Image.frombuffer("L", (stride, h), buffer[:stride * h], "raw", "L", 0, 1)
    chroma = (stride // 2) * (h // 2)
    u = Image.frombuffer("L", (stride // 2, h // 2), buffer[stride * h:stride * h + chroma],
                         "raw", "L", 0, 1)
    v = Image.frombuffer("L", (stride // 2, h // 2),
                         buffer[stride * h + chroma:stride * h + 2 * chroma], "raw", "L", 0, 1)
    full = (stride, h)
    image = Image.merge("YCbCr", (y, u.resize(full), v.resize(full))).convert("RGB")
    return image.crop((0, 0, w, h)) if stride != w else image


class Picamera2Camera(Camera):
    """The Raspberry Pi camera through picamera2, configured once."""

    def __init__(self, size: tuple[int, int] = (1920, 1080),
                 preview_size: tuple[int, int] = (640, 360),
                 module: ModuleType | None = None) -> None:
        if module is None:
            try:
                import picamera2 as module  # type: ignore[no-redef]
            except ImportError as exc:
                raise CameraError("picamera2 is not installed: on Raspberry Pi OS run "
                                  "`apt install python3-picamera2`") from exc
        assert module is not None
        self.size = size
        self.preview_size = preview_size
        try:
            self._camera: Any = module.Picamera2()
            config = self._camera.create_still_configuration(
                main={"size": size}, lores={"size": preview_size, "format": "YUV420"},
                buffer_count=2)
            self._camera.configure(config)
            self._camera.start()
        except Exception as exc:  # IndexError when no camera is connected, RuntimeError...
            raise CameraError(f"cannot open the camera: {exc}") from exc

    def preview(self) -> Image.Image:
        """The lores stream as an RGB image."""
        frame = self._camera.capture_array("lores")
        stride = frame.shape[1]
        return yuv420_to_image(memoryview(frame), stride, self.preview_size)

    def capture(self) -> bytes:
        """The main stream as a JPEG."""
        buf = io.BytesIO()
        self._camera.capture_file(buf, format="jpeg")
        return buf.getvalue()

    def lock(self) -> None:
        """Fix what the automatic controls chose just now, for the whole movie."""
        metadata = self._camera.capture_metadata()
        controls: dict[str, Any] = {"AeEnable": False, "AwbEnable": False}
        for name in ("ExposureTime", "AnalogueGain", "ColourGains"):
            if name in metadata:
                controls[name] = metadata[name]
        if "AfMode" in self._camera.camera_controls:
            controls["AfMode"] = AF_MANUAL
            if "LensPosition" in metadata:
                controls["LensPosition"] = metadata["LensPosition"]
        self._camera.set_controls(controls)

    def unlock(self) -> None:
        """Automatic exposure, white balance and focus again."""
        controls: dict[str, Any] = {"AeEnable": True, "AwbEnable": True}
        if "AfMode" in self._camera.camera_controls:
            controls["AfMode"] = AF_CONTINUOUS
        self._camera.set_controls(controls)

    def close(self) -> None:
        """Stop and release the camera."""
        self._camera.stop()
        self._camera.close()
