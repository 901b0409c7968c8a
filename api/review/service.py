"""The station managers' rules: their list (filters, keyset pages, totals), one
incident's detail and note, device health (figures: api.review.figures; export:
api.review.export). No Flask request objects (the views pass what they parsed).

Scope is never decided here: every incident query starts from
api.incidents.records.visible_to(person), the one rule for who sees what.
"""

from __future__ import annotations

import binascii
import functools
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, literal, or_, select, tuple_, union_all
from sqlalchemy.orm import selectinload
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from api import keyset
from api.db import is_postgres, utcnow
from api.extensions import db
from api.incidents import records as incidents
from api.incidents import sync as incident_sync
from api.incidents.models import Incident, SyncDevice
from api.law import service as law
from api.ledger import service as ledger
from api.media import service as media
from api.orgs.models import Person, PolicePost, Role
from api.police.models import PoliceAlert
from api.push.models import PushSubscription
from api.review.models import ManagerNote

# A device whose last sync left records on it this long ago is highlighted.
STALE_AFTER = timedelta(hours=1)
SORT_COLUMNS = {"occurred_at": Incident.occurred_at, "received_at": Incident.received_at,
                "case_number": Incident.case_number}
# Sorts with a per-station index (station_id, column, id): pages are merged per station.
MERGED_SORTS = frozenset({"occurred_at", "received_at"})
MAP_URL = "https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}"


class FilterError(ValueError):
    """A filter value the database cannot use; `field` names it for the problem."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------------------
# Local dates and filters


@functools.cache
def zone():
    """Kazakhstan's time zone as the law rules name it (read once per process)."""
    return law._zone(law.rules()["timezone"])


def local_midnight(day: date) -> datetime:
    """The UTC instant at which `day` begins in Kazakhstan (Asia/Almaty)."""
    return datetime.combine(day, time(0), tzinfo=zone()).astimezone(UTC)


