"""The content-addressed store: a file is kept under its SHA-256, byte for byte.

Two backends with the same few operations:

- `LocalStore`, a folder (default: `media/` in the instance folder), for one
  server and the laptop run;
- `S3Store`, any S3-compatible object store (AWS S3, MinIO, Ceph RGW, Yandex
  Object Storage...) through boto3, the production setting: every gunicorn
  host sees the same files.

Keys: `sha256/ab/cd/<hex>` for stored files (originals and previews);
`staging/<attachment id>/<chunk index>` for chunks still arriving (kept in the
store, not on one host's disk, so a resumed upload may land on another host).
Settings (QORGAU_* like every other): MEDIA_STORE ("local" or "s3"),
MEDIA_DIR, MEDIA_S3_BUCKET, MEDIA_S3_ENDPOINT_URL, MEDIA_S3_REGION,
MEDIA_S3_PREFIX; the S3 credentials come from boto3's usual environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the machine's role, never from
the repository.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

READ_BLOCK = 1024 * 1024


def blob_key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def staging_key(attachment_id, index: int) -> str:
    return f"staging/{attachment_id}/{index:06d}"


class MissingObject(Exception):
    """The store has nothing under this key."""


class LocalStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def describe(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        return self.root / key

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside, then renamed: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def put_file(self, key: str, source: str | Path) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, READ_BLOCK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        try:
            fh = open(self._path(key), "rb")  # noqa: SIM115 (closed by the generator)
        except FileNotFoundError as err:
            raise MissingObject(key) from err

        def blocks():
            with fh:
                while block := fh.read(READ_BLOCK):
                    yield block

        return blocks()

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_bytes(key))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)


class S3Store:
    def __init__(self, bucket: str, *, endpoint_url: str | None = None,
                 region: str | None = None, prefix: str = ""):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
            config=Config(retries={"max_attempts": 3, "mode": "standard"},
                          s3={"addressing_style": "path"}, connect_timeout=5,
                          read_timeout=30))

    def describe(self) -> str:
        return f"bucket {self.bucket} at {self.endpoint_url or 'AWS S3'}"

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_file(self, key: str, source: str | Path) -> None:
        self.client.upload_file(str(source), self.bucket, self._key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise MissingObject(key) from err
            raise
        return answer["Body"].iter_chunks(READ_BLOCK)

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_bytes(key))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> None:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


def make_store(config: dict, instance_path: str):
    kind = (config.get("MEDIA_STORE") or "local").lower()
    if kind == "s3":
        bucket = config.get("MEDIA_S3_BUCKET")
        if not bucket:
            raise RuntimeError("MEDIA_STORE is s3 but MEDIA_S3_BUCKET is not set")
        return S3Store(bucket, endpoint_url=config.get("MEDIA_S3_ENDPOINT_URL"),
                       region=config.get("MEDIA_S3_REGION"),
                       prefix=config.get("MEDIA_S3_PREFIX") or "")
    if kind != "local":
        raise RuntimeError(f"MEDIA_STORE must be 'local' or 's3', not {kind!r}")
    return LocalStore(config.get("MEDIA_DIR") or os.path.join(instance_path, "media"))


def store_for(app):
    """The app's store, made once per app and settings."""
    settings = tuple(str(app.config.get(k)) for k in (
        "MEDIA_STORE", "MEDIA_DIR", "MEDIA_S3_BUCKET", "MEDIA_S3_ENDPOINT_URL",
        "MEDIA_S3_REGION", "MEDIA_S3_PREFIX"))
    cached = app.extensions.get("qorgau_media_store")
    if cached is None or cached[0] != settings:
        cached = (settings, make_store(app.config, app.instance_path))
        app.extensions["qorgau_media_store"] = cached
    return cached[1]


def sha256_of(store, key: str) -> str:
    digest = hashlib.sha256()
    for block in store.iter_bytes(key):
        digest.update(block)
    return digest.hexdigest()
