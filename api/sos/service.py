"""The live side of an SOS: the alarm opened with the incident, its location
fixes, the officer's "on the way", and the stand-down (own PIN) or duress PIN.
No Flask request objects.

The alarm is opened by this module's incident hook (registered in create_app
after api.police.routing), in the sync's transaction: the police alert with
Urgency high and a short TTL is routing's, the station managers' push is ours.
Every change is an event in the incident's hash chain.

PINs are never stored in clear: the phone sends a key derived from the PIN
(PBKDF2, see SosPin); the server keeps a slow salted hash of each key.
A wrong PIN never ends an alarm, and after SOS_MAX_WRONG_PINS in a row the
person's stand-downs are refused for SOS_PIN_LOCK_SECONDS (brute force).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta

from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from api.db import utcnow
from api.errors import Problem
from api.extensions import db
from api.incidents import records as incidents
from api.incidents.models import Incident, IncidentEvent
from api.orgs.models import Person, Role
from api.police import routing
from api.police import service as police
from api.police.models import PoliceAlert
from api.push import messages
from api.push.models import OutboxStatus, PushOutbox, Urgency
from api.push.service import Notifications, notify_incident
from api.sos.models import AlarmState, SosAlarm, SosPin

NOT_FOUND = "No such SOS for you."
TRAIL = 20  # fixes the police screen shows, newest last
# A fix stamped later than the server's clock by more than this is refused.
FUTURE_TOLERANCE = timedelta(minutes=5)


def _not_found() -> Problem:
    return Problem(404, "Not Found", NOT_FOUND, type_="not-found")


# ---------------------------------------------------------------------------
# Opening: an api.incidents hook (after api.police.routing)


def on_incidents_synced(batch: list[Incident]) -> None:
    """Open an alarm for each new SOS and tell the station's managers at once."""
    sos = [incident for incident in batch if incident.sos]
    if not sos:
        return
    outbox = Notifications()
    for incident in sos:
        _open(incident, outbox)
    outbox.flush()


def on_incident_event(incident: Incident, event) -> None:
    """An incident the crew's SMS created becomes an SOS when the phone's own sync
    says so (api.incidents.sync: "sos_raised"): its alarm opens then."""
    if event.kind == "sos_raised" and db.session.get(SosAlarm, incident.id) is None:
        outbox = Notifications()
        _open(incident, outbox)
        outbox.flush()


def _open(incident: Incident, outbox: Notifications) -> None:
    """The alarm row, and the station managers' push (the post's is routing's)."""
    ttl = current_app.config["PUSH_TTL_SOS"]
    alarm = SosAlarm(incident_id=incident.id, person_id=incident.reporter_id,
                     opened_at=incident.received_at, state=AlarmState.OPEN, fixes=0,
                     wrong_pins=0)
    if incident.lat is not None:
        alarm.last_lat, alarm.last_lon = incident.lat, incident.lon
        alarm.last_accuracy_m = incident.accuracy_m
        alarm.last_fixed_at = incident.location_fixed_at
        alarm.last_received_at = incident.received_at
        alarm.fixes = 1
    db.session.add(alarm)
    if incident.post_id is None:
        return  # routing has alerted the managers already (no post)
    for manager in routing.active_managers(incident):
        lang = manager.language.value
        body = messages.text("sos_body", lang, person=incident.reporter.display_name,
                             station=incident.station.name)
        outbox.add(manager, "sos.alarm", incident,
                   messages.text("sos_title", lang, case=incident.case_number), body,
                   urgency=Urgency.HIGH, alert=True, ttl=ttl)


# ---------------------------------------------------------------------------
# Who may see which alarm: the incident's own scope rules