def today_local(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(zone()).date()


def date_bounds(date_from: date | None, date_to: date | None) -> list:
    """Where-clauses for local dates, both ends included (an index range on occurred_at)."""
    out = []
    if date_from is not None:
        out.append(Incident.occurred_at >= local_midnight(date_from))
    if date_to is not None:
        out.append(Incident.occurred_at < local_midnight(date_to + timedelta(days=1)))
    return out


def filter_clauses(person: Person, f: dict) -> list:
    """The scope rule first, then each filter the caller gave."""
    return [incidents.visible_to(person), *_filters(f)]


def _filters(f: dict) -> list:
    """Where-clauses for the filters the caller gave (the scope rule not included)."""
    clauses = date_bounds(f.get("date_from"), f.get("date_to"))
    for name, column in (("kind", Incident.kind), ("part", Incident.legal_part),
                         ("status", Incident.status), ("reporter_id", Incident.reporter_id),
                         ("post_id", Incident.post_id),
                         ("police_needed", Incident.police_needed)):
        if f.get(name) is not None:
            clauses.append(column == f[name])
    if f.get("q"):
        # lower(column) LIKE lower('%text%') on both databases: PostgreSQL answers
        # it from the trigram indexes on lower(column) (migration 0005); on SQLite
        # lower() is Python's (api.db), so Cyrillic and Kazakh letters fold too.
        escaped = (f["q"].strip().replace("/", "//").replace("%", "/%").replace("_", "/_"))
        pattern = func.lower(literal(f"%{escaped}%"))
        clauses.append(or_(*(func.lower(column).like(pattern, escape="/")
                             for column in (Incident.note, Incident.case_number,
                                            Incident.erdr_number))))
    return clauses


def _scope_stations(scope) -> list[int] | None:
    """The station ids of a scope rule of the form `station_id IN (...)`, else None."""
    if (isinstance(scope, BinaryExpression) and scope.operator is operators.in_op
            and getattr(scope.left, "table", None) is Incident.__table__
            and scope.left.key == "station_id" and isinstance(scope.right, BindParameter)
            and isinstance(scope.right.value, list | tuple)):
        return list(scope.right.value)
    return None


# ---------------------------------------------------------------------------
# The list: keyset pages in any of the offered orders, with the total


def sort_order(sort: str):
    """(column name, column, descending) of a sort such as "-occurred_at"."""
    descending = sort.startswith("-")
    return sort.lstrip("-"), SORT_COLUMNS[sort.lstrip("-")], descending


def _cursor_value(incident: Incident, name: str):
    value = getattr(incident, name)
    return value.isoformat() if isinstance(value, datetime) else value


def encode_cursor(incident: Incident, sort: str) -> str:
    name, _, _ = sort_order(sort)
    return keyset.encode([sort, _cursor_value(incident, name), str(incident.id)])


def decode_cursor(cursor: str, sort: str):
    """(value, id) of the last row of the previous page; FilterError('cursor') otherwise."""
    try:
        made_for, value, ident = keyset.decode(cursor)
        name, _, _ = sort_order(sort)
        if made_for != sort:
            raise ValueError("sort")
        if name in ("occurred_at", "received_at"):
            value = law.parse_instant(value)
        elif not isinstance(value, str):
            raise ValueError("value")
        return value, uuid.UUID(ident)
    except (binascii.Error, ValueError, TypeError, AttributeError, KeyError) as err:
        raise FilterError("cursor", "Not a cursor from this list with this sort; "
                                    "start again without one.") from err


@contextmanager
def planner_settings(**settings: str):
    """PostgreSQL only: run the statements inside with these settings (as SET LOCAL),
    then put back what was there. Issued as SELECTs, so they reach the same
    connection as the review's reads (the replica, when one answers)."""
    if not is_postgres():
        yield
        return
    before = {}
    for name, value in settings.items():
        before[name] = db.session.scalar(select(func.current_setting(name)))
        db.session.execute(select(func.set_config(name, value, True)))
    # Not in a `finally`: after a failed statement the transaction accepts no
    # more commands (another error would hide the first), and its rollback
    # undoes SET LOCAL anyway.
    yield
    for name, value in before.items():
        db.session.execute(select(func.set_config(name, value, True)))


def count(person: Person, f: dict, at_most: int | None = None) -> int:
    """Incidents matching the filters; with `at_most`, counting stops there."""
    where = filter_clauses(person, f)
    if at_most is None:
        return db.session.scalar(select(func.count()).select_from(Incident).where(*where))
    query = select(func.count()).select_from(
        select(Incident.id).where(*where).limit(at_most).subquery())
    if not f.get("q"):
        return db.session.scalar(query)
    # A common word (q) makes a table scan that stops at `at_most` matches look
    # cheap, but it assumes matches are spread evenly through the table: starting
    # where the last scan of the table stopped (synchronize_seqscans) it may cross
    # tens of thousands of pages holding none of this station's rows (a new
    # station's rows are all at the end; so were the seeded benchmark's). The
    # trigram indexes ANDed with the station index cost the same every time.
    with planner_settings(enable_seqscan="off"):
        return db.session.scalar(query)


@dataclass
class Total:
    """How many incidents match; `exact` False means at least `count`."""
    count: int
    exact: bool = True


def total_of(person: Person, f: dict, search_cap: int) -> Total:
    """The exact total, except for a text search matching more than `search_cap`:
    a common word can match a good part of every incident in scope, and only
    reading each of them would count it exactly."""
    if not f.get("q"):
        return Total(count(person, f))
    n = count(person, f, at_most=search_cap + 1)
    return Total(min(n, search_cap), exact=n <= search_cap)


def list_incidents(person: Person, f: dict, *, limit: int, cursor: str | None = None,
                   search_cap: int = 1000):
    """(page of incidents, next cursor or None, Total matching the filters)."""
    name, column, descending = sort_order(f["sort"])
    scope, where = incidents.visible_to(person), _filters(f)
    if cursor:
        value, ident = decode_cursor(cursor, f["sort"])
        key = tuple_(column, Incident.id)
        where.append(key < tuple_(value, ident) if descending else key > tuple_(value, ident))
    order = (column.desc(), Incident.id.desc()) if descending else (column.asc(), Incident.id.asc())
    total = total_of(person, f, search_cap)
    stations = _scope_stations(scope) if name in MERGED_SORTS else None
    # A search with few matches is answered best from the trigram indexes
    # (then sorting those few), not by walking every station's run for them.
    rare_search = bool(f.get("q")) and total.exact
    if stations and len(stations) > 1 and not rare_search:
        # A page across several stations in time order: no index holds that order
        # (ix_incidents_station_occurred/_received are ordered per station), so the
        # database would sort every row in scope. Instead take the page's worth
        # from each station's own ordered run of the index and merge those (the
        # stations are the scope rule's own list, so the scope is unchanged).
        runs = [select(Incident.id, column.label("key"))
                .where(Incident.station_id == station, *where)
                .order_by(*order).limit(limit + 1).subquery() for station in stations]
        merged = union_all(*(select(run.c.id, run.c.key) for run in runs)).subquery()
        page = (select(merged.c.id)
                .order_by(*((merged.c.key.desc(), merged.c.id.desc()) if descending
                            else (merged.c.key.asc(), merged.c.id.asc())))
                .limit(limit + 1).subquery())
        query = select(Incident).join(page, page.c.id == Incident.id)
    else:
        query = select(Incident).where(scope, *where)
    rows = list(db.session.scalars(
        query.order_by(*order).limit(limit + 1)
        .options(selectinload(Incident.reporter), selectinload(Incident.station),
                 selectinload(Incident.post))))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1], f["sort"]) if more and rows else None
    return rows, next_cursor, total


