"""Incidents, their append-only history, case-number counters and sync devices.

An incident's identity is the UUID the phone made when the crew member tapped,
so a retried or replayed sync can never create it twice (primary key).
"""

import enum
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime, str_enum, utcnow
from api.extensions import db
from api.orgs.models import Person, PolicePost, Position, Station


class IncidentStatus(enum.StrEnum):
    LOGGED = "logged"
    ROUTED = "routed"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    CLOSED = "closed"


class LocationSource(enum.StrEnum):
    GPS = "gps"
    NETWORK = "network"
    MANUAL = "manual"


class DeviceTimeFlag(enum.StrEnum):
    """Why the tap's device time was not trusted as the time of the incident."""

    FUTURE = "future"  # later than the server's receipt
    PAST = "past"      # implausibly long before the receipt


# Read by the managers' review filters and figures (api.review.service).
REVIEW_INCLUDE = ["kind", "legal_part", "status", "police_needed", "reporter_id", "post_id",
                  "received_at", "victim_role", "acknowledged_at", "logged_at"]
# Searched by the review's q (lower(column) LIKE '%text%'): trigram GIN indexes,
# PostgreSQL only (migration 0005 creates them there and nowhere else).
SEARCHED = ("note", "case_number", "erdr_number")


class Incident(db.Model):
    __tablename__ = "incidents"
    __table_args__ = (
        # Keyset pagination, newest first, within each reader's scope.
        db.Index("ix_incidents_reporter_occurred", "reporter_id", "occurred_at", "id"),
        # The managers' review list merges one ordered run of this index per
        # station. On PostgreSQL it also carries the columns the review filters
        # and figures read, so totals and figures are index-only scans.
        db.Index("ix_incidents_station_occurred", "station_id", "occurred_at", "id",
                 postgresql_include=REVIEW_INCLUDE),
        # The review list sorted by receipt, per station likewise.
        db.Index("ix_incidents_station_received", "station_id", "received_at", "id"),
        # The managers' working filters (status, police needed) per station, in
        # time order: their totals and merged pages are short range scans
        # instead of a filter over every incident in scope (bench/review_queries.py).
        db.Index("ix_incidents_station_status", "station_id", "status", "police_needed",
                 "occurred_at", "id"),
        db.Index("ix_incidents_post_occurred", "post_id", "occurred_at", "id"),
        db.CheckConstraint("revision >= 1", name="revision_positive"),
        db.CheckConstraint("(lat IS NULL) = (lon IS NULL)", name="lat_lon_together"),
    )

    id: Mapped[uuid.UUID] = mapped_column(db.Uuid, primary_key=True)  # made by the phone
    # Set in the same transaction as the insert (after the row is known to be
    # new, so a lost race never burns a number); never changed afterwards.
    case_number: Mapped[str | None] = mapped_column(db.String(32), unique=True)
    reporter_id: Mapped[int] = mapped_column(
        db.ForeignKey("people.id", ondelete="RESTRICT"))
    station_id: Mapped[int] = mapped_column(
        db.ForeignKey("stations.id", ondelete="RESTRICT"))
    reporter_position: Mapped[Position] = mapped_column(str_enum(Position, "position"))

    # Time: the tap on the device (with its UTC offset), the server's first
    # receipt, the device clock's skew at that sync, the instant the server
    # believes the tap was made (logged_at: the tap time unless the device
    # clock was flagged; never changed), and when the incident happened
    # (occurred_at: logged_at until the crew states another time; the legal
    # date, the MCI year and the review's date filters follow it). A stated
    # time too long before the tap waits in occurred_at_pending for a
    # manager of the station to confirm it (api.review).
    tapped_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tapped_offset_min: Mapped[int] = mapped_column(db.SmallInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    clock_skew_s: Mapped[float] = mapped_column(db.Float)
    device_time_flag: Mapped[DeviceTimeFlag | None] = mapped_column(
        str_enum(DeviceTimeFlag, "device_time_flag"))
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    occurred_at_pending: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    device_id: Mapped[str] = mapped_column(db.String(64))

    # What the crew reports; a newer revision may change these.
    revision: Mapped[int] = mapped_column(db.Integer)
    kind: Mapped[str] = mapped_column(db.String(32))
    aggravating: Mapped[list] = mapped_column(db.JSON)
    victim_role: Mapped[str] = mapped_column(db.String(32))
    on_duty: Mapped[bool] = mapped_column(db.Boolean)
    police_needed: Mapped[bool] = mapped_column(db.Boolean)
    lat: Mapped[float | None] = mapped_column(db.Float)
    lon: Mapped[float | None] = mapped_column(db.Float)
    accuracy_m: Mapped[float | None] = mapped_column(db.Float)
    location_fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    location_source: Mapped[LocationSource | None] = mapped_column(
        str_enum(LocationSource, "location_source"))
    destination_post_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("police_posts.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(db.Text)

    # Set by routing and by the police.
    status: Mapped[IncidentStatus] = mapped_column(str_enum(IncidentStatus, "incident_status"))
    # Indexed by ix_incidents_post_occurred (post_id leads it).
    post_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("police_posts.id", ondelete="SET NULL"))
    erdr_number: Mapped[str | None] = mapped_column(db.String(40))
    # When the police first acknowledged it: the alert's own time, copied here
    # so the managers' figures read it from the station index without a join.
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The provisional classification at the last revision, in the reporter's
    # language (None only when the law rules were misconfigured at the time;
    # the incident is stored regardless). Its status and part are columns too,
    # for reports.
    classification: Mapped[dict | None] = mapped_column(db.JSON)
    legal_status: Mapped[str | None] = mapped_column(db.String(16))
    legal_part: Mapped[int | None] = mapped_column(db.SmallInteger)

    reporter: Mapped[Person] = relationship(foreign_keys=[reporter_id])
    station: Mapped[Station] = relationship()
    post: Mapped[PolicePost | None] = relationship(foreign_keys=[post_id])
    events: Mapped[list["IncidentEvent"]] = relationship(
        back_populates="incident", order_by="IncidentEvent.id", viewonly=True)

    @property
    def tapped_at_local(self) -> datetime:
        """The tap time as the device wrote it, with its own UTC offset."""
        return self.tapped_at.astimezone(timezone(timedelta(minutes=self.tapped_offset_min)))

    @property
    def location(self) -> dict | None:
        if self.lat is None:
            return None
        return {"lat": self.lat, "lon": self.lon, "accuracy_m": self.accuracy_m,
                "fixed_at": self.location_fixed_at, "source": self.location_source}


for _name in SEARCHED:
    # An expression index, so alembic's autogenerate on SQLite (which cannot
    # reflect them) leaves it out of the comparison; ddl_if keeps create_all
    # from making it there.
    db.Index(f"ix_incidents_{_name}_trgm",
             db.func.lower(Incident.__table__.c[_name]).label(f"{_name}_lower"),
             postgresql_using="gin",
             postgresql_ops={f"{_name}_lower": "gin_trgm_ops"}).ddl_if(dialect="postgresql")


class IncidentEvent(db.Model):
    """One change to an incident: who, when, what (field: [before, after]).

    Append-only: the ORM refuses updates and deletes, and on PostgreSQL a
    trigger (migration 0003) refuses them in SQL too.
    """

    __tablename__ = "incident_events"
    # One hash chain per incident (api.ledger): seq counts from 1 within it.
    __table_args__ = (db.UniqueConstraint("incident_id", "seq"),)

    id: Mapped[int] = mapped_column(db.BigInteger().with_variant(db.Integer, "sqlite"),
                                    primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="RESTRICT"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # None for the system itself (e.g. automatic routing).
    actor_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("people.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(db.String(32))
    revision: Mapped[int | None] = mapped_column(db.Integer)
    changes: Mapped[dict] = mapped_column(db.JSON)
    # Tamper evidence, filled in as the event is flushed (api.ledger.service):
    # hash = sha256(prev_hash || canonical JSON of this event); prev_hash of
    # seq 1 is 64 zeros.
    seq: Mapped[int] = mapped_column(db.Integer)
    prev_hash: Mapped[str] = mapped_column(db.String(64))
    hash: Mapped[str] = mapped_column(db.String(64))

    incident: Mapped[Incident] = relationship(back_populates="events")
    actor: Mapped[Person | None] = relationship()


@event.listens_for(IncidentEvent, "before_update")
@event.listens_for(IncidentEvent, "before_delete")
def _events_are_append_only(mapper, connection, target):
    raise RuntimeError("incident events are append-only; add a new event instead")


class CaseCounter(db.Model):
    """The last case-number sequence used per region and local (Asia/Almaty) year."""

    __tablename__ = "case_counters"

    region_code: Mapped[str] = mapped_column(
        db.ForeignKey("regions.code", ondelete="RESTRICT"), primary_key=True)
    year: Mapped[int] = mapped_column(db.Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(db.Integer)


class SyncDevice(db.Model):
    """What each crew device last told the server, so managers can spot stuck ones."""

    __tablename__ = "sync_devices"

    person_id: Mapped[int] = mapped_column(
        db.ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(db.String(64), primary_key=True)
    station_id: Mapped[int] = mapped_column(
        db.ForeignKey("stations.id", ondelete="CASCADE"), index=True)
    app_version: Mapped[str | None] = mapped_column(db.String(40))
    outbox_size: Mapped[int] = mapped_column(db.Integer)
    last_sync_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    clock_skew_s: Mapped[float] = mapped_column(db.Float)
    last_batch_size: Mapped[int] = mapped_column(db.Integer)
    # Records the phone set aside because the server failed on each of them
    # alone, again and again (kept on the phone; see pwa/js/sync.js).
    set_aside: Mapped[int] = mapped_column(db.Integer, default=0, server_default="0")

    person: Mapped[Person] = relationship()
