"""The access log: who opened which incident's details, and when.

Every domain that shows an incident's details to a manager or a police officer
writes here; administrators read it (api.review), never the incidents' contents.
Callers pass what they know (who, which incident, through which endpoint): this
module reads no request.
"""

import uuid
from datetime import datetime

from sqlalchemy import event, select
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from api.db import UTCDateTime, utcnow
from api.extensions import db

# Roles whose views of an incident's details are written to the access log
# (api.orgs.models.Role values; a StrEnum member equals its value).
LOGGED_ROLES = frozenset({"manager", "police"})


class AccessLog(db.Model):
    """One view of an incident's details by a manager or a police officer (or of an
    evidence file, by anyone)."""

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

    person: Mapped["Person"] = relationship("Person")  # noqa: F821 (api.orgs.models)


@event.listens_for(AccessLog, "before_update")
@event.listens_for(AccessLog, "before_delete")
def _log_is_append_only(mapper, connection, target):
    raise RuntimeError("the access log is append-only")


def log_access(person, incident, via: str, *, any_role: bool = False) -> None:
    """Record that `person` viewed `incident`'s details (managers and police only), and commit.

    Call it after the incident was found in the person's scope, in the view
    that returns the details; `via` names that view (its endpoint). Evidence
    files are logged whoever opens them (`any_role`), the crew member who made
    them included: a photo that left the server is worth knowing about.
    """
    if person is None or incident is None:
        return
    if not any_role and person.role not in LOGGED_ROLES:
        return
    db.session.add(AccessLog(person_id=person.id, role=person.role.value,
                             incident_id=incident.id, via=via[:64], at=utcnow()))
    db.session.commit()


def access_log(*, person_id: int | None = None, incident_id: uuid.UUID | None = None,
               since: datetime | None = None, before: datetime | None = None,
               cursor: int | None = None, limit: int = 100):
    """Newest first, `since` <= at < `before`; (entries, next cursor)."""
    query = select(AccessLog).options(selectinload(AccessLog.person))
    if person_id is not None:
        query = query.where(AccessLog.person_id == person_id)
    if incident_id is not None:
        query = query.where(AccessLog.incident_id == incident_id)
    if since is not None:
        query = query.where(AccessLog.at >= since)
    if before is not None:
        query = query.where(AccessLog.at < before)
    if cursor is not None:
        query = query.where(AccessLog.id < cursor)
    rows = list(db.session.scalars(query.order_by(AccessLog.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
