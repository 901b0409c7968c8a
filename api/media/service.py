"""Evidence uploads: a photo or recording arrives in chunks (each checked by its
SHA-256), resumes where it stopped, and once whole (its SHA-256 checked, its
content sniffed) is kept byte for byte in the content-addressed store and
sealed as an `attachment_added` event in the incident's hash chain, with a
receipt signed over the chain head. No Flask request objects here."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import uuid

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from api.db import utcnow
from api.errors import Problem
from api.extensions import db
from api.incidents import records
from api.incidents.models import Incident
from api.ledger import service as ledger
from api.media import sniff
from api.media.models import Attachment, MediaChunk, MediaDevice
from api.media.store import MissingObject, blob_key, sha256_of, staging_key, store_for
from api.orgs.models import Person

# Settings (QORGAU_MEDIA_*), with their defaults.
LIMITS = {
    "MEDIA_MAX_FILE_BYTES": 25 * 1024 * 1024,
    "MEDIA_MAX_INCIDENT_FILES": 20,
    "MEDIA_MAX_INCIDENT_BYTES": 200 * 1024 * 1024,
    "MEDIA_MIN_CHUNK_BYTES": 16 * 1024,
    "MEDIA_MAX_CHUNK_BYTES": 1024 * 1024,
}
PREVIEW_EDGE = 1280
EVENT_KIND = "attachment_added"


def setting(name: str) -> int:
    return int(current_app.config.get(name, LIMITS[name]))


def field_problem(status: int, title: str, field: str, message: str, **extra) -> Problem:
    return Problem(status, title, message, type_="media",
                   errors=[{"field": field, "message": message}], **extra)


def store():
    return store_for(current_app._get_current_object())


# ---------------------------------------------------------------------------
# Reading within the incident's scope


def find(person: Person, attachment_id: uuid.UUID, *, lock: bool = False):
    """(attachment, incident) within the person's incidents, or a 404 (unknown
    and out of scope look the same)."""
    query = (select(Attachment, Incident).join(Incident, Incident.id == Attachment.incident_id)
             .where(Attachment.id == attachment_id, records.visible_to(person)))
    if lock:
        query = query.with_for_update(of=Attachment)
    row = db.session.execute(query).first()
    if row is None:
        raise Problem(404, "Not Found", "No such attachment among your incidents.")
    return row[0], row[1]


def incident_in_scope(person: Person, incident_id: uuid.UUID) -> Incident:
    incident = db.session.scalar(select(Incident).where(Incident.id == incident_id,
                                                        records.visible_to(person)))
    if incident is None:
        raise Problem(404, "Not Found",
                      "No such incident among yours (a new one must sync before its media).")
    return incident


def attachments_of(incident: Incident) -> list[Attachment]:
    return list(db.session.scalars(select(Attachment).where(
        Attachment.incident_id == incident.id).order_by(Attachment.created_at, Attachment.id)))


def received(attachment: Attachment) -> list[int]:
    return list(db.session.scalars(select(MediaChunk.index).where(
        MediaChunk.attachment_id == attachment.id).order_by(MediaChunk.index)))


def view(attachment: Attachment, incident: Incident | None = None, *,
         with_chunks: bool = False) -> dict:
    out = {"id": attachment.id, "incident_id": attachment.incident_id, "kind": attachment.kind,
           "filename": attachment.filename, "size": attachment.size, "sha256": attachment.sha256,
           "chunk_size": attachment.chunk_size, "chunks": attachment.chunks_total,
           "status": "stored" if attachment.stored_at else "uploading",
           "content_type": attachment.content_type, "captured_at": attachment.captured_at,
           "created_at": attachment.created_at, "stored_at": attachment.stored_at,
           "preview": attachment.preview_sha256 is not None,
           "maker": attachment.maker, "event_seq": attachment.event_seq,
           "receipt": receipt_of(attachment, incident)}
    if with_chunks:
        out["received"] = [] if attachment.stored_at else received(attachment)
    return out


def receipt_of(attachment: Attachment, incident: Incident | None):
    if not attachment.receipt_payload:
        return None
    import json

    fields = json.loads(attachment.receipt_payload)
    return {"algorithm": "Ed25519", "key_id": fields["key_id"],
            "incident_id": fields["incident_id"], "revision": fields["revision"],
            "event_hash": fields["event_hash"], "received_at": fields["received_at"],
            "payload": attachment.receipt_payload, "signature": attachment.receipt_signature}


# ---------------------------------------------------------------------------
# Upload


def start(person: Person, incident_id: uuid.UUID, body: dict) -> tuple[Attachment, bool]:
    """Open an upload (or find the same one again): (attachment, created)."""
    incident = incident_in_scope(person, incident_id)
    existing = db.session.get(Attachment, body["id"])
    if existing is not None:
        if (existing.maker_id != person.id or existing.incident_id != incident.id
                or existing.sha256 != body["sha256"] or existing.size != body["size"]):
            raise field_problem(409, "Conflict", "id",
                                "This attachment id is already used for another file.")
        return existing, False
    max_file = setting("MEDIA_MAX_FILE_BYTES")
    if body["size"] > max_file:
        raise field_problem(413, "File too large", "size",
                            f"The file is {mb(body['size'])}; the limit is {mb(max_file)} "
                            "per file.", limit=max_file)
    chunk = body["chunk_size"]
    if not setting("MEDIA_MIN_CHUNK_BYTES") <= chunk <= setting("MEDIA_MAX_CHUNK_BYTES"):
        raise field_problem(422, "Validation failed", "chunk_size",
                            f"Chunks must be {setting('MEDIA_MIN_CHUNK_BYTES')} to "
                            f"{setting('MEDIA_MAX_CHUNK_BYTES')} bytes.")
    ext = sniff.extension(body["filename"])
    if ext and ext not in sniff.EXTENSIONS[body["kind"]]:
        raise field_problem(415, "Not a photo or recording", "filename",
                            f"The file is named .{ext}: only {sniff.accepted_list()} "
                            "are accepted.")
    count, total = db.session.execute(
        select(func.count(Attachment.id), func.coalesce(func.sum(Attachment.size), 0))
        .where(Attachment.incident_id == incident.id)).one()
    if count + 1 > setting("MEDIA_MAX_INCIDENT_FILES"):
        raise field_problem(413, "Too many files for this incident", "id",
                            f"An incident may have {setting('MEDIA_MAX_INCIDENT_FILES')} "
                            "photos and recordings.")
    if total + body["size"] > setting("MEDIA_MAX_INCIDENT_BYTES"):
        raise field_problem(413, "Too much media for this incident", "size",
                            f"An incident may have {mb(setting('MEDIA_MAX_INCIDENT_BYTES'))} "
                            f"of media; it has {mb(total)}.")
    attachment = Attachment(
        id=body["id"], incident_id=incident.id, maker_id=person.id,
        device_id=body["device_id"], kind=body["kind"], filename=body["filename"][:200],
        declared_type=(body.get("content_type") or "")[:100], size=body["size"],
        sha256=body["sha256"], chunk_size=chunk, captured_at=body.get("captured_at"),
        created_at=utcnow())
    db.session.add(attachment)
    try:
        db.session.commit()
    except IntegrityError:  # the same upload opened twice at once: the first one counts
        db.session.rollback()
        return start(person, incident_id, body)
    return attachment, True


def mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def check_content(attachment: Attachment, head: bytes) -> str:
    """The accepted content type of these first bytes, or a 415 naming what the file is."""
    ctype = sniff.content_type(head)
    if ctype is None:
        raise field_problem(415, "Not a photo or recording", "content",
                            f"The file is {sniff.describe(head)} (by its content, whatever its "
                            f"name): only {sniff.accepted_list()} are accepted.",
                            found=sniff.describe(head))
    if sniff.kind_of(ctype) != attachment.kind:
        raise field_problem(415, "Wrong kind of file", "kind",
                            f"Sent as a {attachment.kind}, but the file is {sniff.label(ctype)}.")
    ext = sniff.extension(attachment.filename)
    if ext and ext not in sniff.EXTENSIONS[attachment.kind]:
        raise field_problem(415, "Name does not match content", "filename",
                            f"The file is {sniff.label(ctype)} but is named .{ext}.")
    return ctype


def refuse(attachment: Attachment) -> None:
    """A file whose content is refused leaves no trace but the answer (it was
    never in the chain): its row, chunks and staged bytes go."""
    ident = attachment.id
    db.session.execute(MediaChunk.__table__.delete().where(MediaChunk.attachment_id == ident))
    db.session.execute(Attachment.__table__.delete().where(Attachment.id == ident))
    db.session.commit()
    store().delete_prefix(f"staging/{ident}")


def put_chunk(person: Person, attachment_id: uuid.UUID, index: int, data: bytes,
              declared_sha: str | None) -> dict:
    attachment, _ = find(person, attachment_id)
    if attachment.maker_id != person.id:
        raise Problem(404, "Not Found", "No such upload of yours.")
    if attachment.stored_at is not None:
        return {"index": index, "received": attachment.chunks_total,
                "chunks": attachment.chunks_total, "status": "stored"}
    total = attachment.chunks_total
    if not 0 <= index < total:
        raise field_problem(422, "Validation failed", "index",
                            f"This file has chunks 0 to {total - 1}.")
    expected = (attachment.size - attachment.chunk_size * (total - 1)
                if index == total - 1 else attachment.chunk_size)
    if len(data) != expected:
        raise field_problem(422, "Chunk incomplete", "body",
                            f"Chunk {index} must be {expected} bytes; {len(data)} arrived. "
                            "Send it again.")
    digest = hashlib.sha256(data).hexdigest()
    if not declared_sha or declared_sha.lower() != digest:
        raise field_problem(422, "Chunk damaged", "X-Chunk-SHA256",
                            f"Chunk {index}'s SHA-256 is {digest}, not the one sent. "
                            "Send it again.")
    if index == 0:
        try:
            check_content(attachment, data[:sniff.HEAD_BYTES])
        except Problem:
            refuse(attachment)
            raise
    have = db.session.get(MediaChunk, (attachment.id, index))
    if have is None:
        # The bytes first, then the row: a row always has its bytes.
        store().put_bytes(staging_key(attachment.id, index), data)
        db.session.add(MediaChunk(attachment_id=attachment.id, index=index, sha256=digest,
                                  size=len(data)))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    count = db.session.scalar(select(func.count()).select_from(MediaChunk).where(
        MediaChunk.attachment_id == attachment.id))
    return {"index": index, "received": count, "chunks": total, "status": "uploading"}


def make_preview(path: str) -> bytes | None:
    """A JPEG of at most PREVIEW_EDGE pixels, turned as the camera held it, with
    no metadata at all (no EXIF: no location, no device). None when Pillow cannot
    read the format (HEIC without a plugin)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            image.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE))
            if image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            out = io.BytesIO()
            # A fresh image carries no info: save() writes no EXIF unless given one.
            clean = Image.new(image.mode, image.size)
            clean.paste(image)
            clean.save(out, "JPEG", quality=82, optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def complete(person: Person, attachment_id: uuid.UUID) -> dict:
    attachment, incident = find(person, attachment_id, lock=True)
    if attachment.maker_id != person.id:
        raise Problem(404, "Not Found", "No such upload of yours.")
    if attachment.stored_at is not None:
        return view(attachment, incident)
    have = received(attachment)
    missing = sorted(set(range(attachment.chunks_total)) - set(have))
    if missing:
        raise Problem(409, "Chunks missing", f"{len(missing)} chunks have not arrived.",
                      type_="media", missing=missing[:1000])
    media_store = store()
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix="qorgau-media-")
    try:
        with os.fdopen(fd, "wb") as out:
            for index in range(attachment.chunks_total):
                for block in media_store.iter_bytes(staging_key(attachment.id, index)):
                    digest.update(block)
                    out.write(block)
        found = digest.hexdigest()
        if found != attachment.sha256:
            # Start the file again: the chunks matched their own hashes, so the
            # phone sent another file than it announced.
            db.session.execute(MediaChunk.__table__.delete().where(
                MediaChunk.attachment_id == attachment.id))
            db.session.commit()
            media_store.delete_prefix(f"staging/{attachment.id}")
            raise field_problem(422, "File damaged", "sha256",
                                f"The file's SHA-256 is {found}, not the one announced. "
                                "Send it again.")
        with open(tmp, "rb") as fh:
            head = fh.read(sniff.HEAD_BYTES)
        try:
            ctype = check_content(attachment, head)
        except Problem:
            refuse(attachment)
            raise
        key = blob_key(found)
        if not media_store.exists(key):
            media_store.put_file(key, tmp)
        preview = make_preview(tmp) if attachment.kind == "photo" else None
    finally:
        os.unlink(tmp)
    if preview is not None:
        preview_sha = hashlib.sha256(preview).hexdigest()
        if not media_store.exists(blob_key(preview_sha)):
            media_store.put_bytes(blob_key(preview_sha), preview)
        attachment.preview_sha256 = preview_sha
    now = utcnow()
    attachment.content_type = ctype
    attachment.stored_at = now
    event = records.append_event(incident, person, EVENT_KIND, {"attachment": (None, {
        "id": str(attachment.id), "kind": attachment.kind, "sha256": found,
        "size": attachment.size, "content_type": ctype})}, at=now)
    receipt = ledger.signed_head(incident)
    attachment.event_seq = event.seq
    attachment.receipt_payload = receipt["payload"]
    attachment.receipt_signature = receipt["signature"]
    db.session.commit()
    media_store.delete_prefix(f"staging/{attachment.id}")
    return view(attachment, incident)


