"""Raising, renewing and withdrawing hazard flags, and who may see which.

- A station manager raises a flag from an incident of one of their stations;
  renews or withdraws flags of their stations. Anything else is a 404, never
  a hint that it exists.
- A crew member's phone and a police post get the live flags of their own
  region (crew: their station's region; police: their post's region), and may
  look up one address at a time. Nobody can list every flag.
- Every change is written to the access log in the same transaction as the
  change, and the crew member who reported the incident is told (a push, in
  their language) that a flag was raised.
"""

import calendar
import uuid
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from api.access_log import AccessLog
from api.auth import ratelimit
from api.db import utcnow
from api.errors import Problem
from api.extensions import db
from api.hazards.address import address_key
from api.hazards.models import HazardFlag, HazardReason
from api.incidents.models import Incident
from api.orgs.models import Person, Role
from api.push import messages
from api.push.service import notify_incident


def add_months(instant: datetime, months: int) -> datetime:
    """The same day `months` later (the 31st becomes the month's last day)."""
    month0 = instant.month - 1 + months
    year, month = instant.year + month0 // 12, month0 % 12 + 1
    day = min(instant.day, calendar.monthrange(year, month)[1])
    return instant.replace(year=year, month=month, day=day)


def _not_found(what: str = "incident") -> Problem:
    return Problem(404, "Not Found", f"No such {what} at your stations.", type_="not-found")


def _log(person: Person, flag: HazardFlag, action: str, now: datetime) -> None:
    db.session.add(AccessLog(person_id=person.id, role=person.role.value,
                             incident_id=flag.incident_id, via=f"hazard.{action}:{flag.id}",
                             at=now))


def incident_of_manager(manager: Person, incident_id: uuid.UUID) -> Incident:
    stations = manager.station_ids_in_scope()
    incident = db.session.get(Incident, incident_id)
    if incident is None or incident.station_id not in stations:
        raise _not_found()
    return incident


def flag_of_manager(manager: Person, flag_id: uuid.UUID) -> HazardFlag:
    flag = db.session.get(HazardFlag, flag_id)
    if flag is None or flag.station_id not in manager.station_ids_in_scope():
        raise _not_found("flag")
    return flag


def raise_flag(manager: Person, data: dict) -> HazardFlag:
    """A new flag from one of the manager's incidents; logged, the reporter told; committed."""
    incident = incident_of_manager(manager, data["incident_id"])
    now = utcnow()
    flag = HazardFlag(id=uuid.uuid4(), incident_id=incident.id, station_id=incident.station_id,
                      region_code=incident.station.region_code, address=data["address"].strip(),
                      address_key=address_key(data["address"]), lat=data["lat"],
                      lon=data["lon"], radius_m=data["radius_m"],
                      reason=HazardReason(data["reason"]),
                      raised_by_id=manager.id, raised_at=now,
                      expires_at=add_months(now, data["months"]))
    db.session.add(flag)
    _log(manager, flag, "raise", now)
    reporter = incident.reporter
    title, body = messages.hazard_raised(reporter, incident, flag)
    notify_incident(reporter, "hazard_raised", incident, title, body)
    db.session.commit()
    return flag


def renew(manager: Person, flag_id: uuid.UUID, months: int) -> HazardFlag:
    """Expires `months` from now; a withdrawn flag cannot be renewed (raise a new one)."""
    flag = flag_of_manager(manager, flag_id)
    if flag.withdrawn_at is not None:
        raise Problem(409, "Flag withdrawn", "A withdrawn flag cannot be renewed; raise a new "
                      "one from the incident.", type_="hazard-withdrawn")
    now = utcnow()
    flag.renewed_at = now
    flag.expires_at = add_months(now, months)
    _log(manager, flag, "renew", now)
    db.session.commit()
    return flag


def withdraw(manager: Person, flag_id: uuid.UUID) -> HazardFlag:
    """Phones drop it at their next download; withdrawing twice changes nothing."""
    flag = flag_of_manager(manager, flag_id)
    if flag.withdrawn_at is None:
        now = utcnow()
        flag.withdrawn_at = now
        _log(manager, flag, "withdraw", now)
        db.session.commit()
    return flag


def flags_of_incident(manager: Person, incident_id: uuid.UUID) -> list[HazardFlag]:
    incident = incident_of_manager(manager, incident_id)
    return list(db.session.scalars(select(HazardFlag).where(
        HazardFlag.incident_id == incident.id).order_by(HazardFlag.raised_at.desc())))


def region_of(person: Person) -> str:
    """The region whose flags `person` may see: their station's or their post's."""
    if person.role == Role.CREW and person.station is not None:
        return person.station.region_code
    if person.role == Role.POLICE and person.post is not None:
        return person.post.region_code
    raise Problem(403, "Forbidden", "Your role does not allow this.", type_="forbidden")


def live_flags(region_code: str, now: datetime | None = None) -> list[HazardFlag]:
    now = now or utcnow()
    return list(db.session.scalars(
        select(HazardFlag).where(HazardFlag.region_code == region_code,
                                 HazardFlag.expires_at > now,
                                 HazardFlag.withdrawn_at.is_(None))
        .order_by(HazardFlag.expires_at, HazardFlag.id)))


def lookup(person: Person, session_id: int, text: str) -> tuple[str, list[HazardFlag]]:
    """One address: its building key and the live flags of the caller's region on it.

    Rate-limited per session (HAZARD_LOOKUP_LIMIT: [count, seconds]), so the
    look-up cannot be walked street by street to rebuild the list.
    """
    region = region_of(person)
    limit, seconds = current_app.config["HAZARD_LOOKUP_LIMIT"]
    ratelimit.hit(f"hazard-lookup:{session_id}", limit, seconds)
    key = address_key(text)
    if not key:
        return key, []
    return key, [f for f in live_flags(region) if f.address_key == key]


def region_code_iso(region_code: str) -> str:
    return f"KZ-{region_code}"
