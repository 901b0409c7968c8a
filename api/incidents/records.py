"""The incident records: the hooks other domains register, the history
(events), the one rule for who sees which incident, and reading them. Sync,
which stores them, is api.incidents.sync. No Flask request objects."""

from __future__ import annotations

import binascii
import enum
import uuid
from datetime import datetime

from sqlalchemy import false, insert, select, tuple_
from sqlalchemy.orm import selectinload

from api import keyset, listeners
from api.db import utcnow
from api.extensions import db
from api.incidents.models import Incident, IncidentEvent, SyncDevice
from api.law import service as law
from api.orgs.models import Person, Role

# ---------------------------------------------------------------------------
# Hooks: other domains (police: routing and its pushes) act in the same
# transaction. Each entry may define on_incident_synced(incident) (once, when
# sync first stores the incident, after its case number is set) and
# on_incident_event(incident, event) (every appended event, "created" too).
# A hook may instead split its first-sync work in two (api.police.routing):
# prepare_incidents_synced(batch, columns) runs before the case numbers are
# drawn and returns what it prepared (no events, no numbers: the region's
# counter is not yet locked; what it puts in columns[incident id] is written
# with the number), then finish_incidents_synced(batch, prepared) once they are.
# Registered in create_app (api/__init__.py), never here.
incident_hooks: list = []

def register_hook(hook):
    """Add a hook object or module; returns it, so it can decorate a class."""
    return listeners.add(incident_hooks, hook)


def dispatch(method: str, *args) -> None:
    listeners.call(incident_hooks, method, *args)


# ---------------------------------------------------------------------------
# History


def jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _event_row(incident: Incident, actor: Person | None, kind: str, changes: dict,
               revision: int | None, at: datetime) -> dict:
    """An event's columns: changes maps field -> (before, after), stored as JSON pairs."""
    return {"incident_id": incident.id, "actor_id": actor.id if actor else None,
            "kind": kind, "revision": revision or incident.revision,
            "changes": {k: [jsonable(b), jsonable(a)] for k, (b, a) in changes.items()},
            "at": at}


def new_event(incident: Incident, actor: Person | None, kind: str, changes: dict,
              at: datetime | None = None, revision: int | None = None) -> IncidentEvent:
    event = IncidentEvent(**_event_row(incident, actor, kind, changes, revision,
                                       at or utcnow()))
    db.session.add(event)
    incident.updated_at = event.at
    return event


# The hash chains (api.ledger, registered in create_app): insert_events asks it
# to seal_rows(rows) before its INSERT and tells it events_inserted(rows) after.
chain_listeners: list = []


def insert_events(items: list[tuple], at: datetime) -> list[tuple[Incident, IncidentEvent]]:
    """Record many changes at once, as new_event would one by one: items are
    (incident, actor, kind, changes, revision). One Core INSERT for all, the
    rows sealed into their chains first (a row left unsealed is refused by the
    NOT NULL chain columns, never stored unchained), without the ORM's per-row
    bookkeeping. Returns (incident, event) pairs, in order, for the hooks'
    on_incident_event; the events are not in the session."""
    rows = [_event_row(incident, actor, kind, changes, revision, at)
            for incident, actor, kind, changes, revision in items]
    if not rows:
        return []
    listeners.call(chain_listeners, "seal_rows", rows)
    db.session.execute(insert(IncidentEvent.__table__), rows)
    listeners.call(chain_listeners, "events_inserted", rows)
    pairs = []
    for (incident, *_), row in zip(items, rows, strict=True):
        incident.updated_at = at
        pairs.append((incident, IncidentEvent(**row)))
    return pairs


def append_event(incident: Incident, actor: Person | None, kind: str,
                 changes: dict, *, at: datetime | None = None) -> IncidentEvent:
    """Record a change to `incident`: changes maps field -> (before, after).

    The caller has made the change and commits; the event joins its
    transaction, so the change and its history are stored together or not at
    all. Hooks' on_incident_event runs at once. `at` defaults to now; the
    incident's updated_at becomes it.
    """
    event = new_event(incident, actor, kind, changes, at=at)
    dispatch("on_incident_event", incident, event)
    return event


# Events the reporter's own reading of an incident leaves out: an SOS stood
# down with the duress PIN must look cancelled on the phone someone may be
# holding over them (api.sos). The police and managers see them.
HIDDEN_FROM_REPORTER = frozenset({"sos_duress"})


# ---------------------------------------------------------------------------
# Scope: the one rule for who sees which incident.


def visible_to(person: Person):
    """A where-clause selecting the incidents `person` may read."""
    if person.role == Role.CREW:
        return Incident.reporter_id == person.id
    if person.role == Role.MANAGER:
        stations = person.station_ids_in_scope()
        return Incident.station_id.in_(sorted(stations)) if stations else false()
    if person.role == Role.POLICE and person.post_id is not None:
        return Incident.post_id == person.post_id
    return false()


def get_incident(person: Person, incident_id: uuid.UUID) -> Incident | None:
    """The incident with its events, or None when unknown *or* out of scope."""
    return db.session.scalar(
        select(Incident).where(Incident.id == incident_id, visible_to(person))
        .options(selectinload(Incident.events).selectinload(IncidentEvent.actor)))


def encode_cursor(incident: Incident) -> str:
    return keyset.encode([incident.occurred_at.isoformat(), str(incident.id)])


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError for anything that is not a cursor this server made."""
    try:
        when, ident = keyset.decode(cursor)
        return law.parse_instant(when), uuid.UUID(ident)
    except (binascii.Error, ValueError, TypeError, AttributeError) as err:
        raise ValueError("Not a cursor from this list; start again without one.") from err


def list_incidents(person: Person, limit: int, cursor: str | None = None):
    """A page of the incidents `person` may read, newest first (keyset)."""
    query = select(Incident).where(visible_to(person))
    if cursor:
        when, ident = decode_cursor(cursor)
        query = query.where(tuple_(Incident.occurred_at, Incident.id) < tuple_(when, ident))
    rows = list(db.session.scalars(
        query.order_by(Incident.occurred_at.desc(), Incident.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


def devices_for(person: Person) -> list[SyncDevice]:
    """Crew devices of the manager's stations, the most records waiting first."""
    stations = person.station_ids_in_scope() if person.role == Role.MANAGER else set()
    if not stations:
        return []
    return list(db.session.scalars(
        select(SyncDevice).where(SyncDevice.station_id.in_(sorted(stations)))
        .options(selectinload(SyncDevice.person))
        .order_by(SyncDevice.outbox_size.desc(), SyncDevice.last_sync_at)))
