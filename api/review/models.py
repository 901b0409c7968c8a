"""A manager's note on an incident, and the log of who viewed which incident.

The note's history is in the incident's events (kind "manager_note"); this
row only holds the current text, so the list and the detail read it in one
lookup. The access log is append-only and read by administrators, who see
who opened which incident and when, never the incident's contents.
"""

import uuid
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime, utcnow
from api.extensions import db
from api.orgs.models import Person


class ManagerNote(db.Model):
    __tablename__ = "manager_notes"

    incident_id: Mapped[uuid.UUID] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    note: Mapped[str] = mapped_column(db.Text)
    author_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="RESTRICT"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[Person] = relationship()


class AccessLog(db.Model):
    """One view of an incident's details by a manager or a police officer."""

    __tablename__ = "access_log"
    __table_args__ = (
        db.Index("ix_access_log_person_id_id", "person_id", "id"),
        db.Index("ix_access_log_incident_id_id", "incident_id", "id"),
    )

    id: Mapped[int] = mapped_column(db.BigInteger().with_variant(db.Integer, "sqlite"),
                                    primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    person_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="RESTRICT"))
    role: Mapped[str] = mapped_column(db.String(16))
    # No foreign key: the log outlives anything, and must never block a write.
    incident_id: Mapped[uuid.UUID] = mapped_column(db.Uuid)
    via: Mapped[str] = mapped_column(db.String(64))

    person: Mapped[Person] = relationship()


@event.listens_for(AccessLog, "before_update")
@event.listens_for(AccessLog, "before_delete")
def _log_is_append_only(mapper, connection, target):
    raise RuntimeError("the access log is append-only")
