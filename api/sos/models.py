"""The live state of an SOS alarm and each person's stand-down/duress PINs."""

import enum
import uuid
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime, str_enum
from api.extensions import db
from api.incidents.models import Incident
from api.orgs.models import Person


class AlarmState(enum.StrEnum):
    OPEN = "open"
    STOOD_DOWN = "stood_down"   # the person's own PIN: over


class SosAlarm(db.Model):
    """One per SOS incident, made in the sync's transaction (api.sos.service hook).

    A duress stand-down leaves the state OPEN and sets duress_at: the phone
    shows "cancelled", the police see the alarm open and marked duress.
    """

    __tablename__ = "sos_alarms"
    __table_args__ = (
        db.CheckConstraint("last_lat IS NULL OR last_lat BETWEEN -90 AND 90",
                           name="last_lat_range"),
        db.CheckConstraint("last_lon IS NULL OR last_lon BETWEEN -180 AND 180",
                           name="last_lon_range"),
        db.CheckConstraint("eta_minutes IS NULL OR eta_minutes BETWEEN 1 AND 240",
                           name="eta_range"),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(
        db.ForeignKey("incidents.id", ondelete="RESTRICT"), primary_key=True)
    person_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="RESTRICT"),
                                           index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[AlarmState] = mapped_column(str_enum(AlarmState, "sos_alarm_state"))
    stood_down_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duress_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The newest fix (each one is also an "sos_location" event in the chain).
    last_lat: Mapped[float | None] = mapped_column(db.Float)
    last_lon: Mapped[float | None] = mapped_column(db.Float)
    last_accuracy_m: Mapped[float | None] = mapped_column(db.Float)
    last_fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fixes: Mapped[int] = mapped_column(db.Integer, default=0)
    on_the_way_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_the_way_by_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("people.id", ondelete="RESTRICT"))
    eta_minutes: Mapped[int | None] = mapped_column(db.SmallInteger)
    # Wrong PINs given to stand this alarm down (brute force: see service.MAX_WRONG).
    wrong_pins: Mapped[int] = mapped_column(db.Integer, default=0)

    incident: Mapped[Incident] = relationship()
    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    on_the_way_by: Mapped[Person | None] = relationship(foreign_keys=[on_the_way_by_id])


class SosPin(db.Model):
    """A person's two PINs, never in clear.

    The phone derives a key from each PIN (PBKDF2-SHA256 with `salt`, see
    pwa/js/sos_pin.js); the server keeps a salted slow hash of each key
    (werkzeug's scrypt) to tell them apart, and `verifiers`, SHA-256 of each key
    in sorted order, which any of the person's phones uses to check a PIN
    offline without learning which of the two it is.
    """

    __tablename__ = "sos_pins"

    person_id: Mapped[int] = mapped_column(db.ForeignKey("people.id", ondelete="CASCADE"),
                                           primary_key=True)
    salt: Mapped[str] = mapped_column(db.String(64))
    pin_hash: Mapped[str] = mapped_column(db.String(255))
    duress_hash: Mapped[str] = mapped_column(db.String(255))
    verifiers: Mapped[list] = mapped_column(db.JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Wrong PINs in a row across alarms, and until when stand-downs are refused.
    failures: Mapped[int] = mapped_column(db.Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
