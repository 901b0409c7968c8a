"""What a police officer does with an incident routed (or escalated) to them.

Every action is one transaction: the incident change, its event
(api.incidents.append_event) and the crew member's push (the outbox) commit
together. Any action by an officer counts as acknowledging the alert, so a
post that goes straight to recording the ЕРДР number is never escalated.
"""

import uuid

from sqlalchemy import and_, case, or_, select
from sqlalchemy.orm import selectinload

from api.db import utcnow
from api.errors import Problem
from api.extensions import db
from api.incidents import records as incidents
from api.incidents.models import Incident, IncidentEvent, IncidentStatus
from api.orgs.models import Person
from api.police.models import PoliceAlert
from api.push import messages
from api.push.service import notify_incident

OPEN_BEFORE_ACK = (IncidentStatus.LOGGED, IncidentStatus.ROUTED)


def in_scope(officer: Person):
    """Their post's incidents, and alerts escalated to their region that nobody has taken."""
    escalated_here = and_(PoliceAlert.escalated_at.is_not(None),
                          PoliceAlert.acknowledged_at.is_(None),
                          PoliceAlert.region_code == officer.post.region_code)
    return or_(Incident.post_id == officer.post_id, escalated_here)


def urgency_rank():
    """0 first: unacknowledged with police needed now, then unacknowledged, open, closed."""
    unacknowledged = PoliceAlert.acknowledged_at.is_(None) & \
        (Incident.status != IncidentStatus.CLOSED)
    return case(
        (unacknowledged & Incident.police_needed.is_(True), 0),
        (unacknowledged, 1),
        (Incident.status != IncidentStatus.CLOSED, 2),
        else_=3)


def _base(officer: Person):
    return (select(Incident)
            .outerjoin(PoliceAlert, PoliceAlert.incident_id == Incident.id)
            .where(in_scope(officer)))


def list_for(officer: Person, *, limit: int, offset: int,
             status: IncidentStatus | None = None) -> list[tuple[Incident, PoliceAlert | None]]:
    """The officer's incidents, urgent first, then newest first."""
    query = _base(officer).add_columns(PoliceAlert)
    if status is not None:
        query = query.where(Incident.status == status)
    query = query.order_by(urgency_rank(), Incident.occurred_at.desc(), Incident.id.desc())
    return [(row[0], row[1]) for row in db.session.execute(query.limit(limit).offset(offset))]


def get_for(officer: Person, incident_id: uuid.UUID, *, lock: bool = False) -> Incident:
    """The incident if the officer may see it, else a 404 (unknown and foreign look alike)."""
    query = _base(officer).where(Incident.id == incident_id)
    if lock:
        query = query.with_for_update(of=Incident)
    else:
        query = query.options(selectinload(Incident.events).selectinload(IncidentEvent.actor))
    incident = db.session.scalar(query)
    if incident is None:
        raise Problem(404, "Not Found", "No such incident for your post.", type_="not-found")
    return incident


def alert_for(incident: Incident, *, lock: bool = False) -> PoliceAlert:
    query = select(PoliceAlert).where(PoliceAlert.incident_id == incident.id)
    if lock:
        query = query.with_for_update()
    alert = db.session.scalar(query)
    if alert is None:
        # Synced before routing existed (or its hook failed): keep the record whole now.
        alert = PoliceAlert(incident_id=incident.id, post_id=incident.post_id,
                            reason="unrecorded", routed_at=incident.received_at,
                            region_code=incident.station.region_code)
        db.session.add(alert)
    return alert


def _refuse_closed(incident: Incident) -> None:
    if incident.status == IncidentStatus.CLOSED:
        raise Problem(409, "Incident closed", "A closed incident cannot be changed.",
                      type_="incident-closed")


def _acknowledge(incident: Incident, alert: PoliceAlert, officer: Person,
                 changes: dict) -> bool:
    """Fill in the acknowledgement (into `changes`); False if it was already acknowledged."""
    if alert.acknowledged_at is not None:
        return False
    alert.acknowledged_at, alert.acknowledged_by = utcnow(), officer
    alert.next_step_at = None  # the escalation ladder stops here
    incident.acknowledged_at = alert.acknowledged_at
    changes["acknowledged_by"] = (None, officer.id)
    if incident.post_id != officer.post_id:
        # An escalated alert taken by another post of the region: the case is theirs now.
        changes["post_id"] = (incident.post_id, officer.post_id)
        incident.post_id = officer.post_id
        incident.post = officer.post
    if incident.status in OPEN_BEFORE_ACK:
        changes["status"] = (incident.status, IncidentStatus.ACKNOWLEDGED)
        incident.status = IncidentStatus.ACKNOWLEDGED
    return True


def _acknowledge_once(incident: Incident, officer: Person) -> None:
    """Any police action acknowledges the alert, once: recorded and told to the crew."""
    changes: dict = {}
    if _acknowledge(incident, alert_for(incident, lock=True), officer, changes):
        incidents.append_event(incident, officer, "acknowledged", changes)
        _tell_acknowledged(incident, officer)


def _tell_reporter(incident: Incident, kind: str, title_key: str, body) -> None:
    person = incident.reporter
    lang = person.language.value
    notify_incident(person, kind, incident,
                    messages.text(title_key, lang, case=incident.case_number), body(lang))


def _tell_acknowledged(incident: Incident, officer: Person) -> None:
    _tell_reporter(incident, "incident.acknowledged", "acknowledged_title",
                   lambda lang: messages.text("acknowledged_body", lang,
                                              post=officer.post.hospital_name,
                                              officer=officer.display_name))


def acknowledge_in(incident: Incident, officer: Person) -> None:
    """Acknowledge in the caller's transaction (another domain's action by an officer,
    e.g. an SOS's "on the way"); the caller holds the incident's lock and commits."""
    _refuse_closed(incident)
    _acknowledge_once(incident, officer)


def acknowledge(officer: Person, incident_id: uuid.UUID) -> Incident:
    """Acknowledge the alert (who, when). Repeating it changes nothing."""
    incident = get_for(officer, incident_id, lock=True)
    _refuse_closed(incident)
    _acknowledge_once(incident, officer)
    db.session.commit()
    return incident


def record_erdr(officer: Person, incident_id: uuid.UUID, erdr_number: str) -> Incident:
    """Record (or correct) the ЕРДР number, exactly as the officer entered it."""
    incident = get_for(officer, incident_id, lock=True)
    _refuse_closed(incident)
    _acknowledge_once(incident, officer)
    if incident.erdr_number != erdr_number:
        before, incident.erdr_number = incident.erdr_number, erdr_number
        incidents.append_event(incident, officer, "erdr_recorded",
                               {"erdr_number": (before, erdr_number)})
        _tell_reporter(incident, "incident.erdr", "erdr_title",
                       lambda lang: messages.text("erdr_body", lang, erdr=erdr_number))
    db.session.commit()
    return incident


def set_status(officer: Person, incident_id: uuid.UUID, status: IncidentStatus,
               note: str | None) -> Incident:
    """Move to investigating or closed, with the officer's note."""
    incident = get_for(officer, incident_id, lock=True)
    _refuse_closed(incident)
    _acknowledge_once(incident, officer)
    if incident.status != status or note:
        changes = {"status": (incident.status, status)} if incident.status != status else {}
        if note:
            changes["police_note"] = (None, note)
        incident.status = status
        incidents.append_event(incident, officer, "status", changes)
        if status == IncidentStatus.CLOSED:
            _tell_reporter(incident, "incident.closed", "closed_title", lambda lang: note)
    db.session.commit()
    return incident
