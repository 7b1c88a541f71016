"""Thumbnails for the replay: decoded at a reduced scale, still close to full-quality ones."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageDraw, ImageFilter, JpegImagePlugin

from stations.camera import FakeCamera
from stations.render import Renderer, fit
from stations.thumbs import REPLAY_SHARE, Thumbnails, thumbnail
from tests.demo import noise_jpegs
from tests.images import difference, reencoded

SIZE = (640, 360)  # the kiosk's thumbnails


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def scene(seed: int, size: tuple[int, int] = (1920, 1080)) -> bytes:
    """A camera-like frame: shapes with edges, sensor noise, a little blur."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (200, 190, 170))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y, r = rng.randrange(size[0]), rng.randrange(size[1]), rng.randrange(30, 250)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in "rgb"))
    noise = Image.effect_noise(size, 30).convert("RGB")
    return jpeg(Image.blend(image, noise, 0.15).filter(ImageFilter.GaussianBlur(0.7)))


def best(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The full-quality thumbnail: every pixel decoded, then Lanczos."""
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


FRAMES = {
    "camera": lambda: FakeCamera(clock=lambda: 7.3).capture(),  # flat colours, sharp edges
    "scene": lambda: scene(3),  # shapes, sensor noise
    "noise": lambda: noise_jpegs(1, (1920, 1080), seed=5, quality=90)[0],
}


@pytest.mark.parametrize("frame", sorted(FRAMES))
def test_a_thumbnail_is_close_to_a_full_quality_one_of_its_size(frame: str) -> None:
    data = FRAMES[frame]()
    small = thumbnail(data, SIZE, REPLAY_SHARE)
    psnr, off = difference(best(data, small.size), small)
    assert psnr >= 40 and off <= 1.5, (psnr, off)  # measured 43-49 dB, 0.2-1.2 levels


@pytest.mark.parametrize("frame", sorted(FRAMES))
def test_the_replay_looks_as_it_would_from_a_full_quality_thumbnail(frame: str) -> None:
    """What the child sees: the kept JPEG, scaled to the stage by the renderer, against the
    frame scaled straight to the stage; next to a full-quality 640x360 thumbnail."""
    data = FRAMES[frame]()
    stage = Renderer((1280, 800)).stage
    ours = fit(reencoded(thumbnail(data, SIZE, REPLAY_SHARE)), stage)
    theirs = fit(reencoded(best(data, SIZE)), stage)
    ideal = best(data, ours.size)
    (psnr, off), (best_psnr, best_off) = difference(ideal, ours), difference(ideal, theirs)
    # Measured: 1.7-1.8 dB and 0.2-0.6 grey levels behind it (noise: level with it).
    assert psnr >= best_psnr - 2.5 and off <= best_off + 1.0, (psnr, best_psnr, off, best_off)


def test_the_decoder_works_at_a_quarter_scale_for_a_kiosk_thumbnail(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[tuple[int, int]] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None,
            size: tuple[int, int] | None) -> object:
        done = draft(self, mode, size)
        sizes.append(self.size)  # what the decoder will produce
        return done

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    assert thumbnail(scene(1), SIZE, REPLAY_SHARE).size == (480, 270)  # kept as decoded: no resize
    assert sizes == [(480, 270)]  # 1/4: the smallest DCT scale at least 3/4 of 640x360


@pytest.mark.parametrize(("frame", "mode", "expected"), [
    ((1920, 1080), "RGB", (480, 270)),  # 1/4
    ((1280, 720), "RGB", (640, 360)),  # 1/2
    ((1640, 1232), "RGB", (410, 308)),  # 1/4 of a 4:3 frame: its shape kept
    ((4056, 3040), "RGB", (480, 360)),  # the HQ camera: 1/8 is 507x380, fitted down
    ((320, 240), "RGB", (320, 240)),  # smaller than a thumbnail: never enlarged
    ((1920, 1080), "L", (480, 270)),  # a grey JPEG still gives an RGB thumbnail
])
def test_a_replay_thumbnail_is_at_most_the_size_at_least_three_quarters_and_rgb(
        frame: tuple[int, int], mode: str, expected: tuple[int, int]) -> None:
    small = thumbnail(jpeg(Image.new(mode, frame, 128)), SIZE, REPLAY_SHARE)
    assert small.size == expected and small.mode == "RGB"


def test_kept_thumbnails_replay_the_frames_they_were_made_from() -> None:
    thumbs = Thumbnails()
    frames = [scene(seed) for seed in range(3)]
    for index, data in enumerate(frames):
        assert thumbs.add(index, data).size == (480, 270)
    for index, data in enumerate(frames):
        kept = thumbs.get(index)
        assert kept is not None and kept.size == (480, 270)
        psnr, _ = difference(best(data, kept.size), kept)  # after the q80 JPEG it is kept as
        assert psnr >= 32, (index, psnr)


@pytest.mark.parametrize(("frame", "expected"), [
    ((1920, 1080), (640, 360)), ((1640, 1232), (479, 360)), ((320, 240), (320, 240))])
def test_a_thumbnail_of_full_share_fits_the_size_exactly(
        frame: tuple[int, int], expected: tuple[int, int]) -> None:
    """What `test-capture` sends: as large as fits (a draft at 1/2, then bilinear)."""
    small = thumbnail(jpeg(Image.new("RGB", frame, 128)), SIZE)
    assert small.size == expected
    psnr, _ = difference(best(FRAMES["scene"](), SIZE), thumbnail(FRAMES["scene"](), SIZE))
    assert psnr >= 40  # measured 45 dB
