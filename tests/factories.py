"""Test data made through the same models the app uses."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from api.extensions import db
from api.incidents.models import Incident, IncidentEvent, IncidentStatus
from api.orgs.models import Language, Person, PolicePost, Position, Role, Station
from api.police.models import PoliceAlert

_seq = itertools.count(1)


def make_post(code=None, region="75", lat=43.25, lon=76.92, name=None) -> PolicePost:
    n = next(_seq)
    post = PolicePost(code=code or f"POST-{n}", hospital_name=name or f"Hospital {n}",
                      region_code=region, lat=lat, lon=lon)
    db.session.add(post)
    db.session.commit()
    return post


def make_station(code=None, region="75", default_post=None, lat=43.26,
                 lon=76.93) -> Station:
    n = next(_seq)
    station = Station(code=code or f"ST-{n}", name=f"Substation {n}", region_code=region,
                      default_post=default_post, lat=lat, lon=lon)
    db.session.add(station)
    db.session.commit()
    return station


def make_person(role="crew", *, station=None, post=None, stations=(), position=None,
                language="en", name=None) -> Person:
    role = Role(role)
    n = next(_seq)
    person = Person(display_name=name or f"{role.value.title()} {n}", role=role,
                    language=Language(language))
    if role == Role.CREW:
        person.position = Position(position or "feldsher")
        person.station = station or make_station()
    elif role == Role.MANAGER:
        person.managed_stations = list(stations) or [station or make_station()]
    elif role == Role.POLICE:
        person.post = post or make_post()
    db.session.add(person)
    db.session.commit()
    return person


# Incidents written straight to the database (the review tests' world).
T0 = datetime(2026, 4, 10, 6, 0, tzinfo=UTC)  # 11:00 in Almaty
_incident_n = itertools.count(1)


def make_incident(reporter, occurred_at=T0, *, delay_s=60, kind="threat", part=1,
                  status=IncidentStatus.LOGGED, post=None, police_needed=False, note="",
                  victim_role=None, lat=None, lon=None, ack_after_s=None, erdr=None):
    """An incident written straight to the database, every time under the test's control."""
    n = next(_incident_n)
    received = occurred_at + timedelta(seconds=delay_s)
    acknowledged = received + timedelta(seconds=ack_after_s) if ack_after_s is not None else None
    incident = Incident(
        id=uuid.uuid4(), case_number=f"QG-75-2026-{n:06d}", reporter_id=reporter.id,
        station_id=reporter.station_id, reporter_position=reporter.position,
        tapped_at=occurred_at, tapped_offset_min=300, received_at=received, clock_skew_s=0.0,
        logged_at=occurred_at, occurred_at=occurred_at, updated_at=received,
        device_id="phone-1", revision=1,
        kind=kind, aggravating=[], victim_role=victim_role or reporter.position.value,
        on_duty=True, police_needed=police_needed, lat=lat, lon=lon, note=note,
        status=status, post_id=post.id if post else None, erdr_number=erdr,
        classification={"status": "offence" if part else "not_in_force", "part": part},
        legal_status="offence" if part else "not_in_force", legal_part=part,
        acknowledged_at=acknowledged)
    db.session.add(incident)
    db.session.flush()
    db.session.add(IncidentEvent(incident_id=incident.id, actor_id=reporter.id, kind="created",
                                 revision=1, changes={"kind": [None, kind]}, at=received))
    if post is not None:
        db.session.add(PoliceAlert(
            incident_id=incident.id, post_id=post.id, reason="station_default",
            routed_at=received, region_code="75", acknowledged_at=acknowledged))
    db.session.commit()
    return incident