def _find(person: Person, incident_id: uuid.UUID, *, lock: bool = False
          ) -> tuple[Incident, SosAlarm]:
    """The SOS incident and its alarm if `person` may see it; else 404 (alike for
    unknown, not an SOS and out of scope). Crew: their own; police: as the post's
    screens (api.police.service); managers: their stations'."""
    if person.role == Role.POLICE:
        if person.post_id is None:
            raise _not_found()
        try:
            incident = police.get_for(person, incident_id, lock=lock)
        except Problem as err:
            raise _not_found() from err
    else:
        query = select(Incident).where(Incident.id == incident_id,
                                       incidents.visible_to(person))
        if lock:
            query = query.with_for_update()
        incident = db.session.scalar(query)
    if incident is None or not incident.sos:
        raise _not_found()
    query = select(SosAlarm).where(SosAlarm.incident_id == incident.id)
    if lock:
        query = query.with_for_update()
    alarm = db.session.scalar(query)
    if alarm is None:
        raise _not_found()
    return incident, alarm


def _alert(incident: Incident) -> PoliceAlert | None:
    return db.session.get(PoliceAlert, incident.id)


def _delivered_at(incident: Incident, post_id: int | None) -> datetime | None:
    """When the push service first took the alert for one of the post's officers."""
    if post_id is None:
        return None
    return db.session.scalar(
        select(func.min(PushOutbox.sent_at))
        .join(Person, Person.id == PushOutbox.person_id)
        .where(PushOutbox.incident_id == incident.id, PushOutbox.kind == "police.alert",
               PushOutbox.status == OutboxStatus.SENT, Person.post_id == post_id))


def _fix(alarm: SosAlarm) -> dict | None:
    if alarm.last_lat is None:
        return None
    return {"lat": alarm.last_lat, "lon": alarm.last_lon, "accuracy_m": alarm.last_accuracy_m,
            "fixed_at": alarm.last_fixed_at, "received_at": alarm.last_received_at}


def _on_the_way(alarm: SosAlarm) -> dict | None:
    if alarm.on_the_way_at is None:
        return None
    officer = alarm.on_the_way_by
    return {"at": alarm.on_the_way_at, "eta_minutes": alarm.eta_minutes,
            "officer": officer.display_name if officer else None,
            "post": officer.post.hospital_name if officer and officer.post else None}


def crew_view(incident: Incident, alarm: SosAlarm) -> dict:
    """What the crew member's phone shows: each step, and "cancelled" after either PIN
    (a duress stand-down is never told apart here)."""
    alert = _alert(incident)
    taken = None
    if alert is not None and alert.acknowledged_at is not None:
        officer = alert.acknowledged_by
        taken = {"at": alert.acknowledged_at,
                 "officer": officer.display_name if officer else None,
                 "post": officer.post.hospital_name if officer and officer.post else None}
    cancelled = alarm.state == AlarmState.STOOD_DOWN or alarm.duress_at is not None
    post = incident.post
    return {"id": incident.id, "case_number": incident.case_number,
            "status": "cancelled" if cancelled else "open",
            "received_at": incident.received_at,
            "post": post.hospital_name if post else None,
            "delivered_at": _delivered_at(incident, incident.post_id),
            "taken": taken, "on_the_way": _on_the_way(alarm)}


def trail(incident: Incident) -> list[dict]:
    """The last TRAIL fixes, oldest first (the "sos_location" events)."""
    rows = db.session.scalars(
        select(IncidentEvent).where(IncidentEvent.incident_id == incident.id,
                                    IncidentEvent.kind == "sos_location")
        .order_by(IncidentEvent.id.desc()).limit(TRAIL)).all()
    return [{**(event.changes.get("location") or [None, {}])[1], "received_at": event.at}
            for event in reversed(rows)]


def police_view(incident: Incident, alarm: SosAlarm) -> dict:
    """What the police and managers see: the state, duress, the newest fix and the trail."""
    return {"id": incident.id, "case_number": incident.case_number,
            "state": alarm.state, "open": alarm.state == AlarmState.OPEN,
            "duress": alarm.duress_at is not None, "duress_at": alarm.duress_at,
            "opened_at": alarm.opened_at, "stood_down_at": alarm.stood_down_at,
            "fix": _fix(alarm), "fixes": alarm.fixes, "trail": trail(incident),
            "on_the_way": _on_the_way(alarm), "person": incident.reporter.display_name,
            "station": incident.station.name}


