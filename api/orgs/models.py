"""Regions, stations, police posts and people."""

import enum
import secrets
from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import UTCDateTime, str_enum, utcnow
from api.extensions import db


class Role(enum.StrEnum):
    CREW = "crew"
    MANAGER = "manager"
    POLICE = "police"
    ADMIN = "admin"


class Position(enum.StrEnum):
    """A crew member's job; the article protects each of them."""

    DOCTOR = "doctor"
    FELDSHER = "feldsher"
    NURSE = "nurse"
    DRIVER = "driver"


class Language(enum.StrEnum):
    RU = "ru"
    KK = "kk"
    EN = "en"


class Region(db.Model):
    """An ISO 3166-2:KZ unit: 17 regions and 3 cities of national status."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(db.String(2), primary_key=True)  # "75" for KZ-75
    iso_code: Mapped[str] = mapped_column(db.String(5), unique=True)   # "KZ-75"
    name_ru: Mapped[str] = mapped_column(db.String(80))
    name_kk: Mapped[str] = mapped_column(db.String(80))
    name_en: Mapped[str] = mapped_column(db.String(80))
    is_city: Mapped[bool] = mapped_column(db.Boolean, default=False)

    def name(self, lang: str = "en") -> str:
        return getattr(self, f"name_{lang}", None) or self.name_en


station_managers = db.Table(
    "station_managers",
    db.Column("station_id", db.ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True),
    db.Column("person_id", db.ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
)


class Station(db.Model):
    """An ambulance (sub)station; crews belong to one."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(db.String(40), unique=True)  # natural key for imports
    name: Mapped[str] = mapped_column(db.String(200))
    region_code: Mapped[str] = mapped_column(db.ForeignKey("regions.code"), index=True)
    address: Mapped[str | None] = mapped_column(db.String(300))
    lat: Mapped[float | None] = mapped_column(db.Float)
    lon: Mapped[float | None] = mapped_column(db.Float)
    default_post_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("police_posts.id", ondelete="SET NULL"), index=True)

    region: Mapped[Region] = relationship()
    default_post: Mapped["PolicePost | None"] = relationship(back_populates="default_for")
    managers: Mapped[list["Person"]] = relationship(
        secondary=station_managers, back_populates="managed_stations")


class PolicePost(db.Model):
    """A round-the-clock police post at a hospital."""

    __tablename__ = "police_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(db.String(40), unique=True)
    hospital_name: Mapped[str] = mapped_column(db.String(200))
    region_code: Mapped[str] = mapped_column(db.ForeignKey("regions.code"), index=True)
    address: Mapped[str | None] = mapped_column(db.String(300))
    lat: Mapped[float | None] = mapped_column(db.Float)
    lon: Mapped[float | None] = mapped_column(db.Float)

    region: Mapped[Region] = relationship()
    default_for: Mapped[list[Station]] = relationship(back_populates="default_post")


class Person(db.Model):
    """Anyone who signs in: crew, station manager, police officer or administrator."""

    __tablename__ = "people"
    __table_args__ = (
        db.CheckConstraint("(role = 'crew') = (position IS NOT NULL)", name="crew_has_position"),
        db.CheckConstraint("role != 'crew' OR station_id IS NOT NULL", name="crew_has_station"),
        db.CheckConstraint("role != 'police' OR post_id IS NOT NULL", name="police_has_post"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(db.String(120))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    position: Mapped[Position | None] = mapped_column(str_enum(Position, "position"))
    station_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("stations.id", ondelete="RESTRICT"), index=True)
    post_id: Mapped[int | None] = mapped_column(
        db.ForeignKey("police_posts.id", ondelete="RESTRICT"), index=True)
    language: Mapped[Language] = mapped_column(str_enum(Language, "language"), default=Language.RU)
    active: Mapped[bool] = mapped_column(db.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The WebAuthn user handle: random, never the database id (it is shown to
    # authenticators and must not reveal anything about the person).
    webauthn_user_handle: Mapped[bytes] = mapped_column(
        db.LargeBinary(64), unique=True, default=lambda: secrets.token_bytes(32))

    station: Mapped[Station | None] = relationship(foreign_keys=[station_id])
    post: Mapped[PolicePost | None] = relationship()
    managed_stations: Mapped[list[Station]] = relationship(
        secondary=station_managers, back_populates="managers")

    def station_ids_in_scope(self) -> set[int]:
        """The stations whose incidents this person may see as crew or manager."""
        if self.role == Role.MANAGER:
            return {s.id for s in self.managed_stations}
        if self.role == Role.CREW and self.station_id:
            return {self.station_id}
        return set()

