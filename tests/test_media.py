"""Evidence (issue 19): uploads in chunks, content by its bytes, originals byte
for byte, previews without location, the chain and `flask ledger verify`, and
who may see which file (the access log). Against SQLite and PostgreSQL."""

import io
import uuid

import pytest
from PIL import Image
from sqlalchemy import select

from api.access_log import AccessLog
from api.extensions import db
from api.incidents.models import IncidentEvent
from api.ledger import service as ledger
from api.media.models import Attachment
from api.media.store import blob_key, store_for
from tests.factories import make_incident, make_person, make_post, make_station
from tests.media_helpers import (
    CHUNK,
    chunks,
    jpeg_with_location,
    ogg_bytes,
    png_bytes,
    put_chunk,
    sha,
    start,
    upload,
    zip_bytes,
)


@pytest.fixture
def world(app, tmp_path):
    app.config["MEDIA_DIR"] = str(tmp_path / "media")
    post = make_post()
    station = make_station(default_post=post)
    crew = make_person("crew", station=station)
    incident = make_incident(crew, post=post)
    return {"crew": crew, "incident": incident, "station": station, "post": post}


def test_a_photo_in_chunks_is_stored_byte_for_byte_and_sealed_in_the_chain(
        app, client, login, world, runner):
    login(world["crew"])
    photo = jpeg_with_location(noise=1)
    assert len(photo) > 3 * CHUNK
    answer = upload(client, world["incident"].id, photo)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "stored" and body["content_type"] == "image/jpeg"
    assert body["sha256"] == sha(photo)
    # The original, byte for byte, from the store and from the download.
    assert store_for(app).get_bytes(blob_key(sha(photo))) == photo
    got = client.get(f"/api/v1/media/{body['id']}/original")
    assert got.status_code == 200 and got.data == photo
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    # The event in the chain names the file's hash; the receipt covers the head.
    event = db.session.scalar(select(IncidentEvent).where(
        IncidentEvent.incident_id == world["incident"].id,
        IncidentEvent.kind == "attachment_added"))
    assert event.changes["attachment"][1]["sha256"] == sha(photo)
    assert body["event_seq"] == event.seq
    assert body["receipt"]["event_hash"] == event.hash
    public = ledger.public_keys()[body["receipt"]["key_id"]]
    public.verify(ledger_b64(body["receipt"]["signature"]), body["receipt"]["payload"].encode())
    verified = runner.invoke(args=["ledger", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "files: 1  changed or missing: 0" in verified.output


def ledger_b64(text):
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_a_changed_byte_or_a_missing_file_fails_ledger_verify_naming_it(
        app, client, login, world, runner):
    login(world["crew"])
    photo = jpeg_with_location()
    audio = ogg_bytes()
    first = upload(client, world["incident"].id, photo).get_json()
    second = upload(client, world["incident"].id, audio, kind="audio",
                    filename="voice.ogg", content_type="audio/ogg").get_json()
    assert second["status"] == "stored", second
    path = store_for(app).root / blob_key(sha(photo))
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    verified = runner.invoke(args=["ledger", "verify"])
    assert verified.exit_code == 1
    assert f"attachment {first['id']}" in verified.output
    assert "file CHANGED" in verified.output
    assert second["id"] not in verified.output
    (store_for(app).root / blob_key(sha(audio))).unlink()
    verified = runner.invoke(args=["ledger", "verify"])
    assert f"attachment {second['id']}" in verified.output
    assert "file MISSING" in verified.output


def test_an_upload_cut_off_resumes_without_sending_finished_chunks_again(
        app, client, login, world):
    login(world["crew"])
    photo = jpeg_with_location(noise=1)
    parts = chunks(photo)
    ident = start(client, world["incident"].id, photo).get_json()["id"]
    for index in (0, 1):
        assert put_chunk(client, ident, index, parts[index]).status_code == 200
    # Half of chunk 2 arrives, then the connection drops: refused, nothing kept of it.
    cut = client.put(f"/api/v1/media/{ident}/chunks/2", data=parts[2][:1000],
                     headers={"X-Chunk-SHA256": sha(parts[2])})
    assert cut.status_code == 422 and cut.get_json()["errors"][0]["field"] == "body"
    again = start(client, world["incident"].id, photo, ident=uuid.UUID(ident))
    assert again.status_code == 200 and again.get_json()["received"] == [0, 1]
    early = client.post(f"/api/v1/media/{ident}/complete")
    assert early.status_code == 409 and early.get_json()["missing"][0] == 2
    answer = upload(client, world["incident"].id, photo, ident=uuid.UUID(ident))
    assert answer.get_json()["status"] == "stored"
    # Sending a chunk again, or completing again, changes nothing.
    assert put_chunk(client, ident, 0, parts[0]).get_json()["status"] == "stored"
    assert client.post(f"/api/v1/media/{ident}/complete").get_json()["event_seq"] == \
        answer.get_json()["event_seq"]
    assert db.session.scalar(select(db.func.count()).select_from(IncidentEvent).where(
        IncidentEvent.kind == "attachment_added")) == 1


def test_a_damaged_chunk_is_refused_naming_its_hash(client, login, world):
    login(world["crew"])
    photo = jpeg_with_location()
    ident = start(client, world["incident"].id, photo).get_json()["id"]
    part = chunks(photo)[0]
    bad = client.put(f"/api/v1/media/{ident}/chunks/0", data=part,
                     headers={"X-Chunk-SHA256": "0" * 64})
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["field"] == "X-Chunk-SHA256"


def test_another_file_than_announced_is_refused_by_its_whole_hash(client, login, world):
    login(world["crew"])
    photo = jpeg_with_location()
    other = bytearray(photo)
    other[-10] ^= 0xFF
    opened = client.post(f"/api/v1/incidents/{world['incident'].id}/media", json={
        "id": str(uuid.uuid4()), "kind": "photo", "filename": "a.jpg", "size": len(photo),
        "sha256": sha(photo), "chunk_size": CHUNK, "device_id": "phone-1"}).get_json()
    for index, part in enumerate(chunks(bytes(other))):
        assert put_chunk(client, opened["id"], index, part).status_code == 200
    answer = client.post(f"/api/v1/media/{opened['id']}/complete")
    assert answer.status_code == 422
    assert answer.get_json()["errors"][0]["field"] == "sha256"


@pytest.mark.parametrize(("data", "filename", "field", "words"), [
    (png_bytes(), "photo.exe", "filename", "named .exe"),
    (zip_bytes(), "photo.jpg", "content", "ZIP archive"),
])
def test_content_is_judged_by_its_bytes_with_a_clear_error(client, login, world, data,
                                                            filename, field, words):
    login(world["crew"])
    answer = upload(client, world["incident"].id, data, filename=filename)
    assert answer.status_code == 415
    problem = answer.get_json()
    assert answer.mimetype == "application/problem+json"
    assert problem["errors"][0]["field"] == field and words in problem["detail"]
    assert db.session.scalar(select(db.func.count()).select_from(Attachment)) == 0


def test_a_png_named_jpg_is_kept_as_the_png_it_is(client, login, world):
    login(world["crew"])
    answer = upload(client, world["incident"].id, png_bytes(), filename="photo.jpg")
    assert answer.get_json()["content_type"] == "image/png"


def test_limits_per_file_and_per_incident_are_clear_errors(app, client, login, world):
    login(world["crew"])
    app.config.update(MEDIA_MAX_FILE_BYTES=100_000, MEDIA_MAX_INCIDENT_FILES=2)
    big = start(client, world["incident"].id, b"x" * 10, size=100_001)
    assert big.status_code == 413
    assert big.get_json()["errors"][0]["field"] == "size"
    assert "limit is" in big.get_json()["detail"]
    for n in range(2):
        assert upload(client, world["incident"].id, png_bytes((8 + n, 8)),
                      filename="p.png").status_code == 200
    third = start(client, world["incident"].id, png_bytes((20, 8)), filename="p.png")
    assert third.status_code == 413 and "2 photos" in third.get_json()["detail"]


def test_a_preview_has_no_location_and_the_original_keeps_it(client, login, world):
    login(world["crew"])
    photo = jpeg_with_location((2000, 1500))
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)
    body = upload(client, world["incident"].id, photo).get_json()
    preview = client.get(f"/api/v1/media/{body['id']}/preview")
    assert preview.status_code == 200 and preview.mimetype == "image/jpeg"
    image = Image.open(io.BytesIO(preview.data))
    assert max(image.size) == 1280
    assert not image.getexif()  # no EXIF at all: no GPS, no camera
    assert b"QorgauTestCam" not in preview.data
    assert b"QorgauTestCam" in client.get(f"/api/v1/media/{body['id']}/original").data


def test_who_sees_the_files_and_every_view_is_in_the_access_log(app, client, login, world):
    login(world["crew"])
    body = upload(client, world["incident"].id, jpeg_with_location()).get_json()
    ident = body["id"]
    assert client.get(f"/api/v1/media/{ident}/original").status_code == 200  # the maker
    manager = make_person("manager", station=world["station"])
    police = make_person("police", post=world["post"])
    other_manager = make_person("manager", station=make_station())
    other_crew = make_person("crew", station=world["station"])
    other_police = make_person("police", post=make_post())
    for person, status in ((manager, 200), (police, 200), (other_manager, 404),
                           (other_crew, 404), (other_police, 404)):
        reader = app.test_client()
        login(person, on=reader)
        for path in (f"/api/v1/media/{ident}/original", f"/api/v1/media/{ident}/preview",
                     f"/api/v1/incidents/{world['incident'].id}/media"):
            got = reader.get(path)
            assert got.status_code == status, (person.role, path, got.status_code)
    logged = {(row.person_id, row.via) for row in db.session.scalars(select(AccessLog))}
    # Every view of a file, the maker's too; refused readers leave nothing.
    assert logged == {(world["crew"].id, "media.original"),
                      (manager.id, "media.original"), (manager.id, "media.preview"),
                      (police.id, "media.original"), (police.id, "media.preview")}


def test_only_the_maker_uploads_and_an_unsynced_incident_waits(app, client, login, world):
    other = make_person("crew", station=world["station"])
    login(other)
    photo = png_bytes()
    assert start(client, world["incident"].id, photo).status_code == 404
    assert start(client, uuid.uuid4(), photo).status_code == 404


def test_device_health_shows_the_media_each_phone_holds(app, client, login, world):
    login(world["crew"])
    answer = client.put("/api/v1/media/device", json={
        "device_id": "phone-1", "pending": 3, "pending_bytes": 5_000_000,
        "storage_persisted": True, "quota_bytes": 10**9, "usage_bytes": 10**7})
    assert answer.status_code == 200
    bad = client.put("/api/v1/media/device", json={"device_id": "phone-1", "pending": -1,
                                                    "pending_bytes": 0})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "pending"
    # The phone's sync puts it on the managers' device list.
    from tests.incident_helpers import batch, record

    assert client.post("/api/v1/incidents/sync", json=batch(record())).status_code == 200
    manager = make_person("manager", station=world["station"])
    reader = app.test_client()
    login(manager, on=reader)
    devices = reader.get("/api/v1/review/devices").get_json()["devices"]
    mine = next(d for d in devices if d["device_id"] == "phone-1")
    assert mine["media"]["pending"] == 3 and mine["media"]["pending_bytes"] == 5_000_000
    assert mine["storage_persisted"] is True


@pytest.mark.parametrize(("head", "expected"), [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
    (b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00", "audio/mp4"),
    (b"\x00\x00\x00\x1cftypiso5\x00\x00\x02\x00", "audio/mp4"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm", "audio/webm"),
    (b"OggS\x00\x02\x00\x00", "audio/ogg"),
    (b"\xff\xf1\x50\x80", "audio/aac"),
    (b"PK\x03\x04\x14\x00", None),
    (b"MZ\x90\x00", None),
    (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", None),
    (b"GIF89a", None),
    (b"", None),
])
def test_the_accepted_formats_are_known_by_their_first_bytes(head, expected):
    from api.media import sniff

    assert sniff.content_type(head) == expected
    if expected is None:
        assert sniff.describe(head) != "a file of an unknown type" or head in (b"",)
