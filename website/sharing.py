"""What a shared link shows: absolute addresses and a movie's Open Graph facts.

A link pasted into a chat app is read by a crawler, maybe long after the page was
made: every address in the tags is absolute and lasting. A presigned S3 address
expires, so the tags point at this site's `/media/…`, which sends a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass

from moviepkg.record import MovieRecord

from .festival import Festival, whole_seconds
from .storage import Storage

VIDEO_TYPE = "video/mp4"


@dataclass(frozen=True, slots=True)
class Shared:
    """The facts of a movie's Open Graph and Twitter card tags (the words are in the page)."""

    url: str
    image: str
    image_width: int
    image_height: int
    video: str
    video_type: str
    video_width: int
    video_height: int
    seconds: int


def absolute(url: str, site_url: str, host_url: str) -> str:
    """Make a path of this site absolute: on SITE_URL if set, else on the request's host."""
    if "://" in url:
        return url
    return (site_url or host_url).rstrip("/") + "/" + url.lstrip("/")


def lasting_url(storage: Storage, key: str, local_url: str, site_url: str,
                host_url: str) -> str:
    """An absolute address of a poster or video that does not expire.

    local_url is this site's `/media/…` path for key: a folder store is served there,
    and for S3 without public objects it redirects to a fresh presigned address.
    """
    return storage.lasting_url(key) or absolute(local_url, site_url, host_url)


def shared(movie: MovieRecord, festival: Festival, storage: Storage, page_url: str,
           media_urls: tuple[str, str], host_url: str) -> Shared:
    """The share facts of movie; media_urls are this site's paths of its poster and video."""
    site = festival.site_url
    # The record's own size (v2); for an older record, the size the processor makes.
    width, height = (movie.width, movie.height) if movie.width and movie.height \
        else festival.movie_size
    return Shared(url=absolute(page_url, site, host_url),
                  image=lasting_url(storage, movie.poster, media_urls[0], site, host_url),
                  image_width=width, image_height=height,
                  video=lasting_url(storage, movie.video, media_urls[1], site, host_url),
                  video_type=VIDEO_TYPE, video_width=width, video_height=height,
                  seconds=whole_seconds(movie.duration_s))
