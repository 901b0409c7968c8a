"""What the ledger endpoints look like (a receipt's shape is api.incidents.schemas.ReceiptSchema:
the sync answer carries it, and the ledger is above the incidents)."""

from marshmallow import fields

from api.requests import Schema


class PublicKeySchema(Schema):
    algorithm = fields.String(metadata={"description": "Always Ed25519."})
    public_key = fields.String(metadata={"description": "The raw 32-byte key, base64url."})
    key_id = fields.String(metadata={
        "description": "First 16 hex digits of SHA-256 over the raw key."})


class ChainSchema(Schema):
    verified = fields.Boolean()
    events = fields.Integer()
    head = fields.String(allow_none=True)
    broken_at = fields.Integer(allow_none=True, metadata={
        "description": "The seq of the first link that fails; null when verified."})
