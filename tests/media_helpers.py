"""Evidence files and the upload protocol as the phone speaks it (api/media):
shared by the media API tests, the S3 store's test and the benchmark."""

import hashlib
import io
import uuid

from PIL import Image

CHUNK = 64 * 1024


def jpeg_with_location(size=(640, 480), *, noise: int = 0) -> bytes:
    """A JPEG whose EXIF holds a GPS position (Almaty) and a camera make."""
    image = Image.new("RGB", size, (200, 40, 40))
    if noise:
        image = Image.frombytes("RGB", size, bytes((i * 7919) % 251 for i in range(
            size[0] * size[1] * 3)))
    exif = Image.Exif()
    exif[0x010F] = "QorgauTestCam"  # Make
    gps = {1: "N", 2: (43.0, 15.0, 0.0), 3: "E", 4: (76.0, 55.0, 0.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95)
    return out.getvalue()


def png_bytes(size=(32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 90, 200)).save(out, "PNG")
    return out.getvalue()


def zip_bytes() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "not a photo")
    return out.getvalue()


def ogg_bytes(n: int = 3000) -> bytes:
    """Enough of an Ogg stream to be recognised by its first bytes."""
    return b"OggS\x00\x02" + bytes(range(256)) * (n // 256 + 1)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start(client, incident_id, data: bytes, *, kind="photo", filename="photo.jpg",
          chunk_size=CHUNK, ident=None, content_type="image/jpeg", size=None):
    return client.post(f"/api/v1/incidents/{incident_id}/media", json={
        "id": str(ident or uuid.uuid4()), "kind": kind, "filename": filename,
        "content_type": content_type, "size": len(data) if size is None else size,
        "sha256": sha(data), "chunk_size": chunk_size, "device_id": "phone-1"})


def chunks(data: bytes, chunk_size=CHUNK):
    return [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]


def put_chunk(client, ident, index, part: bytes):
    return client.put(f"/api/v1/media/{ident}/chunks/{index}", data=part,
                      headers={"X-Chunk-SHA256": sha(part),
                               "Content-Type": "application/octet-stream"})


def upload(client, incident_id, data: bytes, *, chunk_size=CHUNK, **kwargs):
    """The whole protocol: start, every chunk, complete. Returns the last response."""
    opened = start(client, incident_id, data, chunk_size=chunk_size, **kwargs)
    if opened.status_code not in (200, 201):
        return opened
    ident = opened.get_json()["id"]
    for index, part in enumerate(chunks(data, chunk_size)):
        if index in opened.get_json()["received"]:
            continue
        answer = put_chunk(client, ident, index, part)
        if answer.status_code != 200:
            return answer
    return client.post(f"/api/v1/media/{ident}/complete")
