"""Attachments (a photo or a recording of one incident), their chunks while
uploading, and what each phone reports of the media it still holds."""

import uuid
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime, utcnow
from api.extensions import db


class Attachment(db.Model):
    """One photo or audio recording, made by a crew member for one of their incidents.

    The id is made by the phone (idempotent uploads). Until `stored_at` is set
    the file is arriving in chunks (MediaChunk); once stored, `sha256` names the
    original in the content-addressed store, byte for byte, and the incident's
    chain has an `attachment_added` event with that hash.
    """

    __tablename__ = "media_attachments"
    __table_args__ = (
        db.CheckConstraint("kind IN ('photo', 'audio')", name="kind_known"),
        db.Index("ix_media_attachments_incident_id", "incident_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(db.Uuid, primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="RESTRICT"))
    maker_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="RESTRICT"))
    device_id: Mapped[str] = mapped_column(db.String(64))
    kind: Mapped[str] = mapped_column(db.String(8))
    filename: Mapped[str] = mapped_column(db.String(200))
    declared_type: Mapped[str] = mapped_column(db.String(100))
    size: Mapped[int] = mapped_column(db.BigInteger)
    sha256: Mapped[str] = mapped_column(db.String(64))
    chunk_size: Mapped[int] = mapped_column(db.Integer)
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the whole file arrived, matched its SHA-256 and its content was accepted.
    content_type: Mapped[str | None] = mapped_column(db.String(64))
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    preview_sha256: Mapped[str | None] = mapped_column(db.String(64))
    event_seq: Mapped[int | None] = mapped_column(db.Integer)
    # The receipt signed over the chain head once the attachment's event was in it.
    receipt_payload: Mapped[str | None] = mapped_column(db.Text)
    receipt_signature: Mapped[str | None] = mapped_column(db.String(100))

    maker: Mapped["Person"] = relationship("Person")  # noqa: F821 (api.orgs.models)

    @property
    def chunks_total(self) -> int:
        return max(1, -(-self.size // self.chunk_size))


class MediaChunk(db.Model):
    """A chunk the server has (its bytes wait in the store under a staging key)."""

    __tablename__ = "media_chunks"

    attachment_id: Mapped[uuid.UUID] = mapped_column(
        db.ForeignKey("media_attachments.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(db.Integer, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(db.String(64))
    size: Mapped[int] = mapped_column(db.Integer)


class MediaDevice(db.Model):
    """What a crew phone last said of the media it holds (the managers' device health)."""

    __tablename__ = "media_devices"

    person_id: Mapped[int] = mapped_column(
        db.ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(db.String(64), primary_key=True)
    pending: Mapped[int] = mapped_column(db.Integer)
    pending_bytes: Mapped[int] = mapped_column(db.BigInteger)
    refused: Mapped[int] = mapped_column(db.Integer, default=0)
    storage_persisted: Mapped[bool | None] = mapped_column(db.Boolean)
    quota_bytes: Mapped[int | None] = mapped_column(db.BigInteger)
    usage_bytes: Mapped[int | None] = mapped_column(db.BigInteger)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