def view_for(person: Person, incident_id: uuid.UUID) -> tuple[Incident, dict]:
    """(incident, the police/managers' view) if `person` may see it."""
    incident, alarm = _find(person, incident_id)
    return incident, police_view(incident, alarm)


def crew_snapshot(person: Person, incident_id: uuid.UUID) -> dict:
    """The crew view, read fresh (the live stream calls this again and again)."""
    incident, alarm = _find(person, incident_id)
    return crew_view(incident, alarm)


# ---------------------------------------------------------------------------
# Live location


def add_fix(person: Person, incident_id: uuid.UUID, fix: dict) -> dict:
    """Store a fix while the alarm is open (newest by fixed_at becomes the alarm's);
    {"track": False} once it is over (nothing stored), so the phone stops."""
    incident, alarm = _find(person, incident_id, lock=True)
    now = utcnow()
    if fix["fixed_at"] > now + FUTURE_TOLERANCE:
        raise ValidationError({"fixed_at": ["Later than the server's clock."]})
    if alarm.state != AlarmState.OPEN:
        db.session.rollback()
        return {"track": False}
    location = {"lat": fix["lat"], "lon": fix["lon"], "accuracy_m": fix["accuracy_m"],
                "fixed_at": fix["fixed_at"]}
    if alarm.last_fixed_at is None or fix["fixed_at"] >= alarm.last_fixed_at:
        alarm.last_lat, alarm.last_lon = fix["lat"], fix["lon"]
        alarm.last_accuracy_m, alarm.last_fixed_at = fix["accuracy_m"], fix["fixed_at"]
        alarm.last_received_at = now
    alarm.fixes += 1
    incidents.append_event(incident, person, "sos_location", {"location": (None, location)},
                           at=now)
    db.session.commit()
    return {"track": True}


# ---------------------------------------------------------------------------
# The police: on the way


def on_the_way(officer: Person, incident_id: uuid.UUID, eta_minutes: int | None) -> dict:
    """The officer sets off (acknowledging the alert if nobody has); the crew sees it."""
    incident, alarm = _find(officer, incident_id, lock=True)
    if alarm.state != AlarmState.OPEN:
        raise Problem(409, "SOS over", "The crew member has stood this SOS down.",
                      type_="sos-over")
    police.acknowledge_in(incident, officer)
    now = utcnow()
    changes = {"on_the_way_by": (alarm.on_the_way_by_id, officer.id),
               "eta_minutes": (alarm.eta_minutes, eta_minutes)}
    alarm.on_the_way_at, alarm.on_the_way_by, alarm.eta_minutes = now, officer, eta_minutes
    incidents.append_event(incident, officer, "sos_on_the_way", changes, at=now)
    reporter = incident.reporter
    lang = reporter.language.value
    post = officer.post.hospital_name if officer.post else ""
    body = (messages.text("sos_on_the_way_eta", lang, officer=officer.display_name, post=post,
                          eta=eta_minutes) if eta_minutes
            else messages.text("sos_on_the_way_body", lang, officer=officer.display_name,
                               post=post))
    notify_incident(reporter, "sos.on_the_way", incident,
                    messages.text("sos_on_the_way_title", lang, case=incident.case_number),
                    body, urgency=Urgency.HIGH, ttl=current_app.config["PUSH_TTL_SOS"])
    db.session.commit()
    return police_view(incident, alarm)


# ---------------------------------------------------------------------------
# PINs


def verifier(key: str) -> str:
    return hashlib.sha256(bytes.fromhex(key)).hexdigest()


def pins_for(person: Person) -> dict:
    """What any of the person's phones needs to check a PIN offline (never which is which)."""
    pins = db.session.get(SosPin, person.id)
    if pins is None:
        return {"set": False, "salt": None, "verifiers": []}
    return {"set": True, "salt": pins.salt, "verifiers": list(pins.verifiers),
            "updated_at": pins.updated_at}


