"""Requests and answers of the media endpoints (they validate and document)."""

from marshmallow import fields, validate

from api.incidents.schemas import ReceiptSchema, StrictInteger
from api.requests import Schema

SHA256 = validate.Regexp(r"^[0-9a-f]{64}$", error="A SHA-256 in 64 lower-case hex digits.")


class UploadStartSchema(Schema):
    id = fields.UUID(required=True, metadata={"description": "Made by the phone (idempotent)."})
    kind = fields.String(required=True, validate=validate.OneOf(["photo", "audio"]))
    filename = fields.String(required=True, validate=validate.Length(1, 200))
    content_type = fields.String(load_default="", validate=validate.Length(0, 100), metadata={
        "description": "As the phone declared it; the server judges by the content."})
    size = StrictInteger(required=True, validate=validate.Range(1, 2**40))
    sha256 = fields.String(required=True, validate=SHA256)
    chunk_size = StrictInteger(required=True, validate=validate.Range(1, 2**31 - 1))
    device_id = fields.String(required=True, validate=validate.Length(1, 64))
    captured_at = fields.AwareDateTime(load_default=None, allow_none=True)


class PersonRefSchema(Schema):
    id = fields.Integer()
    display_name = fields.String()


class AttachmentSchema(Schema):
    id = fields.UUID()
    incident_id = fields.UUID()
    kind = fields.String()
    filename = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    chunk_size = fields.Integer()
    chunks = fields.Integer()
    status = fields.String(metadata={"description": "uploading | stored"})
    content_type = fields.String(allow_none=True, metadata={
        "description": "What the content is (sniffed), once stored."})
    captured_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    stored_at = fields.AwareDateTime(allow_none=True)
    preview = fields.Boolean()
    maker = fields.Nested(PersonRefSchema)
    event_seq = fields.Integer(allow_none=True, metadata={
        "description": "The attachment_added event's place in the incident's hash chain."})
    receipt = fields.Nested(ReceiptSchema, allow_none=True, metadata={
        "description": "Signed over the chain head once the attachment's event was in it."})
    received = fields.List(fields.Integer(), metadata={
        "description": "Chunks the server has (only while uploading): resume with the rest."})


class AttachmentListSchema(Schema):
    attachments = fields.List(fields.Nested(AttachmentSchema))


class ChunkAnswerSchema(Schema):
    index = fields.Integer()
    received = fields.Integer(metadata={"description": "Chunks the server has now."})
    chunks = fields.Integer()
    status = fields.String()


class DeviceReportSchema(Schema):
    device_id = fields.String(required=True, validate=validate.Length(1, 64))
    pending = StrictInteger(required=True, validate=validate.Range(0, 100_000))
    pending_bytes = StrictInteger(required=True, validate=validate.Range(0, 2**50))
    refused = StrictInteger(load_default=0, validate=validate.Range(0, 100_000))
    storage_persisted = fields.Boolean(load_default=None, allow_none=True)
    quota_bytes = StrictInteger(load_default=None, allow_none=True,
                                validate=validate.Range(0, 2**60))
    usage_bytes = StrictInteger(load_default=None, allow_none=True,
                                validate=validate.Range(0, 2**60))


class DeviceReportAnswerSchema(Schema):
    device_id = fields.String()
    pending = fields.Integer()
    reported_at = fields.AwareDateTime()
