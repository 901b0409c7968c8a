"""The station managers' rules: their list, detail, note, figures, export, devices;
and the access log. No Flask request objects (the views pass what they parsed).

Scope is never decided here: every incident query starts from
api.incidents.service.visible_to(person), the one rule for who sees what.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import DateTime, Float, case, func, literal, or_, select, tuple_, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased, selectinload
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from api.db import is_postgres, utcnow
from api.extensions import db
from api.incidents import service as incidents
from api.incidents.models import Incident, SyncDevice
from api.law import service as law
from api.ledger import service as ledger
from api.orgs.models import Person, PolicePost, Role, Station
from api.police.models import PoliceAlert
from api.push.models import PushSubscription
from api.review.models import AccessLog, ManagerNote

# Roles whose views of an incident's details are written to the access log.
LOGGED_ROLES = frozenset({Role.MANAGER, Role.POLICE})
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


def _sort(sort: str):
    descending = sort.startswith("-")
    return sort.lstrip("-"), SORT_COLUMNS[sort.lstrip("-")], descending


def _cursor_value(incident: Incident, name: str):
    value = getattr(incident, name)
    return value.isoformat() if isinstance(value, datetime) else value


def encode_cursor(incident: Incident, sort: str) -> str:
    name, _, _ = _sort(sort)
    raw = json.dumps([sort, _cursor_value(incident, name), str(incident.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str):
    """(value, id) of the last row of the previous page; FilterError('cursor') otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, value, ident = json.loads(raw)
        name, _, _ = _sort(sort)
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


def count(person: Person, f: dict, at_most: int | None = None) -> int:
    """Incidents matching the filters; with `at_most`, counting stops there."""
    where = filter_clauses(person, f)
    if at_most is None:
        return db.session.scalar(select(func.count()).select_from(Incident).where(*where))
    return db.session.scalar(select(func.count()).select_from(
        select(Incident.id).where(*where).limit(at_most).subquery()))


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
    name, column, descending = _sort(f["sort"])
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
        changes = incidents.restate_time(incident, pending, incident.reporter.language.value)
        incidents.append_event(incident, person, "time_confirmed", changes)
    else:
        incident.occurred_at_pending = None
        incidents.append_event(incident, person, "time_rejected",
                               {"occurred_at_pending": (pending, None)})
    db.session.commit()
    db.session.expire_all()
    return get_detail(person, incident_id)


# ---------------------------------------------------------------------------
# Figures


