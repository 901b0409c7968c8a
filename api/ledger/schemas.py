"""What the ledger endpoints and the receipts in other answers look like."""

from marshmallow import fields

from api.requests import Schema


class PublicKeySchema(Schema):
    algorithm = fields.String(metadata={"description": "Always Ed25519."})
    public_key = fields.String(metadata={"description": "The raw 32-byte key, base64url."})
    key_id = fields.String(metadata={
        "description": "First 16 hex digits of SHA-256 over the raw key."})


class ReceiptSchema(Schema):
    """The server's signed word that it stored this revision, with the chain head after it."""

    algorithm = fields.String()
    key_id = fields.String()
    incident_id = fields.UUID()
    revision = fields.Integer()
    event_hash = fields.String(metadata={
        "description": "The incident's hash-chain head after this revision (hex SHA-256)."})
    received_at = fields.String(metadata={"description": "ISO 8601 UTC, microseconds."})
    payload = fields.String(metadata={
        "description": "The exact canonical JSON that was signed (sorted keys, no spaces)."})
    signature = fields.String(metadata={
        "description": "Ed25519 over the payload's UTF-8 bytes, base64url."})


class ChainSchema(Schema):
    verified = fields.Boolean()
    events = fields.Integer()
    head = fields.String(allow_none=True)
    broken_at = fields.Integer(allow_none=True, metadata={
        "description": "The seq of the first link that fails; null when verified."})