# ---------------------------------------------------------------------------
# One incident


@dataclass
class Detail:
    incident: Incident
    alert: PoliceAlert | None
    note: ManagerNote | None


def get_detail(person: Person, incident_id: uuid.UUID) -> Detail | None:
    """The incident with events, route, alert and note; None when unknown or out of scope."""
    incident = incidents.get_incident(person, incident_id)
    if incident is None:
        return None
    alert = db.session.scalar(select(PoliceAlert).where(PoliceAlert.incident_id == incident.id)
                              .options(selectinload(PoliceAlert.acknowledged_by)))
    note = db.session.get(ManagerNote, incident.id)
    return Detail(incident, alert, note)


def detail_view(detail: Detail) -> dict:
    """The incident's attributes plus what only the manager's detail shows."""
    incident = detail.incident
    view = {column.key: getattr(incident, column.key)
            for column in Incident.__mapper__.column_attrs}
    destination = (db.session.get(PolicePost, incident.destination_post_id)
                   if incident.destination_post_id else None)
    view.update(
        tapped_at_local=incident.tapped_at_local, location=incident.location,
        reporter=incident.reporter, station=incident.station, post=incident.post,
        destination_post=destination, alert=detail.alert, events=incident.events,
        manager_note=detail.note,
        # Whether this incident's hash chain verifies, and the receipts the crew's phone got.
        chain=ledger.incident_chain(incident).view(),
        receipts=[ledger.receipt_view(r) for r in ledger.receipts_of(incident.id)],
        map_url=(MAP_URL.format(lat=incident.lat, lon=incident.lon)
                 if incident.lat is not None else None))
    return view


def set_note(person: Person, incident_id: uuid.UUID, text: str) -> Detail | None:
    """Replace the manager's note; the change is an event in the incident's history."""
    incident = db.session.scalar(select(Incident).where(
        Incident.id == incident_id, incidents.visible_to(person)).with_for_update())
    if incident is None:
        return None
    text = text.strip()
    note = db.session.get(ManagerNote, incident.id)
    before = note.note if note else ""
    if before != text:
        if note is None:
            note = ManagerNote(incident_id=incident.id, note=text, author_id=person.id)
            db.session.add(note)
        note.note, note.author_id, note.updated_at = text, person.id, utcnow()
        incidents.append_event(incident, person, "manager_note", {"manager_note": (before, text)})
    db.session.commit()
    db.session.expire_all()
    return get_detail(person, incident_id)


class TimeCorrectionConflict(Exception):
    """Nothing awaits confirmation, or not the time the manager was shown."""


