"""Where each incident was routed, and how the police alert went.

The incident itself carries post_id and status (api.incidents); this row
keeps what only the alert needs: why that post, when it was alerted, who
acknowledged and when, and whether it escalated, so the escalation check is
one indexed query.
"""

import uuid
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime
from api.extensions import db
from api.incidents.models import Incident
from api.orgs.models import Person, PolicePost


class PoliceAlert(db.Model):
    __tablename__ = "police_alerts"
    __table_args__ = (
        # The worker's escalation check: unacknowledged, not yet escalated, oldest first.
        db.Index("ix_police_alerts_open", "acknowledged_at", "escalated_at", "routed_at"),
        # The escalation ladder's check (api.police.ladder): the next step due, soonest first.
        db.Index("ix_police_alerts_next_step", "next_step_at"),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    # The post first chosen; None when no post could be chosen.
    post_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("police_posts.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str] = mapped_column(db.String(32))
    distance_km: Mapped[float | None] = mapped_column(db.Float)
    routed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("people.id", ondelete="SET NULL"))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the first step
    # The escalation ladder (api.police.ladder): steps taken so far, and when the
    # worker looks at this alert next (None: acknowledged, or no step left).
    escalation_level: Mapped[int] = mapped_column(db.Integer, default=0, server_default="0")
    next_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The region the alert escalates within (the crew's station's region).
    region_code: Mapped[str] = mapped_column(db.ForeignKey("regions.code"), index=True)

    incident: Mapped[Incident] = relationship()
    post: Mapped[PolicePost | None] = relationship()
    acknowledged_by: Mapped[Person | None] = relationship()
