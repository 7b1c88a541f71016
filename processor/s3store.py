"""The S3 store (boto3): any S3-compatible endpoint, set up by the standard AWS variables."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .store import (
    MIB,
    S3_MIN_PART,
    Store,
    StoreError,
    cache_control,
    key_package_id,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pragma: no cover

log = logging.getLogger(__name__)
T = TypeVar("T")
_S3_ERRORS = (BotoCoreError, ClientError, Boto3Error)


def s3_client_from_env() -> S3Client:
    """Build an S3 client from the standard AWS_* variables that fails fast when unreachable."""
    config = Config(signature_version="s3v4", connect_timeout=5, read_timeout=30,
                    retries={"max_attempts": 2, "mode": "standard"})
    # A fresh session reads the environment now, not whatever the default session cached.
    client: S3Client = boto3.session.Session().client("s3", config=config)
    return client


class S3Store(Store):
    """An S3 bucket (any S3-compatible endpoint), optionally below a key prefix.

    Puts are atomic on S3; a multipart upload is invisible until completed, and
    clean_up() aborts the ones a crash left open under the prefix.
    """

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None, *,
                 multipart_threshold: int = 16 * MIB) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client if client is not None else s3_client_from_env()
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.transfer = TransferConfig(multipart_threshold=multipart_threshold,
                                       multipart_chunksize=max(multipart_threshold, S3_MIN_PART),
                                       max_concurrency=4)

    def _s3_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, key: str, action: str, exc: Exception) -> StoreError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            detail = f"{error.get('Code', '?')} {error.get('Message', '')}".strip()
        else:
            detail = f"{type(exc).__name__}: {exc}"
        where = self.where(key) if key else self.url
        return StoreError(where, f"{action} failed: {' '.join(detail.split())}")

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        s3_key = self._s3_key(self._checked(key))
        extra = {"ContentType": content_type, "CacheControl": cache_control(key)}
        try:
            self.client.upload_file(str(path), self.bucket, s3_key, ExtraArgs=extra,
                                    Config=self.transfer)
        except (*_S3_ERRORS, OSError) as exc:
            raise self._error(key, f"upload of {path}", exc) from exc

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        s3_key = self._s3_key(self._checked(key))
        try:
            self.client.put_object(Bucket=self.bucket, Key=s3_key, Body=data,
                                   ContentType=content_type, CacheControl=cache_control(key))
        except _S3_ERRORS as exc:
            raise self._error(key, "upload", exc) from exc

    def _read(self, key: str, action: str, call: Callable[[str], T]) -> T | None:
        """Run call(s3 key); None when the key is missing; StoreError for anything else."""
        s3_key = self._s3_key(self._checked(key))
        try:
            return call(s3_key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise self._error(key, action, exc) from exc
        except _S3_ERRORS as exc:
            raise self._error(key, action, exc) from exc

    def get_bytes(self, key: str) -> bytes | None:
        def download(s3_key: str) -> bytes:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=s3_key)["Body"].read()
            return data

        return self._read(key, "download", download)

    def exists(self, key: str) -> bool:
        def head(s3_key: str) -> bool:
            self.client.head_object(Bucket=self.bucket, Key=s3_key)
            return True

        return bool(self._read(key, "HEAD", head))

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(self.list_stamped(prefix))

    def list_stamped(self, prefix: str) -> dict[str, str]:
        full = self._s3_key(self._checked_prefix(prefix)) if prefix else self._s3_key("")
        skip = len(self._s3_key(""))
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                          Prefix=full)
            return {item["Key"][skip:]: f"{item.get('ETag', '')}:{item.get('LastModified', '')}"
                    for page in pages for item in page.get("Contents", [])}
        except _S3_ERRORS as exc:
            raise self._error(prefix + "*", "listing", exc) from exc

    def delete(self, key: str) -> None:
        s3_key = self._s3_key(self._checked(key))
        try:
            self.client.delete_object(Bucket=self.bucket, Key=s3_key)
        except _S3_ERRORS as exc:
            raise self._error(key, "delete", exc) from exc

    def clean_up(self) -> int:
        count = 0
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._s3_key(""))
            for upload in (item for page in pages for item in page.get("Uploads", [])):
                log.info("aborting the multipart upload of %s, left by an interrupted put",
                         upload["Key"], extra={"upload_id": upload["UploadId"],
                                               "package_id": key_package_id(upload["Key"])})
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                   UploadId=upload["UploadId"])
                count += 1
        except _S3_ERRORS as exc:
            raise self._error("*", "aborting incomplete uploads", exc) from exc
        return count

    def check(self) -> None:
        # Starting and aborting a multipart upload proves write access without ever
        # making an object visible.
        probe = self._s3_key(f".check-{uuid.uuid4().hex}")
        try:
            self.client.head_bucket(Bucket=self.bucket)
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=probe)
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=probe,
                                               UploadId=upload["UploadId"])
        except _S3_ERRORS as exc:
            raise self._error("", "check (HEAD bucket, then a write)", exc) from exc


def _is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")
