"""A manager's note on an incident (the access log is api.access_log).

The note's history is in the incident's events (kind "manager_note"); this
row only holds the current text, so the list and the detail read it in one
lookup.
"""

import uuid
from datetime import datetime

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