def default_range(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """Twelve months up to today (local) unless the caller chose."""
    end = date_to or today_local()
    if date_from is None:
        month = end.year * 12 + end.month - 1 - 11
        date_from = date(month // 12, month % 12 + 1, 1)
    return date_from, end


def months_between(start: date, end: date) -> list[date]:
    months, current = [], date(start.year, start.month, 1)
    while current <= end:
        months.append(current)
        current = date(current.year + (current.month == 12), current.month % 12 + 1, 1)
    return months


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not sorted_values:
        return None
    position = p * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _seconds(later, earlier):
    if is_postgres():
        # date_part answers double precision; extract() answers numeric, whose
        # sort (for the percentiles) is several times slower.
        return func.date_part("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _summary(n: int, cuts) -> dict:
    return {"count": n, "median_s": _round(cuts[0]) if cuts else None,
            "p90_s": _round(cuts[1]) if cuts else None}


def _delays(where: list) -> tuple[dict, dict]:
    """count, median and 90th percentile (seconds) of tap-to-sync and of
    sync-to-police-acknowledgement over the incidents matching `where`: on
    PostgreSQL one index-only scan of the station index, each fraction pair from
    one sort of its values."""
    # From the tap itself (logged_at), not the stated time of the incident.
    tap_to_sync = _seconds(Incident.received_at, Incident.logged_at)
    sync_to_ack = _seconds(Incident.acknowledged_at, Incident.received_at)
    acknowledged = Incident.acknowledged_at.is_not(None)
    if is_postgres():
        fractions = literal([0.5, 0.9], ARRAY(Float))
        n_sync, cuts_sync, n_ack, cuts_ack = db.session.execute(select(
            func.count(), func.percentile_cont(fractions).within_group(tap_to_sync),
            func.count().filter(acknowledged),
            func.percentile_cont(fractions).within_group(sync_to_ack).filter(acknowledged))
            .where(*where)).one()
        return _summary(n_sync, cuts_sync), _summary(n_ack, cuts_ack)
    rows = db.session.execute(select(tap_to_sync, sync_to_ack).where(*where)).all()
    out = []
    for column in (0, 1):
        values = sorted(row[column] for row in rows if row[column] is not None)
        out.append(_summary(len(values), (percentile(values, 0.5), percentile(values, 0.9))
                            if values else None))
    return out[0], out[1]


def _round(value):
    return None if value is None else round(value, 3)


def _month_bucket(months: list[date]):
    """The index in `months` of each incident's local month, by comparison with the
    local month starts: the same answer on both databases, and no time-zone
    database inside SQL. PostgreSQL finds it by binary search (width_bucket)."""
    if len(months) == 1:
        return literal(0)
    starts = [local_midnight(m) for m in months[1:]]
    if is_postgres():
        return func.width_bucket(Incident.occurred_at,
                                 literal(starts, type_=ARRAY(DateTime(timezone=True))))
    return case(*((Incident.occurred_at < start, i) for i, start in enumerate(starts)),
                else_=len(starts))


def figures(person: Person, date_from: date | None, date_to: date | None,
            lang: str = "en") -> dict:
    """Counts per local month and part, per station and per job; and the two delays."""
    start, end = default_range(date_from, date_to)
    where = filter_clauses(person, {"date_from": start, "date_to": end})
    months = months_between(start, end)
    per_month = [{"month": m.strftime("%Y-%m"), "total": 0, "by_part": {}} for m in months]
    per_station: dict[int, int] = defaultdict(int)
    per_job: dict[str, int] = defaultdict(int)
    bucket = _month_bucket(months)
    # One pass over the rows in scope for all three breakdowns (on PostgreSQL an
    # index-only scan: ix_incidents_station_occurred carries these columns).
    for index, part, station_id, role, n in db.session.execute(
            select(bucket, Incident.legal_part, Incident.station_id, Incident.victim_role,
                   func.count())
            .where(*where)
            .group_by(bucket, Incident.legal_part, Incident.station_id, Incident.victim_role)):
        row = per_month[index]
        row["total"] += n
        key = str(part) if part is not None else "none"
        row["by_part"][key] = row["by_part"].get(key, 0) + n
        per_station[station_id] += n
        per_job[role] += n
    names = dict(db.session.execute(select(Station.id, Station.name)
                                    .where(Station.id.in_(sorted(per_station)))).all())
    stations = sorted(((sid, names.get(sid), n) for sid, n in per_station.items()),
                      key=lambda r: (-r[2], r[0]))
    roles = {r["id"]: r.get("label", {}) for r in law.rules()["victim_roles"]}
    jobs = sorted(per_job.items(), key=lambda r: (-r[1], r[0]))

    tap_to_sync, sync_to_ack = _delays(where)
    return {
        "date_from": start, "date_to": end,
        "total": sum(m["total"] for m in per_month),
        "by_month": per_month,
        "by_station": [{"key": str(sid), "label": name, "count": n} for sid, name, n in stations],
        "by_job": [{"key": role, "label": _label(roles.get(role), lang), "count": n}
                   for role, n in jobs],
        "tap_to_sync": tap_to_sync,
        "sync_to_ack": sync_to_ack,
    }


def _label(labels, lang: str):
    if isinstance(labels, dict):
        return labels.get(lang) or labels.get("en")
    return labels


# ---------------------------------------------------------------------------
# Export: the filtered list, streamed in the chosen order


EXPORT_COLUMNS = ["case_number", "occurred_at_local", "received_at_local", "station",
                  "reporter", "reporter_position", "victim_role", "kind", "legal_status",
                  "legal_part", "aggravating", "status", "police_needed", "post",
                  "erdr_number", "lat", "lon", "note", "manager_note", "id"]

EXPORT_HEADERS = {
    "ru": ["Номер дела", "Время (местное)", "Получено (местное)", "Подстанция", "Сотрудник",
           "Должность", "Пострадавший", "Что произошло", "Квалификация", "Часть ст. 380-3",
           "Отягчающие обстоятельства", "Статус", "Нужна полиция", "Полицейский пост",
           "Номер ЕРДР", "Широта", "Долгота", "Заметка бригады", "Заметка руководителя",
           "Идентификатор"],
    "kk": ["Іс нөмірі", "Уақыты (жергілікті)", "Алынды (жергілікті)", "Шағын станция",
           "Қызметкер", "Лауазымы", "Зардап шеккен", "Не болды", "Саралау",
           "380-3-баптың бөлігі", "Ауырлататын мән-жайлар", "Мәртебесі", "Полиция керек",
           "Полиция бекеті", "СДТБТ нөмірі", "Ендік", "Бойлық", "Бригада жазбасы",
           "Басшы жазбасы", "Сәйкестендіргіш"],
    "en": ["Case number", "Time (local)", "Received (local)", "Station", "Crew member",
           "Position", "Victim", "What happened", "Classification", "Article 380-3 part",
           "Aggravating circumstances", "Status", "Police needed", "Police post",
           "ERDR number", "Latitude", "Longitude", "Crew note", "Manager's note", "Id"],
}


def _local_text(instant: datetime | None) -> str:
    return instant.astimezone(zone()).strftime("%Y-%m-%d %H:%M") if instant else ""


def export_rows(person: Person, f: dict, batch: int = 1000) -> Iterator[dict]:
    """Every incident matching the filters as flat dicts (EXPORT_COLUMNS), streamed."""
    _, column, descending = _sort(f["sort"])
    order = (column.desc(), Incident.id.desc()) if descending else (column.asc(), Incident.id.asc())
    reporter = aliased(Person)
    query = (
        select(Incident.id, Incident.case_number, Incident.occurred_at, Incident.received_at,
               Station.name, reporter.display_name, Incident.reporter_position,
               Incident.victim_role, Incident.kind, Incident.legal_status, Incident.legal_part,
               Incident.aggravating, Incident.status, Incident.police_needed,
               PolicePost.hospital_name, Incident.erdr_number, Incident.lat, Incident.lon,
               Incident.note, ManagerNote.note)
        .join(Station, Station.id == Incident.station_id)
        .join(reporter, reporter.id == Incident.reporter_id)
        .outerjoin(PolicePost, PolicePost.id == Incident.post_id)
        .outerjoin(ManagerNote, ManagerNote.incident_id == Incident.id)
        .where(*filter_clauses(person, f)).order_by(*order)
        .execution_options(yield_per=batch))
    for row in db.session.execute(query):
        (ident, case_no, occurred, received, station, name, position, victim, kind, legal,
         part, aggravating, status, police, post, erdr, lat, lon, note, manager_note) = row
        yield {"id": str(ident), "case_number": case_no or "",
               "occurred_at_local": _local_text(occurred),
               "received_at_local": _local_text(received), "station": station,
               "reporter": name, "reporter_position": str(position.value if position else ""),
               "victim_role": victim, "kind": kind, "legal_status": legal or "",
               "legal_part": part, "aggravating": list(aggravating or []),
               "status": status.value if status else "", "police_needed": bool(police),
               "post": post or "", "erdr_number": erdr or "", "lat": lat, "lon": lon,
               "note": note or "", "manager_note": manager_note or ""}


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
    out = []
    for device in devices:
        left = max(device.outbox_size - device.last_batch_size, 0)
        mine = [s for s in subs[device.person_id] if s.device_id == device.device_id] or \
            [s for s in subs[device.person_id] if s.device_id is None]
        successes = [s.last_success_at for s in mine if s.last_success_at]
        out.append({
            "person": device.person, "station": stations.get(device.station_id),
            "device_id": device.device_id, "app_version": device.app_version,
            "last_sync_at": device.last_sync_at, "outbox_size": device.outbox_size,
            "left_unsynced": left,
            "stale": left > 0 and now - device.last_sync_at > STALE_AFTER,
            "push": {"status": "subscribed" if mine else "none",
                     "last_success_at": max(successes) if successes else None},
            # Reported by the sync request once it carries the field; unknown till then.
            "storage_persisted": getattr(device, "storage_persisted", None),
        })
    out.sort(key=lambda d: (not d["stale"], -d["left_unsynced"], d["last_sync_at"]))
    return out


# ---------------------------------------------------------------------------
# The access log


def log_access(person: Person | None, incident: Incident, via: str | None = None) -> None:
    """Record that `person` viewed `incident`'s details (managers and police only), and commit.

    Call it after the incident was found in the person's scope, in the view
    that returns the details.
    """
    if person is None or incident is None or person.role not in LOGGED_ROLES:
        return
    if via is None:
        from flask import has_request_context, request

        via = (request.endpoint or request.path) if has_request_context() else "service"
    db.session.add(AccessLog(person_id=person.id, role=person.role.value,
                             incident_id=incident.id, via=via[:64], at=utcnow()))
    db.session.commit()


def access_log(*, person_id: int | None = None, incident_id: uuid.UUID | None = None,
               date_from: date | None = None, date_to: date | None = None,
               cursor: int | None = None, limit: int = 100):
    """Newest first; (entries, next cursor)."""
    query = select(AccessLog).options(selectinload(AccessLog.person))
    if person_id is not None:
        query = query.where(AccessLog.person_id == person_id)
    if incident_id is not None:
        query = query.where(AccessLog.incident_id == incident_id)
    if date_from is not None:
        query = query.where(AccessLog.at >= local_midnight(date_from))
    if date_to is not None:
        query = query.where(AccessLog.at < local_midnight(date_to + timedelta(days=1)))
    if cursor is not None:
        query = query.where(AccessLog.id < cursor)
    rows = list(db.session.scalars(query.order_by(AccessLog.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)



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
