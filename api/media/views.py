"""Media endpoints: the crew's resumable uploads, and reading the files within
the incident's scope (every view and download by a manager or an officer goes
to the access log)."""

import base64
import uuid

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.access_log import log_access
from api.auth.access import current_person, require
from api.media import schemas, service, sniff
from api.openapi import body_schema, response_schema, spec
from api.orgs.models import Role

bp = Blueprint("media", __name__)

READERS = (Role.CREW, Role.MANAGER, Role.POLICE)
CHUNK_HEADER = "X-Chunk-SHA256"


@bp.post("/incidents/<uuid:incident_id>/media")
@spec(summary="Open (or find again) the upload of a photo or recording for one of my incidents",
      tags=["media"])
@require(Role.CREW)
@body_schema(schemas.UploadStartSchema)
@response_schema(schemas.AttachmentSchema, (200, 201))
def start_upload(incident_id: uuid.UUID, body: dict):
    """Announce a file (its size and SHA-256); the answer lists the chunks the server has."""
    attachment, created = service.start(current_person(), incident_id, body)
    return service.view(attachment, with_chunks=True), 201 if created else 200


@bp.get("/incidents/<uuid:incident_id>/media")
@spec(summary="The photos and recordings of an incident in my scope", tags=["media"])
@require(*READERS)
@response_schema(schemas.AttachmentListSchema)
def list_media(incident_id: uuid.UUID):
    """Every attachment of the incident, stored or still uploading."""
    person = current_person()
    incident = service.incident_in_scope(person, incident_id)
    return {"attachments": [service.view(a, incident) for a in service.attachments_of(incident)]}


@bp.get("/media/<uuid:attachment_id>")
@spec(summary="One attachment, with the chunks the server has while it uploads",
      tags=["media"])
@require(*READERS)
@response_schema(schemas.AttachmentSchema)
def get_attachment(attachment_id: uuid.UUID):
    """Where an upload stands: resume by sending the chunks not in `received`."""
    attachment, incident = service.find(current_person(), attachment_id)
    return service.view(attachment, incident, with_chunks=True)


@bp.put("/media/<uuid:attachment_id>/chunks/<int:index>")
@spec(summary="One chunk of an upload (raw bytes; X-Chunk-SHA256: its SHA-256 in hex)",
      tags=["media"])
@require(Role.CREW)
@response_schema(schemas.ChunkAnswerSchema)
def put_chunk(attachment_id: uuid.UUID, index: int):
    """Store one chunk, checked against its SHA-256; sending it again changes nothing."""
    limit = int(current_app.config.get("MEDIA_MAX_CHUNK_BYTES",
                                       service.LIMITS["MEDIA_MAX_CHUNK_BYTES"]))
    request.max_content_length = limit
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge as err:
        raise service.field_problem(413, "Chunk too large", "body",
                                    f"A chunk may be at most {limit} bytes.") from err
    return service.put_chunk(current_person(), attachment_id, index, data,
                             request.headers.get(CHUNK_HEADER))


@bp.post("/media/<uuid:attachment_id>/complete")
@spec(summary="Finish an upload: the whole file's SHA-256 and content are checked, then it "
              "is stored and sealed in the incident's hash chain", tags=["media"])
@require(Role.CREW)
@response_schema(schemas.AttachmentSchema)
def complete(attachment_id: uuid.UUID):
    """Store the file (content-addressed) and append its hash to the incident's chain;
    the answer carries a receipt signed over the new chain head."""
    return service.complete(current_person(), attachment_id)


def _file_response(body, mimetype: str, *, filename: str, inline: bool) -> Response:
    response = Response(body, mimetype=mimetype, direct_passthrough=True)
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _download_name(attachment, incident, suffix: str = "") -> str:
    case = (incident.case_number or str(incident.id)).replace("/", "-")
    ext = "jpg" if suffix else sniff.EXTENSION_FOR.get(attachment.content_type, "bin")
    return f"{case}-{attachment.kind}-{str(attachment.id)[:8]}{suffix}.{ext}"


@bp.get("/media/<uuid:attachment_id>/original")
@spec(summary="The original file, byte for byte (written to the access log)", tags=["media"])
@require(*READERS)
def original(attachment_id: uuid.UUID):
    """The file as the phone recorded it; its SHA-256 is in the Repr-Digest header."""
    person = current_person()
    attachment, incident, blocks = service.original(person, attachment_id)
    log_access(person, incident, "media.original", any_role=True)
    response = _file_response(blocks, attachment.content_type,
                              filename=_download_name(attachment, incident), inline=False)
    response.headers["Content-Length"] = str(attachment.size)
    response.headers["Repr-Digest"] = \
        f"sha-256=:{base64.b64encode(bytes.fromhex(attachment.sha256)).decode()}:"
    return response


@bp.get("/media/<uuid:attachment_id>/preview")
@spec(summary="A small JPEG of a photo, without EXIF (no location); written to the access "
              "log", tags=["media"])
@require(*READERS)
def preview(attachment_id: uuid.UUID):
    """A preview to look at: at most 1280 px, no metadata."""
    person = current_person()
    attachment, incident, data = service.preview(person, attachment_id)
    log_access(person, incident, "media.preview", any_role=True)
    return _file_response(data, "image/jpeg", inline=True,
                          filename=_download_name(attachment, incident, "-preview"))


@bp.put("/media/device")
@spec(summary="What this phone holds of media not yet uploaded (device health)",
      tags=["media"])
@require(Role.CREW)
@body_schema(schemas.DeviceReportSchema)
@response_schema(schemas.DeviceReportAnswerSchema)
def report_device(body: dict):
    """The phone's count and size of media waiting, and its storage, for the managers."""
    return service.report_device(current_person(), body)