# ---------------------------------------------------------------------------
# Reading the files (the caller logs the access)


def original(person: Person, attachment_id: uuid.UUID):
    attachment, incident = find(person, attachment_id)
    if attachment.stored_at is None:
        raise Problem(404, "Not Found", "This file has not finished uploading.")
    return attachment, incident, store().iter_bytes(blob_key(attachment.sha256))


def preview(person: Person, attachment_id: uuid.UUID):
    attachment, incident = find(person, attachment_id)
    if attachment.preview_sha256 is None:
        raise Problem(404, "No preview", "There is no preview of this file (audio, or a "
                      "format the server cannot draw); download the original.")
    return attachment, incident, store().get_bytes(blob_key(attachment.preview_sha256))


# ---------------------------------------------------------------------------
# Device health: what each phone holds


def report_device(person: Person, body: dict) -> MediaDevice:
    device = db.session.get(MediaDevice, (person.id, body["device_id"]))
    if device is None:
        device = MediaDevice(person_id=person.id, device_id=body["device_id"])
        db.session.add(device)
    device.pending = body["pending"]
    device.pending_bytes = body["pending_bytes"]
    device.refused = body.get("refused") or 0
    device.storage_persisted = body.get("storage_persisted")
    device.quota_bytes = body.get("quota_bytes")
    device.usage_bytes = body.get("usage_bytes")
    device.reported_at = utcnow()
    try:
        db.session.commit()
    except IntegrityError:  # two tabs reported at once: the other one's report stands
        db.session.rollback()
        device = db.session.get(MediaDevice, (person.id, body["device_id"]))
    return device


