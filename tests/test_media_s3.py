"""The media store in production: an S3-compatible object store over real HTTP.

The server is moto's standalone server (`moto_server`, PyPI `moto[server]`) on
loopback, in its own process; Qorgau talks to it through boto3 exactly as to
MinIO or AWS S3 (path-style addressing, an endpoint URL, credentials from the
environment). What it does not cover: real S3's consistency and latency,
server-side encryption, bucket policies and IAM, multipart uploads at their
real part limits, and MinIO's own quirks.
"""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from api.media.store import S3Store, blob_key, store_for
from tests.factories import make_incident, make_person, make_post, make_station
from tests.fault_helpers import free_port
from tests.media_helpers import jpeg_with_location, ogg_bytes, sha, upload

BUCKET = "qorgau-evidence"


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    moto = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_app(app, s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    app.config.update(MEDIA_STORE="s3", MEDIA_S3_BUCKET=BUCKET, MEDIA_S3_ENDPOINT_URL=s3_server,
                      MEDIA_S3_REGION="us-east-1", MEDIA_S3_PREFIX=f"t{os.getpid()}")
    store = store_for(app)
    assert isinstance(store, S3Store)
    if BUCKET not in [b["Name"] for b in store.client.list_buckets()["Buckets"]]:
        store.client.create_bucket(Bucket=BUCKET)
    return app


def test_files_go_to_the_object_store_and_verify_names_a_changed_one(
        s3_app, client, login, runner):
    post = make_post()
    station = make_station(default_post=post)
    crew = make_person("crew", station=station)
    incident = make_incident(crew, post=post)
    login(crew)
    photo = jpeg_with_location(noise=1)
    body = upload(client, incident.id, photo).get_json()
    assert body["status"] == "stored", body
    audio = upload(client, incident.id, ogg_bytes(), kind="audio", filename="v.ogg").get_json()
    store = store_for(s3_app)
    # Byte for byte in the bucket, under its SHA-256; the staged chunks are gone.
    key = store._key(blob_key(sha(photo)))
    assert store.client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == photo
    staged = store.client.list_objects_v2(Bucket=BUCKET, Prefix=store._key("staging/"))
    assert staged.get("KeyCount", 0) == 0
    assert client.get(f"/api/v1/media/{body['id']}/original").data == photo
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    changed = bytearray(photo)
    changed[100] ^= 0x01
    store.client.put_object(Bucket=BUCKET, Key=key, Body=bytes(changed))
    store.client.delete_object(Bucket=BUCKET, Key=store._key(blob_key(audio["sha256"])))
    verified = runner.invoke(args=["ledger", "verify"])
    assert verified.exit_code == 1
    assert f"attachment {body['id']}" in verified.output and "file CHANGED" in verified.output
    assert f"attachment {audio['id']}" in verified.output and "file MISSING" in verified.output
