"""A hazard flag: a building (its address key and a circle) with a reason and an expiry.

Raised by a station manager from one of their station's incidents. It holds
no free text about people: the address as the manager typed it, the point,
the radius, one reason from a short list, and dates. Rows are never deleted:
a withdrawn or expired flag simply stops being sent to phones; every change is
in the access log (api.access_log.AccessLog, via "hazard.<action>").
"""

import enum
import uuid
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime, utcnow
from api.extensions import db
from api.incidents.models import Incident
from api.orgs.models import Person


class HazardReason(enum.StrEnum):
    THREATS = "threats"
    VIOLENCE = "violence"
    WEAPON = "weapon"
    DOG = "dog"
    GROUP = "group"
    OTHER = "other"


class HazardFlag(db.Model):
    __tablename__ = "hazard_flags"
    __table_args__ = (
        # The region download and the look-up: live flags of one region.
        db.Index("ix_hazard_flags_region_expires", "region_code", "expires_at"),
        db.CheckConstraint("radius_m BETWEEN 10 AND 500", name="radius_range"),
        db.CheckConstraint("lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180",
                           name="point_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(db.Uuid, primary_key=True, default=uuid.uuid4)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="RESTRICT"), index=True)
    # Copied from the incident: the scope of the managers who may renew or withdraw.
    station_id: Mapped[int] = mapped_column(db.ForeignKey("stations.id", ondelete="RESTRICT"))
    region_code: Mapped[str] = mapped_column(db.ForeignKey("regions.code"))
    address: Mapped[str] = mapped_column(db.String(200))
    address_key: Mapped[str] = mapped_column(db.String(200))
    lat: Mapped[float] = mapped_column(db.Float)
    lon: Mapped[float] = mapped_column(db.Float)
    radius_m: Mapped[int] = mapped_column(db.Integer)
    reason: Mapped[HazardReason] = mapped_column(db.Enum(
        HazardReason, name="hazard_reason", native_enum=False, create_constraint=True,
        values_callable=lambda e: [m.value for m in e], length=16))
    raised_by_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="RESTRICT"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    renewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    incident: Mapped[Incident] = relationship()
    raised_by: Mapped[Person] = relationship()

    def live(self, now: datetime) -> bool:
        return self.withdrawn_at is None and self.expires_at > now