def devices_of(person_ids) -> dict[tuple[int, str], MediaDevice]:
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    return {(d.person_id, d.device_id): d for d in db.session.scalars(
        select(MediaDevice).where(MediaDevice.person_id.in_(ids)))}


def media_health(device: MediaDevice | None) -> dict | None:
    if device is None:
        return None
    return {"pending": device.pending, "pending_bytes": device.pending_bytes,
            "refused": device.refused, "reported_at": device.reported_at,
            "quota_bytes": device.quota_bytes, "usage_bytes": device.usage_bytes}


# ---------------------------------------------------------------------------
# `flask ledger verify`: the stored files against the hashes the chains hold


class FileCheck:
    """Registered with api.ledger.service.verify_listeners (create_app)."""

    @staticmethod
    def verify_stored(incident_id: uuid.UUID | None) -> tuple[int, list[str]]:
        from api.incidents.models import IncidentEvent

        query = select(Attachment, Incident.case_number).join(
            Incident, Incident.id == Attachment.incident_id).where(
            Attachment.stored_at.is_not(None))
        if incident_id is not None:
            query = query.where(Attachment.incident_id == incident_id)
        rows = db.session.execute(query.order_by(Attachment.incident_id, Attachment.created_at))
        media_store = store()
        checked, problems = 0, []
        for attachment, case_number in rows:
            checked += 1
            name = (f"attachment {attachment.id} ({attachment.kind}, {attachment.filename}) "
                    f"of incident {attachment.incident_id} ({case_number})")
            try:
                found = sha256_of(media_store, blob_key(attachment.sha256))
            except MissingObject:
                problems.append(f"{name}: file MISSING from the store "
                                f"(sha256 {attachment.sha256})")
                continue
            if found != attachment.sha256:
                problems.append(f"{name}: file CHANGED (expected sha256 {attachment.sha256}, "
                                f"found {found})")
                continue
            event = db.session.scalar(select(IncidentEvent).where(
                IncidentEvent.incident_id == attachment.incident_id,
                IncidentEvent.seq == attachment.event_seq))
            sealed = ((event.changes or {}).get("attachment") or [None, {}])[1] if event else {}
            if not sealed or sealed.get("sha256") != attachment.sha256 \
                    or sealed.get("id") != str(attachment.id):
                problems.append(f"{name}: its sha256 {attachment.sha256} is not the one "
                                f"sealed in the incident's chain at seq {attachment.event_seq}")
        return checked, problems

