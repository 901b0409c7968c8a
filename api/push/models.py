"""Push subscriptions, the notification outbox and its delivery attempts.

The outbox holds one row per message per device (subscription): rows are
written in the same transaction as the change that causes them, so a
notification is sent if and only if the change was committed, and a retry for
one device never re-sends to the person's other devices.
"""

import enum
import uuid
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime, str_enum, utcnow
from api.extensions import db
from api.orgs.models import Person


class PushSubscription(db.Model):
    """One browser's push subscription; a person may have several devices."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="CASCADE"),
                                           index=True)
    # The session that subscribed: revoking it (a lost or stolen phone) deletes the
    # subscription. NULL for ones made before this was recorded; those go only
    # when all of the person's devices are revoked.
    session_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("auth_sessions.id", ondelete="SET NULL"), index=True)
    endpoint: Mapped[str] = mapped_column(db.String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(db.String(128))
    auth: Mapped[str] = mapped_column(db.String(64))
    device_id: Mapped[str | None] = mapped_column(db.String(100))
    user_agent: Mapped[str] = mapped_column(db.String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship()

    def info(self) -> dict:
        """The subscription as pywebpush takes it."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    GONE = "gone"      # the push service said 404/410: the subscription was deleted
    FAILED = "failed"  # a permanent error, or the retry limit was reached


class Urgency(enum.StrEnum):
    """RFC 8030 Urgency header values."""

    VERY_LOW = "very-low"
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class PushOutbox(db.Model):
    """One notification to one device, waiting for (or done with) the worker."""

    __tablename__ = "push_outbox"
    __table_args__ = (
        # The worker's claim query: due pending rows, oldest first.
        db.Index("ix_push_outbox_due", "status", "next_attempt_at"),
        # Its first part: the urgent ones (police alerts, SOS) before the rest.
        db.Index("ix_push_outbox_due_urgency", "status", "urgency", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="CASCADE"),
                                           index=True)
    # SET NULL, so the record of a message survives its subscription being deleted.
    subscription_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("push_subscriptions.id", ondelete="SET NULL"), index=True)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(db.String(40))
    payload: Mapped[dict] = mapped_column(db.JSON)
    urgency: Mapped[Urgency] = mapped_column(str_enum(Urgency, "push_urgency"),
                                             default=Urgency.NORMAL)
    topic: Mapped[str | None] = mapped_column(db.String(32))
    ttl: Mapped[int] = mapped_column(db.Integer)
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus, "push_outbox_status"),
                                                 default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(db.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(db.String(500))

    person: Mapped[Person] = relationship()
    subscription: Mapped[PushSubscription | None] = relationship()
    attempt_log: Mapped[list["PushAttempt"]] = relationship(
        back_populates="outbox", order_by="PushAttempt.id", cascade="all, delete-orphan",
        passive_deletes=True)


class AttemptOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"
    GONE = "gone"
    FAILED = "failed"
    GAVE_UP = "gave_up"


class PushAttempt(db.Model):
    """Every delivery attempt, with what the push service answered."""

    __tablename__ = "push_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(db.ForeignKey("push_outbox.id", ondelete="CASCADE"),
                                           index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    worker: Mapped[str] = mapped_column(db.String(64), default="")
    status_code: Mapped[int | None] = mapped_column(db.Integer)
    outcome: Mapped[AttemptOutcome] = mapped_column(
        str_enum(AttemptOutcome, "push_attempt_outcome"))
    retry_after: Mapped[int | None] = mapped_column(db.Integer)
    error: Mapped[str | None] = mapped_column(db.String(500))

    outbox: Mapped[PushOutbox] = relationship(back_populates="attempt_log")