def set_pins(person: Person, salt: str, pin_key: str, duress_key: str) -> dict:
    if hmac.compare_digest(pin_key, duress_key):
        raise ValidationError({"duress_key": ["The duress PIN must differ from the PIN."]})
    pins = db.session.get(SosPin, person.id) or SosPin(person_id=person.id)
    pins.salt = salt
    pins.pin_hash = generate_password_hash(pin_key)
    pins.duress_hash = generate_password_hash(duress_key)
    pins.verifiers = sorted([verifier(pin_key), verifier(duress_key)])
    pins.updated_at = utcnow()
    pins.failures, pins.locked_until = 0, None
    db.session.add(pins)
    db.session.commit()
    return pins_for(person)


def stand_down(person: Person, incident_id: uuid.UUID, key: str) -> dict:
    """The person's own PIN ends the alarm; the duress PIN keeps it open, marked duress
    for the police. Both answer the same: {"status": "cancelled"}."""
    incident, alarm = _find(person, incident_id, lock=True)
    pins = db.session.scalar(select(SosPin).where(SosPin.person_id == person.id)
                             .with_for_update())
    if pins is None:
        raise Problem(409, "No PIN set", "Set your SOS PINs on the account screen first.",
                      type_="sos-no-pin")
    now = utcnow()
    if pins.locked_until is not None and pins.locked_until > now:
        raise Problem(429, "Too many wrong PINs",
                      "Too many wrong PINs; the alarm stays open. Try again later.",
                      type_="sos-pin-locked")
    # Both hashes are always checked: the time taken says nothing about which matched.
    own = check_password_hash(pins.pin_hash, key)
    duress = check_password_hash(pins.duress_hash, key)
    if not (own or duress):
        pins.failures += 1
        alarm.wrong_pins += 1
        if pins.failures >= current_app.config["SOS_MAX_WRONG_PINS"]:
            pins.locked_until = now + timedelta(
                seconds=current_app.config["SOS_PIN_LOCK_SECONDS"])
        incidents.append_event(incident, person, "sos_wrong_pin",
                               {"wrong_pins": (alarm.wrong_pins - 1, alarm.wrong_pins)}, at=now)
        db.session.commit()
        raise ValidationError({"key": ["Wrong PIN; the alarm stays open."]})
    pins.failures, pins.locked_until = 0, None
    if alarm.state == AlarmState.OPEN and duress:
        if alarm.duress_at is None:
            alarm.duress_at = now
            incidents.append_event(incident, person, "sos_duress",
                                   {"duress": (False, True)}, at=now)
            _tell_police(incident, "sos_duress_title", "sos_duress_body")
    elif alarm.state == AlarmState.OPEN and alarm.duress_at is None:
        alarm.state, alarm.stood_down_at = AlarmState.STOOD_DOWN, now
        incidents.append_event(incident, person, "sos_stood_down",
                               {"sos_state": (AlarmState.OPEN, AlarmState.STOOD_DOWN)}, at=now)
        _tell_police(incident, "sos_stood_down_title", "sos_stood_down_body",
                     urgency=Urgency.NORMAL)
    # After a duress stand-down the own PIN changes nothing either: someone
    # watching may have made them enter both.
    db.session.commit()
    return {"status": "cancelled"}


def _tell_police(incident: Incident, title: str, body: str, *,
                 urgency: Urgency = Urgency.HIGH) -> None:
    people = routing.officers_of({incident.post_id}) if incident.post_id is not None else []
    people += routing.active_managers(incident)
    for person in people:
        lang = person.language.value
        notify_incident(person, "sos.state", incident,
                        messages.text(title, lang, case=incident.case_number),
                        messages.text(body, lang), urgency=urgency, alert=True,
                        ttl=current_app.config["PUSH_TTL_SOS"])
