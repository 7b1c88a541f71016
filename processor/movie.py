"""The movie of one validated package: title card, encode, poster and record.

ffmpeg starts first; the title card is drawn on its feeding thread while ffmpeg starts
(Pillow is imported there, off the way to ffmpeg) and goes in as raw pixels; the poster
is made beside the encode, which does not wait for it. The record (the movie's JSON, as
the store and the website read it) is written last, atomically: a movie with a record is
a whole movie. processor/pipeline.py runs this as its encode step.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

from moviepkg.atomic import write_atomic
from moviepkg.reader import Package
from moviepkg.record import MovieRecord

from .config import Settings
from .encode import Encoded, EncodeJob, Progress, encode

log = logging.getLogger("stopmo.processor")
_TITLE_CARD_LOCK = threading.Lock()  # the font cache is not thread-safe


def make_movie(package: Package, settings: Settings, folder: Path, codec: str, public: bool,
               progress: Progress | None = None) -> Encoded:
    """Encode package into folder/<id>.mp4 with its title card (a code and a QR code when
    public), its poster into <id>.jpg and its record into <id>.json; return the encode's
    report."""
    manifest = package.manifest

    def named(suffix: str) -> Path:
        return folder / f"{package.path.name}{suffix}"

    job = EncodeJob(title_png=None, frames_dir=package.path, frame_count=len(package.frames),
                    fps=manifest.fps, output=named(".mp4"), size=settings.size,
                    threads=settings.threads, preset=settings.preset, crf=settings.crf,
                    codec=codec, bitrate_kbps=settings.bitrate_kbps)
    log.info("encoding %d frames at %d fps with %s", len(package.frames), manifest.fps,
             job.codec)
    with ThreadPoolExecutor(1, "poster") as pool:
        posters = []

        def title() -> bytes:
            """Draw the card while ffmpeg starts; then start the poster."""
            from .poster import save_poster
            from .titlecard import TitleCard, movie_page, render_title_card

            code = package.code if public else ""
            card = TitleCard(title=manifest.title, station_id=manifest.station_id,
                             created_at=manifest.created_at,
                             festival=settings.festival_name, logo=settings.festival_logo,
                             station_name=settings.station_name(manifest.station_id),
                             language=settings.language, code=code,
                             page_url=movie_page(settings.public_url, code))
            with _TITLE_CARD_LOCK:
                picture = render_title_card(card, settings.size,
                                            tz=ZoneInfo(settings.timezone)).tobytes()
            posters.append(pool.submit(save_poster, package, named(".jpg"),
                                       settings.size))
            return picture

        encoded = encode(job, nice=settings.nice, progress=progress, title=title)
        for poster in posters:
            poster.result()
    log.info("encoded %d frames in %.2f s (%.0f frames/s, %s)", encoded.movie.frames,
             encoded.seconds, encoded.fps, encoded.codec)
    record = MovieRecord.for_package(package, duration_s=encoded.movie.duration,
                                     size=settings.size, festival=settings.festival_edition,
                                     hall=settings.unit)
    write_atomic(named(".json"), record.to_json())
    return encoded
