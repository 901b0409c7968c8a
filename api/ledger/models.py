"""Signed receipts: what the server told a phone it had stored, kept to be shown again.

The chain itself lives on incident_events (seq, prev_hash, hash: see
api.ledger.service); a receipt binds one synced revision of an incident to the
chain head after it, under the server's Ed25519 signature.
"""

import uuid
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column

from api.db import UTCDateTime
from api.extensions import db


class Receipt(db.Model):
    """One signed receipt per synced incident revision (append-only)."""

    __tablename__ = "ledger_receipts"
    __table_args__ = (db.UniqueConstraint("incident_id", "revision"),)

    id: Mapped[int] = mapped_column(db.BigInteger().with_variant(db.Integer, "sqlite"),
                                    primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="RESTRICT"))
    revision: Mapped[int] = mapped_column(db.Integer)
    event_hash: Mapped[str] = mapped_column(db.String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(db.String(32))
    # The exact canonical JSON that was signed (UTF-8), and the signature (base64url).
    payload: Mapped[str] = mapped_column(db.Text)
    signature: Mapped[str] = mapped_column(db.String(100))


@event.listens_for(Receipt, "before_update")
@event.listens_for(Receipt, "before_delete")
def _receipts_are_append_only(mapper, connection, target):
    raise RuntimeError("receipts are append-only")
