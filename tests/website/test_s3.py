"""The website on a real S3 endpoint: presigned SigV4 links, downloads, S3 down."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from flask.testing import FlaskClient
from redis import Redis

from moviepkg.owner import key_hash, new_owner_key
from processor.index import sweep_owner_removals
from processor.s3store import S3Store
from tests.services import RedisServer, S3Server
from tests.website.conftest import StoreBuilder, make_record
from website.app import create_app
from website.storage import S3Storage

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def upload(store: StoreBuilder, s3: S3Server, bucket: str = "festival",
           prefix: str = "jff") -> None:
    client = s3.client()
    client.create_bucket(Bucket=bucket)
    for key in store.files():
        client.upload_file(str(store.root / key), bucket, f"{prefix}/{key}",
                           ExtraArgs={"ContentType": "video/mp4" if key.endswith(".mp4")
                                      else "application/octet-stream"})


def s3_client(store: StoreBuilder, s3: S3Server, **config: object) -> FlaskClient:
    storage = S3Storage("festival", "jff", client=s3.client(retries={"max_attempts": 1}),
                        public_base_url=config.pop("public", None),  # type: ignore[arg-type]
                        presign_seconds=300)
    app = create_app({"TESTING": True, "STORAGE": storage, "REDIS": config.pop("redis", None),
                      **config})
    return app.test_client()


def test_video_streams_straight_from_s3_with_a_presigned_sigv4_url(
        store: StoreBuilder, s3_server: S3Server) -> None:
    record = store.add(make_record(1, title="Noa's movie ש"))
    upload(store, s3_server)
    client = s3_client(store, s3_server)
    video = client.get(f"/api/movies/{record.id}").get_json()["video_url"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(video).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["300"]
    assert video.startswith(s3_server.endpoint_url)
    request = urllib.request.Request(video, headers={"Range": "bytes=0-99"})
    with NO_PROXY.open(request, timeout=5) as response:  # the browser's fetch, not the app's
        assert response.status == 206 and len(response.read()) == 100
    page = client.get(f"/movies/{record.id}")
    assert s3_server.endpoint_url in page.headers["Content-Security-Policy"]


def test_download_redirects_to_an_attachment(store: StoreBuilder, s3_server: S3Server) -> None:
    record = store.add(make_record(2, title="Noa's movie ש"))
    upload(store, s3_server)
    download = s3_client(store, s3_server).get(f"/movies/{record.id}/download")
    assert download.status_code == 302
    target = download.headers["Location"]
    assert "response-content-disposition=attachment" in target
    with NO_PROXY.open(target, timeout=5) as response:
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith('attachment; filename="Noa\'s movie _.mp4"')
        assert "filename*=UTF-8''Noa%27s%20movie%20%D7%A9.mp4" in disposition
        assert response.read(4) != b""


def test_public_base_url_is_used_for_streaming(store: StoreBuilder, s3_server: S3Server) -> None:
    record = store.add(make_record(3))
    upload(store, s3_server)
    client = s3_client(store, s3_server, public="https://cdn.example.test/")
    video = client.get(f"/api/movies/{record.id}").get_json()["video_url"]
    assert video == f"https://cdn.example.test/jff/movies/{record.id}.mp4"
    assert "https://cdn.example.test" in client.get("/").headers["Content-Security-Policy"]


def test_s3_down_serves_the_cached_list(store: StoreBuilder, s3_server: S3Server,
                                        redis_server: RedisServer) -> None:
    import redis

    record = store.add(make_record(4))
    upload(store, s3_server)
    cache = redis.Redis.from_url(redis_server.url, socket_timeout=0.5)
    client = s3_client(store, s3_server, redis=cache, CACHE_SECONDS=0)
    assert client.get("/api/movies").get_json()["total"] == 1
    s3_server.stop()
    try:
        for _ in range(3):
            assert client.get("/api/movies").get_json()["total"] == 1
            assert client.get(f"/movies/{record.id}").status_code == 200
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.get_json()["storage"].startswith("down")
    finally:
        s3_server.start()


def test_shared_links_of_s3_movies_never_expire(store: StoreBuilder, s3_server: S3Server) -> None:
    """Tags name the site's /media/ (a fresh presigned URL), or the public object URL."""
    from tests.website.test_share import Head

    record = store.add(make_record(5))
    upload(store, s3_server)
    presigned = s3_client(store, s3_server, SITE_URL="https://movies.example.org")
    meta = Head(presigned.get(f"/movies/{record.id}").get_data(as_text=True)).meta
    # Presigned URLs expire: the tags name this site, which sends a fresh one.
    assert meta["og:image"] == f"https://movies.example.org/media/{record.id}.jpg"
    assert meta["og:video"] == f"https://movies.example.org/media/{record.id}.mp4"
    moved = presigned.get(f"/media/{record.id}.jpg")
    assert moved.status_code == 302 and "X-Amz-Signature=" in moved.headers["Location"]
    with NO_PROXY.open(moved.headers["Location"], timeout=5) as response:
        assert response.read() == (store.root / record.poster).read_bytes()
    public = s3_client(store, s3_server, public="https://cdn.example.test")
    meta = Head(public.get(f"/movies/{record.id}").get_data(as_text=True)).meta
    assert meta["og:image"] == f"https://cdn.example.test/jff/movies/{record.id}.jpg"
    assert meta["og:video"] == f"https://cdn.example.test/jff/movies/{record.id}.mp4"
    assert meta["og:url"] == f"http://localhost/movies/{record.id}"  # no SITE_URL: as asked


def test_owner_changes_on_s3_and_the_processor_takes_removed_media_out(
        store: StoreBuilder, s3_server: S3Server, redis_server: RedisServer,
        tmp_path: Path) -> None:
    """The site writes owner/<id>.json under the bucket's prefix; a removed movie's video
    gets no more presigned links at once, and the processor's sweep deletes its objects."""
    key = new_owner_key()
    named = store.add(replace(make_record(1), owner_key_sha256=key_hash(key)))
    removed = store.add(replace(make_record(2), owner_key_sha256=key_hash(key)))
    upload(store, s3_server)
    client = s3_client(store, s3_server, redis=Redis.from_url(redis_server.url))
    assert client.post(f"/api/movies/{named.id}/name",
                       json={"key": key, "title": "فيلم نور"}).status_code == 200
    assert client.post(f"/api/movies/{removed.id}/remove", json={"key": key}).status_code == 200
    written = s3_server.client().get_object(Bucket="festival", Key=f"jff/owner/{named.id}.json")
    assert written["ContentType"] == "application/json"
    assert json.loads(written["Body"].read())["title"] == "فيلم نور"
    movies = client.get("/api/movies").get_json()["movies"]
    assert [(m["id"], m["display_title"]) for m in movies] == [(named.id, "فيلم نور")]
    for path in (f"/movies/{removed.id}/download", f"/media/{removed.id}.mp4"):
        assert client.get(path).status_code == 404, path  # no presigned link any more
    processor_store = S3Store("festival", "jff", client=s3_server.client())
    swept = sweep_owner_removals(processor_store, datetime.now(UTC), tmp_path / "index.lock",
                                 set())
    assert swept == [removed.id]
    left = processor_store.list_keys("movies/")
    assert not [k for k in left if removed.id in k] and f"movies/{named.id}.mp4" in left
