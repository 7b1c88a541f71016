"""The local festival publishing to S3 (moto's server) when STORAGE_URL says so."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from processor.s3store import S3Store
from tests.e2e.test_takedown import take_down_and_check
from tests.festival import Festival
from tests.listing import listed_ids
from tests.services import S3Server, wait_until

pytestmark = pytest.mark.slow  # the whole festival, every program real

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_the_festival_publishes_to_s3_and_the_website_streams_from_it(
        tmp_path: Path, s3_server: S3Server) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="festival")
    with Festival(tmp_path / "var", frames=12, storage_url="s3://festival/stopmo",
                  extra_env=s3_server.env()) as festival:
        wait_until(lambda: festival.website_ids(strict=False), timeout=60, interval=0.2,
                   message="a movie on the website")
        [package_id] = festival.website_ids()
        keys = {obj["Key"] for obj in s3.list_objects_v2(Bucket="festival")["Contents"]}
        assert {f"stopmo/movies/{package_id}.mp4", f"stopmo/movies/{package_id}.json"} <= keys
        assert [key for key in keys if key.startswith("stopmo/movies/index/main/")]
        assert not (festival.var / "store").exists() or not any(festival.store.rglob("*.mp4"))
        video = festival.get_json(f"/api/movies/{package_id}")["video_url"]
        assert video.startswith(s3_server.endpoint_url)  # straight from S3, never proxied
        with NO_PROXY.open(urllib.request.Request(video, headers={"Range": "bytes=0-7"}),
                           timeout=10) as response:
            assert response.status == 206 and response.read()[4:8] == b"ftyp"

        # A parent's request: taken down from the console, gone from the site and the bucket.
        take_down_and_check(festival, package_id, video)
        left = {obj["Key"] for obj in s3.list_objects_v2(Bucket="festival").get("Contents", [])}
        assert not {key for key in left if package_id in key}, left
        assert package_id not in listed_ids(S3Store("festival", "stopmo", client=s3))
