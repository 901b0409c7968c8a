"""The ledger's one endpoint: the public key receipts verify with (public, like the law)."""

from flask import Blueprint, current_app

from api.ledger import keys
from api.ledger.schemas import PublicKeySchema
from api.openapi import response_schema, spec

bp = Blueprint("ledger", __name__)


@bp.get("/public-key")
@spec(summary="The Ed25519 public key that signs sync receipts", tags=["ledger"])
@response_schema(PublicKeySchema)
def public_key():
    """The receipt-signing public key; anyone may verify a receipt with it."""
    app = current_app._get_current_object()
    raw = keys.public_raw(app)
    return {"algorithm": keys.ALGORITHM, "public_key": keys.b64url(raw),
            "key_id": keys.key_id_of(raw)}
