"""Check-in timers: a crew member going into a risky call says when to worry.

The row is the timer that counts: the push worker's tick reads it (not the
phone, which may be smashed or dead), so it survives restarts of any process.
"""

import uuid
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime
from api.extensions import db
from api.incidents.models import Incident
from api.orgs.models import Person, Station


class CheckinTimer(db.Model):
    __tablename__ = "checkin_timers"
    __table_args__ = (
        # The tick's three checks all look at open timers by their end.
        db.Index("ix_checkin_timers_open", "closed_at", "ends_at"),
        db.CheckConstraint("minutes BETWEEN 1 AND 240", name="minutes_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(db.Uuid, primary_key=True)  # made by the phone
    person_id: Mapped[int] = mapped_column(
        db.ForeignKey("people.id", ondelete="RESTRICT"), index=True)
    station_id: Mapped[int] = mapped_column(
        db.ForeignKey("stations.id", ondelete="RESTRICT"), index=True)
    address: Mapped[str] = mapped_column(db.String(200))
    address_key: Mapped[str] = mapped_column(db.String(200))
    # Where the phone was when the timer started (the last known location).
    lat: Mapped[float | None] = mapped_column(db.Float)
    lon: Mapped[float | None] = mapped_column(db.Float)
    accuracy_m: Mapped[float | None] = mapped_column(db.Float)
    minutes: Mapped[int] = mapped_column(db.Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Overdue: the station's managers were told at overdue_at; the police post
    # (through an incident, routed as any other) at police_at.
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    police_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship()
    station: Mapped[Station] = relationship()
    incident: Mapped[Incident | None] = relationship()

    @property
    def state(self) -> str:
        if self.closed_at is not None:
            return "safe"
        if self.police_at is not None:
            return "police"
        if self.overdue_at is not None:
            return "overdue"
        return "running"
