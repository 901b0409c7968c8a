"""Inbound SMS (every webhook event the gateway posted, accepted or not: the
administrator's view of the SMS fallback) and the replies' outbox."""

import enum
import uuid
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime, str_enum, utcnow
from api.extensions import db


class SmsOutcome(enum.StrEnum):
    CREATED = "created"    # a new incident
    MERGED = "merged"      # the incident existed (synced first, or an earlier SMS)
    REJECTED = "rejected"  # not verified or not readable: see reason
    IGNORED = "ignored"    # a webhook event that is not an incoming SMS


class ReplyStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class SmsInbound(db.Model):
    __tablename__ = "sms_inbound"
    __table_args__ = (db.Index("ix_sms_inbound_outcome_received", "outcome", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The gateway's id of the webhook event: a second delivery of it is a replay.
    event_id: Mapped[str | None] = mapped_column(db.String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sender: Mapped[str] = mapped_column(db.String(32), default="")
    text: Mapped[str] = mapped_column(db.String(480), default="")
    outcome: Mapped[SmsOutcome] = mapped_column(str_enum(SmsOutcome, "sms_outcome"))
    reason: Mapped[str | None] = mapped_column(db.String(32))
    detail: Mapped[str] = mapped_column(db.String(300), default="")
    # SHA-256 of the normalised text of a verified message: the same message
    # arriving again (another event id) is a replay.
    digest: Mapped[str | None] = mapped_column(db.String(64), unique=True)
    session_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("auth_sessions.id", ondelete="SET NULL"), index=True)
    person_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("people.id", ondelete="SET NULL"))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="SET NULL"), index=True)
    case_number: Mapped[str | None] = mapped_column(db.String(32))


class SmsReply(db.Model):
    """One reply per accepted message, written in its transaction. The id is
    the gateway message id, so a retry after a lost answer is never sent twice."""

    __tablename__ = "sms_outbox"
    __table_args__ = (db.Index("ix_sms_outbox_status_due", "status", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(db.Uuid, primary_key=True, default=uuid.uuid4)
    inbound_id: Mapped[int] = mapped_column(
        db.ForeignKey("sms_inbound.id", ondelete="CASCADE"), unique=True)
    to_number: Mapped[str] = mapped_column(db.String(32))
    text: Mapped[str] = mapped_column(db.String(320))
    status: Mapped[ReplyStatus] = mapped_column(str_enum(ReplyStatus, "sms_reply_status"),
                                                default=ReplyStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(db.Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(db.Integer)
    last_error: Mapped[str | None] = mapped_column(db.String(300))

    inbound: Mapped[SmsInbound] = relationship()