def decide_time_correction(person: Person, incident_id: uuid.UUID, *, confirm: bool,
                           occurred_at: datetime) -> Detail | None:
    """Confirm or reject the stated time awaiting a manager (too long before the tap).

    `occurred_at` is the pending time the manager saw, so a decision never lands
    on a correction the crew replaced meanwhile. Confirmed, it becomes the
    incident's time and the incident is classified again (in the reporter's
    language, as sync does); either way the decision is an event in the
    incident's chain, and None means unknown or out of the manager's scope.
    """
    incident = db.session.scalar(select(Incident).where(
        Incident.id == incident_id, incidents.visible_to(person)).with_for_update())
    if incident is None:
        return None
    pending = incident.occurred_at_pending
    if pending is None or pending != occurred_at:
        db.session.rollback()
        raise TimeCorrectionConflict(
            "No time correction awaits confirmation." if pending is None else
            "The crew has stated another time since; reload the incident.")
    if confirm:
        changes = incident_sync.restate_time(incident, pending, incident.reporter.language.value)
        incidents.append_event(incident, person, "time_confirmed", changes)
    else:
        incident.occurred_at_pending = None
        incidents.append_event(incident, person, "time_rejected",
                               {"occurred_at_pending": (pending, None)})
    db.session.commit()
    db.session.expire_all()
    return get_detail(person, incident_id)


# ---------------------------------------------------------------------------
# Device health


def device_health(person: Person, now: datetime | None = None) -> list[dict]:
    """The crew devices of the manager's stations (the incidents' scope rule for stations)."""
    now = now or utcnow()
    devices: list[SyncDevice] = incidents.devices_for(person)
    people = {d.person_id for d in devices}
    subs: dict[int, list[PushSubscription]] = defaultdict(list)
    if people:
        for sub in db.session.scalars(select(PushSubscription).where(
                PushSubscription.person_id.in_(sorted(people)))):
            subs[sub.person_id].append(sub)
    stations = {s.id: s for s in person.managed_stations}
    media_reports = media.devices_of(people)
    out = []
    for device in devices:
        held = media_reports.get((device.person_id, device.device_id))
        left = max(device.outbox_size - device.last_batch_size, 0)
        mine = [s for s in subs[device.person_id] if s.device_id == device.device_id] or \
            [s for s in subs[device.person_id] if s.device_id is None]
        successes = [s.last_success_at for s in mine if s.last_success_at]
        out.append({
            "person": device.person, "station": stations.get(device.station_id),
            "device_id": device.device_id, "app_version": device.app_version,
            "last_sync_at": device.last_sync_at, "outbox_size": device.outbox_size,
            "left_unsynced": left, "set_aside": device.set_aside or 0,
            "stale": left > 0 and now - device.last_sync_at > STALE_AFTER,
            "push": {"status": "subscribed" if mine else "none",
                     "last_success_at": max(successes) if successes else None},
            # Reported by the sync request once it carries the field, or by the
            # phone's media report (api.media); unknown till then.
            "storage_persisted": getattr(device, "storage_persisted", None)
            if getattr(device, "storage_persisted", None) is not None
            else (held.storage_persisted if held else None),
            "media": media.media_health(held),
        })
    out.sort(key=lambda d: (not d["set_aside"], not d["stale"], -d["left_unsynced"],
                            d["last_sync_at"]))
    return out


def filter_options(person: Person) -> dict:
    """Choices for the list's filters: the crew of the manager's stations and the
    police posts of their regions."""
    stations = sorted(person.managed_stations, key=lambda s: s.name)
    ids = [s.id for s in stations] or [-1]
    crew = db.session.scalars(select(Person).where(
        Person.station_id.in_(ids), Person.role == Role.CREW).order_by(Person.display_name))
    regions = sorted({s.region_code for s in stations}) or ["--"]
    posts = db.session.scalars(select(PolicePost).where(PolicePost.region_code.in_(regions))
                               .order_by(PolicePost.hospital_name))
    return {"stations": [{"id": s.id, "name": s.name} for s in stations],
            "crew": list(crew), "posts": list(posts)}
